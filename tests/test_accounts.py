"""People and sessions end to end, on SQLite and PostgreSQL: sign-up under each policy, sign-in,
the session cookie and its CSRF twin, sign-out and password changes ending sessions, resets by
e-mail (a real SMTP server) and by the command line, and sign-in throttling."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from browser import SESSION_COOKIE, Browser
from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from heliograph import server
from heliograph.cli.main import cli
from smtp_inbox import Inbox, smtp_server

PASSWORD = "correct horse battery"


async def test_first_user_becomes_owner_and_the_second_needs_an_invitation(
    heliograph_on_each_db: Heliograph,
) -> None:
    heliograph = heliograph_on_each_db
    async with Browser(heliograph.api) as first:
        status, body = await first.signup("Owner@Example.com", PASSWORD, organization_name="Acme")
        assert status == 201, body
        assert body["data"]["email"] == "owner@example.com"
        organization_id = body["data"]["organization_id"]
        # The organization `heliograph init` made is not handed to whoever signs up first: its
        # data stays out of reach until claimed from the server (`heliograph users create`).
        assert organization_id != heliograph.organization_id
        status, me = await first.get("/v1/auth/me")
        assert status == 200, me
        assert me["data"]["organizations"] == [
            {"id": organization_id, "name": "Acme", "role": "owner"}
        ]
        first.organization_id = heliograph.organization_id
        assert (await first.get("/v1/rate-limits"))[0] == 403
        session_cookie = first.cookie(SESSION_COOKIE)
        assert session_cookie
        assert len(session_cookie) >= 40
    async with Browser(heliograph.api) as second:
        status, body = await second.signup("second@example.com", PASSWORD)
        assert status == 403
        assert "invitation" in body["error"]
        status, body = await second.login("second@example.com", PASSWORD)
        assert status == 401


async def test_the_organization_init_made_is_claimed_from_the_command_line(
    heliograph_on_each_db: Heliograph,
) -> None:
    heliograph = heliograph_on_each_db
    accounts = heliograph.running.services.accounts
    assert accounts.unclaimed_organizations() == ["test"]
    accounts.create_user("ops@example.com", PASSWORD, "test")  # by name, as the CLI takes it
    assert accounts.unclaimed_organizations() == []
    async with Browser(heliograph.api, heliograph.organization_id) as ops:
        assert (await ops.login("ops@example.com", PASSWORD))[0] == 200
        status, me = await ops.get("/v1/auth/me")
        assert status == 200
        assert me["data"]["organizations"][0]["role"] == "owner"
        assert (await ops.get("/v1/rate-limits"))[0] == 200


async def test_fresh_install_first_user_gets_a_new_organization(
    tmp_path: Path, analytics_dir: Path, fake: Fake, database_url: str
) -> None:
    settings = heliograph_settings(tmp_path, analytics_dir, fake, database_url=database_url)
    running = await server.start(settings)
    try:
        api = f"http://127.0.0.1:{running.api_port}"
        async with Browser(api) as person:
            status, body = await person.signup("a@example.com", PASSWORD, organization_name="Acme")
            assert status == 201, body
            status, me = await person.get("/v1/auth/me")
            assert me["data"]["organizations"][0]["name"] == "Acme"
            assert me["data"]["organizations"][0]["role"] == "owner"
            # The cookie reads the new organization's data (nothing logged yet).
            status, rules = await person.get("/v1/rate-limits")
            assert (status, rules["data"]) == (200, [])
    finally:
        await running.stop()


async def test_session_cookie_flags(heliograph: Heliograph) -> None:
    async with aiohttp.ClientSession() as session:
        body = {"email": "c@example.com", "password": PASSWORD}
        async with session.post(heliograph.api + "/v1/auth/signup", json=body) as response:
            assert response.status == 201
            cookies = response.headers.getall("Set-Cookie")
    session_line = next(c for c in cookies if c.startswith("heliograph_session="))
    csrf_line = next(c for c in cookies if c.startswith("heliograph_csrf="))
    assert "HttpOnly" in session_line
    assert "SameSite=lax" in session_line
    assert "Secure" not in session_line  # plain HTTP here
    assert "HttpOnly" not in csrf_line
    # Behind a TLS-terminating proxy the cookies are Secure.
    async with aiohttp.ClientSession() as session:
        body = {"email": "c@example.com", "password": PASSWORD}
        headers = {"X-Forwarded-Proto": "https"}
        async with session.post(
            heliograph.api + "/v1/auth/login", json=body, headers=headers
        ) as response:
            assert response.status == 200
            assert all("Secure" in c for c in response.headers.getall("Set-Cookie"))


async def test_csrf_is_required_on_unsafe_cookie_requests(heliograph: Heliograph) -> None:
    async with Browser(heliograph.api) as person:
        await person.signup("d@example.com", PASSWORD)
        rule = {"name": "r", "quota": 5, "window_seconds": 60}
        status, body = await person.post("/v1/rate-limits", rule, {"X-CSRF-Token": ""})
        assert status == 403
        assert "X-CSRF-Token" in body["error"]
        status, body = await person.post("/v1/rate-limits", rule, {"X-CSRF-Token": "forged"})
        assert status == 403
        status, body = await person.post("/v1/rate-limits", rule)
        assert status == 201, body
        # Reads need no token.
        assert (await person.get("/v1/rate-limits"))[0] == 200


async def test_cookie_requests_name_an_organization_they_belong_to(
    heliograph: Heliograph,
) -> None:
    other_org, _ = heliograph.new_organization("not mine")
    async with Browser(heliograph.api) as person:
        await person.signup("e@example.com", PASSWORD)
        person.organization_id = None
        status, body = await person.get("/v1/rate-limits")
        assert status == 400
        assert "Heliograph-Organization-Id" in body["error"]
        person.organization_id = other_org
        status, body = await person.get("/v1/rate-limits")
        assert status == 403
        assert "not a member" in body["error"]
        person.organization_id = "not-a-uuid-\u00e9"
        assert (await person.get("/v1/rate-limits"))[0] == 403


async def test_logout_ends_the_session_on_the_server(heliograph_on_each_db: Heliograph) -> None:
    heliograph = heliograph_on_each_db
    async with Browser(heliograph.api) as person:
        await person.signup("f@example.com", PASSWORD)
        token = person.cookie(SESSION_COOKIE)
        assert (await person.post("/v1/auth/logout"))[0] == 200
    # The old cookie, replayed, is refused: the session was revoked, not only forgotten.
    async with aiohttp.ClientSession() as replay:
        cookies = {SESSION_COOKIE: token or ""}
        async with replay.get(heliograph.api + "/v1/auth/me", cookies=cookies) as response:
            assert response.status == 401


async def test_login_wrong_password_and_unknown_email_look_the_same(
    heliograph: Heliograph,
) -> None:
    async with Browser(heliograph.api) as person:
        await person.signup("g@example.com", PASSWORD)
    async with Browser(heliograph.api) as stranger:
        wrong = await stranger.login("g@example.com", "not the password")
        unknown = await stranger.login("nobody@example.com", "not the password")
        assert wrong == unknown == (401, {"data": None, "error": "wrong e-mail or password"})
        status, _ = await stranger.login("G@EXAMPLE.COM", PASSWORD)
        assert status == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"email": "not an email", "password": PASSWORD}, 400),
        ({"email": "h@example.com", "password": "short"}, 400),
        ({"email": "h@example.com", "password": "x" * 300}, 400),
        ({"email": "h@example.com"}, 400),
        ({"email": "h@example.com", "password": PASSWORD, "role": "owner"}, 400),
        ({"email": "h@example.com\u0000", "password": PASSWORD}, 400),
    ],
)
async def test_signup_refuses_bad_input(
    heliograph: Heliograph, body: dict[str, Any], status: int
) -> None:
    async with Browser(heliograph.api) as person:
        got, answer = await person.post("/v1/auth/signup", body)
        assert got == status, answer
        assert answer["data"] is None
        assert answer["error"]


async def test_malformed_json_and_invalid_utf8_are_400(heliograph: Heliograph) -> None:
    async with aiohttp.ClientSession() as session:
        for raw in (b"{not json", b'{"email": "\xff\xfe", "password": "xxxxxxxxxx"}'):
            async with session.post(
                heliograph.api + "/v1/auth/login",
                data=raw,
                headers={"Content-Type": "application/json"},
            ) as response:
                assert response.status == 400


async def test_open_signup_gives_each_person_an_organization(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    settings = heliograph_settings(tmp_path, analytics_dir, fake, signup="open")
    heliograph = await start_heliograph(settings)
    try:
        async with Browser(heliograph.api) as first, Browser(heliograph.api) as second:
            assert (await first.signup("i@example.com", PASSWORD))[0] == 201
            status, body = await second.signup("j@example.com", PASSWORD, organization_name="J")
            assert status == 201, body
            assert first.organization_id != second.organization_id
            # Each sees only their own organization.
            second_org = second.organization_id
            first.organization_id = second_org
            assert (await first.get("/v1/rate-limits"))[0] == 403
    finally:
        await heliograph.running.stop()


async def test_invite_policy_refuses_even_the_first_sign_up(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    settings = heliograph_settings(tmp_path, analytics_dir, fake, signup="invite")
    heliograph = await start_heliograph(settings)
    try:
        async with Browser(heliograph.api) as person:
            status, body = await person.signup("k@example.com", PASSWORD)
            assert status == 403, body
    finally:
        await heliograph.running.stop()


async def test_password_change_ends_other_sessions(heliograph_on_each_db: Heliograph) -> None:
    heliograph = heliograph_on_each_db
    async with Browser(heliograph.api) as laptop, Browser(heliograph.api) as phone:
        await laptop.signup("l@example.com", PASSWORD)
        assert (await phone.login("l@example.com", PASSWORD))[0] == 200
        change = {"current_password": "wrong password", "new_password": "a new password"}
        assert (await laptop.post("/v1/auth/password", change))[0] == 403
        change["current_password"] = PASSWORD
        assert (await laptop.post("/v1/auth/password", change))[0] == 200
        assert (await laptop.get("/v1/auth/me"))[0] == 200
        assert (await phone.get("/v1/auth/me"))[0] == 401
        assert (await phone.login("l@example.com", PASSWORD))[0] == 401
        assert (await phone.login("l@example.com", "a new password"))[0] == 200


@pytest.fixture
def smtp() -> Iterator[tuple[str, Inbox]]:
    with smtp_server() as running:
        yield running


async def test_password_reset_by_email(
    tmp_path: Path, analytics_dir: Path, fake: Fake, smtp: tuple[str, Inbox]
) -> None:
    url, inbox = smtp
    settings = heliograph_settings(
        tmp_path, analytics_dir, fake, smtp_url=url, public_url="https://hg.example"
    )
    heliograph = await start_heliograph(settings)
    try:
        async with Browser(heliograph.api) as person:
            await person.signup("m@example.com", PASSWORD)
            status, body = await person.post("/v1/auth/password-reset", {"email": "m@example.com"})
            assert (status, body["data"]["emailed"]) == (202, True)
            # An unknown address gets the same answer and no mail.
            answer = await person.post("/v1/auth/password-reset", {"email": "no@example.com"})
            assert answer == (status, body)
            for _ in range(100):
                if inbox.messages:
                    break
                await asyncio.sleep(0.02)
            assert len(inbox.messages) == 1
            message = inbox.messages[0]
            assert message["To"] == "m@example.com"
            payload = message.get_payload(decode=True)
            assert isinstance(payload, bytes)
            text = payload.decode()
            match = re.search(r"https://hg\.example/reset-password\?token=(\S+)", text)
            assert match, text
            token = match.group(1)
            reset = {"token": token, "new_password": "reset password 1"}
            assert (await person.post("/v1/auth/password-reset/confirm", reset))[0] == 200
            # The old session ended; the link works once.
            assert (await person.get("/v1/auth/me"))[0] == 401
            assert (await person.post("/v1/auth/password-reset/confirm", reset))[0] == 403
            assert (await person.login("m@example.com", "reset password 1"))[0] == 200
    finally:
        await heliograph.running.stop()


async def test_throttled_logins_get_429_with_retry_after(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    settings = heliograph_settings(
        tmp_path,
        analytics_dir,
        fake,
        login_attempts_per_account=3,
        login_attempts_per_address=6,
        login_window_s=600.0,
    )
    heliograph = await start_heliograph(settings)
    try:
        async with Browser(heliograph.api) as attacker:
            statuses = [(await attacker.login("n@example.com", "guess"))[0] for _ in range(4)]
            assert statuses == [401, 401, 401, 429]
            async with attacker.session.post(
                heliograph.api + "/v1/auth/login",
                json={"email": "n@example.com", "password": "guess"},
            ) as response:
                assert response.status == 429
                assert 1 <= int(response.headers["Retry-After"]) <= 600
                assert "too many" in (await response.json())["error"]
            # Per address too: other accounts from the same address run out after 6 in all.
            others = [(await attacker.login(f"o{i}@example.com", "guess"))[0] for i in range(3)]
            assert others[-1] == 429
    finally:
        await heliograph.running.stop()


def test_cli_creates_users_and_resets_passwords(tmp_path: Path, database_url: str) -> None:
    runner = CliRunner()
    env = {"HELIOGRAPH_DATA_DIR": str(tmp_path / "data"), "HELIOGRAPH_DATABASE_URL": database_url}
    created = runner.invoke(
        cli,
        ["users", "create", "--email", "p@example.com", "--password", PASSWORD, "--org", "Acme"],
        env=env,
    )
    assert created.exit_code == 0, created.output
    organization_id = created.output.split()[-1]
    viewer = runner.invoke(
        cli,
        [
            "users",
            "create",
            "--email",
            "q@example.com",
            "--password",
            PASSWORD,
            "--org",
            organization_id,
            "--role",
            "viewer",
        ],
        env=env,
    )
    assert viewer.exit_code == 0, viewer.output
    assert f"viewer of organization {organization_id}" in viewer.output
    again = runner.invoke(
        cli, ["users", "create", "--email", "P@example.com", "--password", PASSWORD], env=env
    )
    assert again.exit_code == 1
    assert "exists" in again.output
    listed = runner.invoke(cli, ["users", "list"], env=env)
    assert "p@example.com  Acme (owner)" in listed.output
    assert "q@example.com  Acme (viewer)" in listed.output
    reset = runner.invoke(
        cli,
        ["users", "reset-password", "--email", "q@example.com", "--password", "another one!"],
        env=env,
    )
    assert reset.exit_code == 0, reset.output
    unknown = runner.invoke(
        cli, ["users", "reset-password", "--email", "z@example.com", "--password", "x" * 9], env=env
    )
    assert unknown.exit_code == 1
    assert "no user" in unknown.output
