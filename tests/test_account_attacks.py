"""An attacker's pass over accounts and access: privilege escalation, other
organizations' ids, CSRF, session and token handling, secrets in answers and the audit log, proxy
keys out of their lane, throttles flushed by floods. Each finding of that pass, now fixed, and
each attack that held, is a regression test here."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from heliograph.api.cookies import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from heliograph.api.deps import ORGANIZATION_HEADER
from heliograph.api.openapi import document
from heliograph.domain.access import KeyPermissions, Role
from heliograph.services.accounts import SsoClaims
from heliograph.services.audit import SYSTEM, Actor, AuditQuery
from heliograph.services.sso import local_path
from heliograph.services.throttle import Throttled
from test_permissions import PASSWORD, Person, new_key, sign_in

SECRET = "sk-openai-attack-secret-0123456789abcdWXYZ"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def hg(heliograph_on_each_db: Heliograph) -> Heliograph:
    """Every test here runs on SQLite, then on PostgreSQL."""
    return heliograph_on_each_db


async def call(
    hg: Heliograph,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    key: str | None = None,
) -> tuple[int, Any]:
    """One call to the API: with `headers` as given, else as the API key (`key` or the default)."""
    sent = headers if headers is not None else hg.auth(key)
    async with aiohttp.ClientSession() as session:
        async with session.request(method, hg.api + path, json=body, headers=sent) as response:
            return response.status, await response.json(content_type=None)


def org_path(person: Person, rest: str = "") -> str:
    return f"/v1/organizations/{person.organization_id}{rest}"


# Privilege escalation


async def test_an_admin_cannot_make_anyone_owner_or_touch_the_owner(hg: Heliograph) -> None:
    owner = sign_in(hg, hg.organization_id, Role.OWNER)
    admin = sign_in(hg, hg.organization_id, Role.ADMIN)
    viewer = sign_in(hg, hg.organization_id, Role.VIEWER)
    for target in (admin, viewer):
        path = org_path(admin, f"/members/{target.user_id}")
        status, _ = await call(hg, "PATCH", path, {"role": "owner"}, admin.headers())
        assert status == 403
    path = org_path(admin, f"/members/{owner.user_id}")
    assert (await call(hg, "PATCH", path, {"role": "viewer"}, admin.headers()))[0] == 403
    assert (await call(hg, "DELETE", path, None, admin.headers()))[0] == 403
    transfer = org_path(admin, "/transfer")
    body = {"user_id": admin.user_id}
    assert (await call(hg, "POST", transfer, body, admin.headers()))[0] == 403
    invite = {"email": "x@example.com", "role": "owner"}
    status, _ = await call(hg, "POST", org_path(admin, "/invitations"), invite, admin.headers())
    assert status == 400
    roles = hg.running.services.accounts
    assert roles.role_of(owner.user_id, hg.organization_id) is Role.OWNER
    assert roles.role_of(admin.user_id, hg.organization_id) is Role.ADMIN


async def test_members_and_viewers_cannot_manage_people_or_keys(hg: Heliograph) -> None:
    admin = sign_in(hg, hg.organization_id, Role.ADMIN)
    for role in (Role.MEMBER, Role.VIEWER):
        person = sign_in(hg, hg.organization_id, role)
        headers = person.headers()
        invite = {"email": f"{uuid.uuid4().hex[:6]}@example.com", "role": "viewer"}
        assert (await call(hg, "POST", org_path(person, "/invitations"), invite, headers))[0] == 403
        path = org_path(person, f"/members/{person.user_id}")
        assert (await call(hg, "PATCH", path, {"role": "admin"}, headers))[0] == 403
        path = org_path(person, f"/members/{admin.user_id}")
        assert (await call(hg, "DELETE", path, None, headers))[0] == 403
        body = {"api_key_name": "mine", "key_permissions": "rw"}
        assert (await call(hg, "POST", "/v1/api-keys", body, headers))[0] == 403
        assert (await call(hg, "GET", "/v1/audit", None, headers))[0] == 403
    assert hg.running.services.accounts.role_of(admin.user_id, hg.organization_id) is Role.ADMIN


async def test_keys_cannot_climb_past_their_permissions(hg: Heliograph) -> None:
    for permissions in (KeyPermissions.READ, KeyPermissions.WRITE):
        key = new_key(hg, permissions)
        body = {"api_key_name": "climb", "key_permissions": "rw"}
        assert (await call(hg, "POST", "/v1/api-keys", body, key=key))[0] == 403
    rw = new_key(hg, KeyPermissions.READ_WRITE)
    member = sign_in(hg, hg.organization_id, Role.MEMBER)
    path = f"/v1/organizations/{hg.organization_id}/members/{member.user_id}"
    assert (await call(hg, "PATCH", path, {"role": "admin"}, key=rw))[0] == 403
    assert (await call(hg, "DELETE", path, None, key=rw))[0] == 403
    assert (await call(hg, "GET", "/v1/audit", None, key=rw))[0] == 403
    invite = {"email": "k@example.com", "role": "admin"}
    path = f"/v1/organizations/{hg.organization_id}/invitations"
    assert (await call(hg, "POST", path, invite, key=rw))[0] == 403
    path = f"/v1/organizations/{hg.organization_id}"
    assert (await call(hg, "DELETE", path, None, key=rw))[0] == 403


async def test_the_last_owner_cannot_leave_or_step_down(hg: Heliograph) -> None:
    owner = sign_in(hg, hg.organization_id, Role.OWNER)
    path = org_path(owner, f"/members/{owner.user_id}")
    assert (await call(hg, "DELETE", path, None, owner.headers()))[0] == 403
    assert (await call(hg, "PATCH", path, {"role": "admin"}, owner.headers()))[0] == 403
    transfer = {"user_id": str(uuid.uuid4())}  # not a member
    status, _ = await call(hg, "POST", org_path(owner, "/transfer"), transfer, owner.headers())
    assert status == 404
    assert hg.running.services.accounts.role_of(owner.user_id, hg.organization_id) is Role.OWNER


# Other organizations


async def test_other_organizations_ids_are_refused_on_every_new_route(hg: Heliograph) -> None:
    """An admin of one organization names another's keys, members, invitations, provider and
    proxy keys: every call is a 4xx and nothing of the other organization changes."""
    other_id, other_key = hg.new_organization("victim")
    victim = sign_in(hg, other_id, Role.OWNER)
    admin = sign_in(hg, hg.organization_id, Role.ADMIN)
    services = hg.running.services
    other_api_key = services.keys.create_key(other_id, "victim key").key_id
    body = {"providerName": "openai", "providerKey": SECRET, "providerKeyName": "v"}
    status, created = await call(hg, "POST", "/v1/api-keys/provider-key", body, key=other_key)
    assert status == 201
    provider_key_id = created["data"]["id"]
    proxy = {"proxyKeyName": "p", "providerKeyId": provider_key_id}
    status, made = await call(hg, "POST", "/v1/api-keys/proxy-key", proxy, key=other_key)
    assert status == 201
    proxy_key_id = made["data"]["id"]
    invitation = services.organizations.invite(other_id, "v@example.com", Role.ADMIN, SYSTEM)

    for headers in (admin.headers(), hg.auth()):
        calls: list[tuple[str, str, Any]] = [
            ("PATCH", f"/v1/api-keys/{other_api_key}", {"api_key_name": "mine"}),
            ("DELETE", f"/v1/api-keys/{other_api_key}", None),
            ("GET", f"/v1/api-keys/provider-key/{provider_key_id}", None),
            ("PATCH", f"/v1/api-keys/provider-key/{provider_key_id}", {"providerKeyName": "x"}),
            ("DELETE", f"/v1/api-keys/provider-key/{provider_key_id}", None),
            ("POST", "/v1/api-keys/proxy-key", {**proxy, "proxyKeyName": "steal"}),
            ("DELETE", f"/v1/api-keys/proxy-key/{proxy_key_id}", None),
            ("GET", f"/v1/organizations/{other_id}", None),
            ("GET", f"/v1/organizations/{other_id}/members", None),
            ("PATCH", f"/v1/organizations/{other_id}/members/{victim.user_id}", {"role": "viewer"}),
            ("DELETE", f"/v1/organizations/{other_id}/members/{victim.user_id}", None),
            ("GET", f"/v1/organizations/{other_id}/invitations", None),
            (
                "DELETE",
                f"/v1/organizations/{other_id}/invitations/{invitation.invitation.id}",
                None,
            ),
            ("POST", f"/v1/organizations/{other_id}/invitations", {"email": "a@example.com"}),
            ("DELETE", f"/v1/organizations/{other_id}", None),
        ]
        for method, path, payload in calls:
            status, answer = await call(hg, method, path, payload, headers)
            assert 400 <= status < 500, (method, path, status, answer)
            assert victim.email not in str(answer)
            assert SECRET[-4:] not in str(answer)
    # The admin's header naming the other organization: not a member there.
    status, _ = await call(
        hg, "GET", "/v1/api-keys", None, {**admin.headers(), ORGANIZATION_HEADER: other_id}
    )
    assert status == 403
    assert services.accounts.role_of(victim.user_id, other_id) is Role.OWNER
    assert [k.key_id for k in services.keys.list_keys(other_id, True) if k.name == "victim key"]
    assert services.provider_keys.get(other_id, provider_key_id).name == "v"
    assert [p for p in services.provider_keys.list_proxy_keys(other_id) if p.revoked_at is None]
    assert services.organizations.invitations(other_id)


async def test_the_path_wins_over_the_header_and_must_match_a_membership(hg: Heliograph) -> None:
    other_id, _ = hg.new_organization("other")
    admin = sign_in(hg, hg.organization_id, Role.ADMIN)
    # Member of the header's organization only: the path's organization is refused.
    headers = admin.headers()
    status, _ = await call(hg, "GET", f"/v1/organizations/{other_id}/members", None, headers)
    assert status == 403
    # A viewer in the path's organization, admin in the header's: the path's role applies.
    accounts = hg.running.services.organizations
    accounts.add_member(other_id, admin.user_id, Role.VIEWER, SYSTEM)
    path = f"/v1/organizations/{other_id}/invitations"
    status, _ = await call(hg, "POST", path, {"email": "p@example.com"}, headers)
    assert status == 403


async def test_an_audit_cursor_from_another_organization_shows_nothing(hg: Heliograph) -> None:
    other_id, other_key = hg.new_organization("other")
    await call(hg, "POST", "/v1/api-keys", {"api_key_name": "o"}, key=other_key)
    theirs = hg.running.services.audit.query(AuditQuery(other_id))
    assert theirs
    admin = sign_in(hg, hg.organization_id, Role.ADMIN)
    status, body = await call(hg, "GET", f"/v1/audit?cursor={theirs[0].id}", None, admin.headers())
    assert status == 200
    assert body["data"]["lines"] == []
    status, body = await call(
        hg, "GET", f"/v1/audit?target={theirs[0].target_id}", None, admin.headers()
    )
    assert status == 200
    assert body["data"]["lines"] == []


# CSRF and sessions


def cookies(person: Person, csrf: str | None = None) -> str:
    jar = f"{SESSION_COOKIE}={person.token}"
    return jar if csrf is None else f"{jar}; {CSRF_COOKIE}={csrf}"


async def test_csrf_needs_the_sessions_own_token_in_header_and_cookie(hg: Heliograph) -> None:
    admin = sign_in(hg, hg.organization_id, Role.ADMIN)
    other = sign_in(hg, hg.organization_id, Role.ADMIN)
    org = {ORGANIZATION_HEADER: hg.organization_id}
    attempts = [
        {"Cookie": cookies(admin), **org},  # no token at all
        {"Cookie": cookies(admin, admin.csrf), **org},  # cookie only
        {"Cookie": cookies(admin), CSRF_HEADER: admin.csrf, **org},  # header only
        {"Cookie": cookies(admin, other.csrf), CSRF_HEADER: other.csrf, **org},  # another's
        {"Cookie": cookies(admin, "x"), CSRF_HEADER: "x", **org},  # made up, matching
        {"Cookie": cookies(admin, ""), CSRF_HEADER: "", **org},  # empty, matching
        {"Cookie": cookies(admin, admin.csrf), CSRF_HEADER: admin.csrf[:-1], **org},
    ]
    body = {"api_key_name": "csrf", "key_permissions": "rw"}
    for headers in attempts:
        status, _ = await call(hg, "POST", "/v1/api-keys", body, headers)
        assert status == 403, headers
        override = {**headers, "X-HTTP-Method-Override": "POST"}
        assert (await call(hg, "GET", "/v1/api-keys", None, override))[0] == 200
    keys = hg.running.services.keys.list_keys(hg.organization_id, True)
    assert all(key.name != "csrf" for key in keys)
    assert (await call(hg, "POST", "/v1/auth/logout", None, attempts[0]))[0] == 403
    assert (await call(hg, "GET", "/v1/auth/me", None, {"Cookie": cookies(admin)}))[0] == 200


async def test_login_issues_a_fresh_session_and_logout_ends_only_its_own(
    hg: Heliograph,
) -> None:
    person = sign_in(hg, hg.organization_id, Role.MEMBER)
    body = {"email": person.email, "password": PASSWORD}
    # A planted session cookie (fixation) is not reused: login sets a new one.
    planted = {"Cookie": cookies(person, person.csrf)}
    async with aiohttp.ClientSession() as session:
        async with session.post(hg.api + "/v1/auth/login", json=body, headers=planted) as response:
            assert response.status == 200
            fresh = response.cookies[SESSION_COOKIE].value
    assert fresh
    assert fresh != person.token
    second = Person(person.user_id, person.email, fresh, "", person.organization_id)
    # Logging out the first session leaves the second alive, and the reverse.
    status, _ = await call(hg, "POST", "/v1/auth/logout", None, person.headers())
    assert status == 200
    assert (await call(hg, "GET", "/v1/auth/me", None, {"Cookie": cookies(person)}))[0] == 401
    assert (await call(hg, "GET", "/v1/auth/me", None, {"Cookie": cookies(second)}))[0] == 200


async def test_no_session_token_or_password_in_the_audit_log_or_responses(
    hg: Heliograph,
) -> None:
    person = sign_in(hg, hg.organization_id, Role.ADMIN)
    body = {"email": person.email, "password": PASSWORD}
    async with aiohttp.ClientSession() as session:
        async with session.post(hg.api + "/v1/auth/login", json=body) as response:
            token = response.cookies[SESSION_COOKIE].value
            answer = await response.text()
    assert token not in answer
    assert PASSWORD not in answer
    wrong = {"email": person.email, "password": "a wrong password"}
    await call(hg, "POST", "/v1/auth/login", wrong, {})
    with hg.running.services.engine.connect() as db:
        rows = db.execute(text("SELECT * FROM audit_log")).all()
        sessions = db.execute(text("SELECT id FROM user_sessions")).all()
    dump = repr(rows)
    assert token not in dump
    assert PASSWORD not in dump
    assert "a wrong password" not in dump
    assert all(token != row[0] for row in sessions)  # only its hash is stored


# Tokens


async def test_a_reset_link_stops_working_once_the_password_is_reset(hg: Heliograph) -> None:
    """Two reset links were mailed (or one was, and then the person changed the password): once
    one is used, the other must not set the password again."""
    person = sign_in(hg, hg.organization_id, Role.MEMBER)
    accounts = hg.running.services.accounts
    first = accounts.request_reset(person.email, SYSTEM)
    second = accounts.request_reset(person.email, SYSTEM)
    assert first is not None
    assert second is not None
    reset = {"token": first[0], "new_password": "the owner's new password"}
    assert (await call(hg, "POST", "/v1/auth/password-reset/confirm", reset, {}))[0] == 200
    stale = {"token": second[0], "new_password": "the attacker's password"}
    status, _ = await call(hg, "POST", "/v1/auth/password-reset/confirm", stale, {})
    assert status == 403


async def test_a_reset_link_stops_working_once_the_password_is_changed(hg: Heliograph) -> None:
    person = sign_in(hg, hg.organization_id, Role.MEMBER)
    accounts = hg.running.services.accounts
    issued = accounts.request_reset(person.email, SYSTEM)
    assert issued is not None
    change = {"current_password": PASSWORD, "new_password": "a brand new password"}
    status, _ = await call(hg, "POST", "/v1/auth/password", change, person.headers())
    assert status == 200
    stale = {"token": issued[0], "new_password": "the attacker's password"}
    status, _ = await call(hg, "POST", "/v1/auth/password-reset/confirm", stale, {})
    assert status == 403


async def test_an_invitation_token_works_once_and_for_its_address_only(hg: Heliograph) -> None:
    services = hg.running.services
    made = services.organizations.invite(hg.organization_id, "inv@example.com", Role.ADMIN, SYSTEM)
    token = made.link.rpartition("token=")[2]
    intruder = sign_in(hg, hg.organization_id, Role.VIEWER)
    other_id, _ = hg.new_organization("elsewhere")
    stranger = sign_in(hg, other_id, Role.OWNER)
    for person in (intruder, stranger):
        status, _ = await call(
            hg, "POST", "/v1/invitations/accept", {"token": token}, person.headers()
        )
        assert status == 403
    assert services.accounts.role_of(intruder.user_id, hg.organization_id) is Role.VIEWER
    assert services.accounts.role_of(stranger.user_id, hg.organization_id) is None
    # Sign-up with the token under another address is refused too.
    body = {"email": "not-inv@example.com", "password": PASSWORD, "invitation_token": token}
    assert (await call(hg, "POST", "/v1/auth/signup", body, {}))[0] == 403
    body = {"email": "inv@example.com", "password": PASSWORD, "invitation_token": token}
    assert (await call(hg, "POST", "/v1/auth/signup", body, {}))[0] == 201
    body = {"email": "inv2@example.com", "password": PASSWORD, "invitation_token": token}
    assert (await call(hg, "POST", "/v1/auth/signup", body, {}))[0] == 403


# Bad input


async def test_nul_bytes_in_names_are_a_clear_400(hg: Heliograph) -> None:
    """PostgreSQL refuses NUL in text: a name with one must be refused as input, not a 500."""
    status, created = await call(hg, "POST", "/v1/api-keys", {"api_key_name": "ok"})
    assert status == 201
    key_id = created["data"]["id"]
    nul = "bad\u0000name"
    status, _ = await call(hg, "POST", "/v1/api-keys", {"api_key_name": nul})
    assert status == 400
    status, _ = await call(hg, "PATCH", f"/v1/api-keys/{key_id}", {"api_key_name": nul})
    assert status == 400
    body = {"providerName": "openai", "providerKey": SECRET, "providerKeyName": nul}
    assert (await call(hg, "POST", "/v1/api-keys/provider-key", body))[0] == 400


async def test_oversized_bodies_and_passwords_are_refused_before_hashing(hg: Heliograph) -> None:
    huge = {"email": "a@example.com", "password": "p" * 100_000}
    assert (await call(hg, "POST", "/v1/auth/login", huge, {}))[0] in (400, 413)
    assert (await call(hg, "POST", "/v1/auth/signup", huge, {}))[0] in (400, 413)
    long_email = {"email": "a" * 5000 + "@example.com", "password": PASSWORD}
    assert (await call(hg, "POST", "/v1/auth/login", long_email, {}))[0] == 400
    async with aiohttp.ClientSession() as session:
        for raw in (b"{", b'{"email": "\xff\xfe"}', b"\xff\xfe", b"[]", b"null"):
            async with session.post(
                hg.api + "/v1/auth/login", data=raw, headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status == 400, raw
    status, answer = await call(
        hg,
        "POST",
        "/v1/api-keys/provider-key",
        {"providerName": "openai", "providerKey": SECRET + " \u00e9", "providerKeyName": "x"},
    )
    assert status == 400
    assert SECRET not in str(answer)


# Proxy keys and the gateway


async def add_proxy_key(hg: Heliograph) -> tuple[str, str]:
    body = {"providerName": "openai", "providerKey": SECRET, "providerKeyName": "main"}
    status, created = await call(hg, "POST", "/v1/api-keys/provider-key", body)
    assert status == 201
    proxy = {"proxyKeyName": "app", "providerKeyId": created["data"]["id"]}
    status, made = await call(hg, "POST", "/v1/api-keys/proxy-key", proxy)
    assert status == 201
    return str(created["data"]["id"]), str(made["data"]["proxyKey"])


async def test_a_proxy_key_is_no_api_key(hg: Heliograph) -> None:
    _, proxy_key = await add_proxy_key(hg)
    for method, path in (("GET", "/v1/api-keys"), ("GET", "/v1/api-keys/provider-keys")):
        assert (await call(hg, method, path, None, key=proxy_key))[0] == 401
    body = {"api_key_name": "from proxy", "key_permissions": "rw"}
    assert (await call(hg, "POST", "/v1/api-keys", body, key=proxy_key))[0] == 401
    async with aiohttp.ClientSession() as session:
        headers = {"Helicone-Auth": f"Bearer {proxy_key}"}
        url = hg.gateway + "/openai/v1/chat/completions"
        async with session.post(url, json=CHAT, headers=headers) as response:
            assert response.status == 401


async def test_a_proxy_key_sent_beside_helicone_auth_never_reaches_the_provider(
    hg: Heliograph, fake: Fake
) -> None:
    """A caller with its own Helicone key and a proxy key in `Authorization`: the gateway must
    not forward the proxy key (a Heliograph credential) to the provider."""
    _, proxy_key = await add_proxy_key(hg)
    headers = {**hg.gateway_auth(), "Authorization": f"Bearer {proxy_key}"}
    async with aiohttp.ClientSession() as session:
        url = hg.gateway + "/openai/v1/chat/completions"
        async with session.post(url, json=CHAT, headers=headers) as response:
            await response.read()
    # Refused (nothing sent upstream) or sent without it: either holds.
    for seen in fake.seen.requests:
        assert all(proxy_key not in value for value in seen["headers"].values())


async def test_the_audit_log_refuses_updates_and_deletes_in_sql(hg: Heliograph) -> None:
    hg.running.services.audit.record(SYSTEM, "test.line", hg.organization_id)
    engine = hg.running.services.engine
    for statement in ("UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            with engine.begin() as db:
                db.execute(text(statement))
    lines = hg.running.services.audit.query(AuditQuery(hg.organization_id, action="test.line"))
    assert len(lines) == 1


async def test_a_removed_member_loses_access_at_once(hg: Heliograph) -> None:
    owner = sign_in(hg, hg.organization_id, Role.OWNER)
    admin = sign_in(hg, hg.organization_id, Role.ADMIN)
    assert (await call(hg, "GET", "/v1/api-keys", None, admin.headers()))[0] == 200
    path = org_path(owner, f"/members/{admin.user_id}")
    assert (await call(hg, "DELETE", path, None, owner.headers()))[0] == 200
    assert (await call(hg, "GET", "/v1/api-keys", None, admin.headers()))[0] == 403
    assert (await call(hg, "GET", org_path(admin), None, admin.headers()))[0] == 403


def test_sso_next_never_leaves_the_site() -> None:
    hostile = [
        "//evil.example",
        "/\\evil.example",
        "\\evil.example",
        "https://evil.example/",
        "/\tevil",
        "/\n/evil.example",
        "javascript:alert(1)",
        " /x",
        "/x\u2028",
        "",
    ]
    for candidate in hostile:
        assert local_path(candidate) == "/", candidate
    assert local_path("/requests?id=1") == "/requests?id=1"


async def test_throttling_ignores_forwarded_for_and_email_spelling(
    tmp_path: Path, analytics_dir: Path, fake: Fake, database_url: str
) -> None:
    settings = heliograph_settings(
        tmp_path,
        analytics_dir,
        fake,
        database_url=database_url,
        login_attempts_per_account=3,
        login_attempts_per_address=100,
        login_window_s=600.0,
    )
    hg = await start_heliograph(settings)
    try:
        spellings = ["t@example.com", " T@EXAMPLE.COM", "t@Example.com\t", "T@example.COM"]
        statuses = []
        for index, email in enumerate(spellings):
            headers = {"X-Forwarded-For": f"203.0.113.{index}", "X-Real-IP": f"198.51.100.{index}"}
            body = {"email": email, "password": "guess guess"}
            statuses.append((await call(hg, "POST", "/v1/auth/login", body, headers))[0])
        assert statuses == [401, 401, 401, 429]
        # The reset request shares the account's bucket too.
        reset = {"email": "t@example.com"}
        assert (await call(hg, "POST", "/v1/auth/password-reset", reset, {}))[0] == 429
    finally:
        await hg.running.stop()


# Accounts whose e-mail was never proven


async def test_an_open_sign_up_cannot_pre_claim_a_single_sign_on_account(
    tmp_path: Path, analytics_dir: Path, fake: Fake, database_url: str
) -> None:
    """With `HELIOGRAPH_SIGNUP=open`, anyone signs up under any address, unproven. When the
    address's real owner later signs in through the identity provider (which vouches for it),
    the account must not stay open to the squatter's password and session."""
    settings = heliograph_settings(
        tmp_path, analytics_dir, fake, database_url=database_url, signup="open"
    )
    hg = await start_heliograph(settings)
    try:
        squat = {"email": "ceo@corp.example", "password": "the squatter's password"}
        async with aiohttp.ClientSession() as session:
            async with session.post(hg.api + "/v1/auth/signup", json=squat) as response:
                assert response.status == 201
                squatter_token = response.cookies[SESSION_COOKIE].value
        accounts = hg.running.services.accounts
        claims = SsoClaims("https://idp.example", "ceo-subject", "ceo@corp.example", True)
        owner = accounts.sso_sign_in(claims, Actor(address="127.0.0.1"))
        assert owner.token != squatter_token
        # The real owner now works in this account; the squatter must be out of it.
        me = {"Cookie": f"{SESSION_COOKIE}={squatter_token}"}
        assert (await call(hg, "GET", "/v1/auth/me", None, me))[0] == 401
        again = {"email": squat["email"], "password": squat["password"]}
        assert (await call(hg, "POST", "/v1/auth/login", again, {}))[0] == 401
    finally:
        await hg.running.stop()


# Races


async def test_two_owners_stepping_each_other_down_leave_an_owner(hg: Heliograph) -> None:
    """Two owners demote each other at the same moment: each sees another owner, so each
    change passes its check; the organization must still have an owner afterwards."""
    organizations = hg.running.services.organizations
    for _ in range(10):
        org_id, _ = hg.new_organization("race")
        first = sign_in(hg, org_id, Role.OWNER)
        second = sign_in(hg, org_id, Role.OWNER)
        results = await asyncio.gather(
            call(
                hg,
                "PATCH",
                org_path(first, f"/members/{second.user_id}"),
                {"role": "admin"},
                first.headers(),
            ),
            call(
                hg,
                "PATCH",
                org_path(second, f"/members/{first.user_id}"),
                {"role": "admin"},
                second.headers(),
            ),
        )
        owners = [m for m in organizations.members(org_id) if m.role is Role.OWNER]
        assert owners, results


async def test_an_account_without_a_password_takes_no_password(hg: Heliograph) -> None:
    """A single-sign-on account has no password hash; the stand-in hash used for unknown
    accounts must not open it, whatever is sent."""
    person = sign_in(hg, hg.organization_id, Role.MEMBER)
    with hg.running.services.engine.begin() as db:
        db.execute(
            text("UPDATE users SET password_hash = NULL WHERE id = :id"), {"id": person.user_id}
        )
    for password in ("an unknown account's password", "x", PASSWORD):
        body = {"email": person.email, "password": password}
        assert (await call(hg, "POST", "/v1/auth/login", body, {}))[0] == 401


NUL_PATHS = [
    ("GET", "/v1/audit?target=%00"),
    ("GET", "/v1/audit?action=a%00"),
    ("GET", "/v1/audit?actor=%00"),
    ("PATCH", "/v1/api-keys/%00"),
    ("DELETE", "/v1/api-keys/%00"),
    ("GET", "/v1/api-keys/provider-key/%00"),
    ("DELETE", "/v1/api-keys/proxy-key/%00"),
    ("GET", "/v1/invitations/%00"),
    ("GET", "/v1/organizations/%00"),
    ("GET", "/v1/organizations/{org}/members/%00"),
    ("DELETE", "/v1/organizations/{org}/members/%00"),
    ("DELETE", "/v1/organizations/{org}/invitations/%00"),
]


async def test_nul_bytes_in_ids_and_filters_are_never_a_500(
    hg: Heliograph, request: pytest.FixtureRequest
) -> None:
    """A NUL in a path id or a query filter matches nothing or is refused, never a 500
    (PostgreSQL refuses NUL in text before comparing anything; SQLite just finds nothing)."""
    owner = sign_in(hg, hg.organization_id, Role.OWNER)
    failures = []
    for method, path in NUL_PATHS:
        filled = path.replace("{org}", hg.organization_id)
        body = {"api_key_name": "x"} if method == "PATCH" else None
        status, _ = await call(hg, method, filled, body, owner.headers())
        if status >= 500:
            failures.append((method, path, status))
    assert failures == []


async def test_a_flood_of_new_addresses_does_not_reset_an_accounts_throttle(
    heliograph: Heliograph,
) -> None:
    """An attacker guesses a password until the account is throttled, then sends cheap
    attempts (password-reset requests need no hash) from fresh IPv6 addresses of one /64 under
    made-up e-mails: the account's count must survive, else the guessing starts over."""
    throttle = heliograph.running.services.login_throttle
    victim, address = "victim@example.com", "198.51.100.7"
    for _ in range(heliograph.running.services.settings.login_attempts_per_account):
        await throttle.attempt(victim, address)
    with pytest.raises(Throttled):
        await throttle.attempt(victim, address)
    for index in range(50_000):
        with contextlib.suppress(Throttled):
            await throttle.attempt(f"junk{index}@example.com", f"2001:db8::{index:x}")
    with pytest.raises(Throttled):
        await throttle.attempt(victim, address)


# Malformed input on every route this change added

NEW_PREFIXES = ("/v1/auth", "/v1/organizations", "/v1/invitations", "/v1/api-keys", "/v1/audit")
BAD_SEGMENTS = ("%ED%A0%80", "%FF%FE", "..%2F..%2Fv1%2Frate-limits", "..", "x" * 5000)
BAD_BODIES = (
    b'{"name": "\xff\xfe"}',  # invalid UTF-8
    b'{"api_key_name": "\\ud800", "email": "\\udc00@x.io", "password": "\\ud800xxxxxxxx"}',
    b"[" * 100_000 + b"]" * 100_000,  # nested far past any parser's depth
    b'{"a": ' * 5000 + b"1" + b"}" * 5000,
)


async def test_malformed_ids_and_bodies_on_every_new_route_are_4xx_and_logging_goes_on(
    hg: Heliograph, fake: Fake
) -> None:
    """Each route this change added, as an owner with a live session: ids of invalid UTF-8, a
    lone surrogate, `..` or 5,000 characters, and bodies of invalid UTF-8, lone surrogates or
    deep nesting. Every answer is a 4xx in the envelope, and the gateway still logs after."""
    owner = sign_in(hg, hg.organization_id, Role.OWNER)
    failures = []
    async with aiohttp.ClientSession() as session:
        for path, operations in document()["paths"].items():  # every route, none missed
            if not path.startswith(NEW_PREFIXES):
                continue
            for method in operations:
                for url in _bad_urls(path, owner):
                    for body in (None, *BAD_BODIES) if method != "get" else (None,):
                        async with session.request(
                            method.upper(),
                            hg.api + url,
                            data=body,
                            headers={**owner.headers(), "Content-Type": "application/json"},
                        ) as response:
                            answer = await response.read()
                            # Read input is refused; a query a route takes no part of may be
                            # ignored, but never breaks it.
                            read = body is not None or "{" in path
                            refused = 400 <= response.status < 500 and b'"error"' in answer
                            if (read and not refused) or response.status >= 500:
                                failures.append((method, url[:80], response.status))
    assert failures == []
    request_id = await _logged_through_gateway(hg)
    assert (await hg.wait_for(request_id, timeout_s=5))["request_id"] == request_id


def _bad_urls(path: str, owner: Person) -> list[str]:
    filled = path.replace("{organization_id}", owner.organization_id)
    if "{" not in filled:
        return [filled + "?cursor=%ED%A0%80&since=%FF&limit=-1&action=" + "a" * 5000]
    head, _, _ = filled.partition("{")
    tail = filled[filled.index("}") + 1 :] if "}" in filled else ""
    return [head + segment + tail for segment in BAD_SEGMENTS]


async def _logged_through_gateway(hg: Heliograph) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            hg.gateway + "/openai/v1/chat/completions", json=CHAT, headers=hg.gateway_auth()
        ) as response:
            assert response.status == 200
            return response.headers["Helicone-Id"]
