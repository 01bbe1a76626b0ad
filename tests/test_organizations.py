"""Organizations, members, roles and invitations: the rules in the service (on SQLite and
PostgreSQL), then the same through the API with real session cookies (a first user who owns,
invited people with roles, CSRF, another organization's ids) and an invitation delivered by a
real SMTP server on loopback."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy import update

from browser import Browser
from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from heliograph.appdb.engine import session_factory
from heliograph.appdb.models import Invitation
from heliograph.domain.access import Forbidden, Role
from heliograph.domain.errors import InvalidInput
from heliograph.services.accounts import InvalidEmail
from heliograph.services.audit import SYSTEM, AuditQuery
from heliograph.services.container import AppDb, open_app_db
from heliograph.services.organizations import Conflict, NotFound
from heliograph.settings import load_settings

PASSWORD = "correct horse battery staple"


# The service, on each app DB


@pytest.fixture
def app_db(tmp_path: Path, database_url: str) -> Iterator[AppDb]:
    settings = load_settings({}, data_dir=tmp_path / "data", database_url=database_url)
    opened = open_app_db(settings)
    yield opened
    opened.engine.dispose()


def person(app_db: AppDb, address: str) -> str:
    user_id, _ = app_db.accounts.create_user(address, PASSWORD, None)
    return user_id


def test_members_keep_an_owner_and_roles_change_by_the_rules(app_db: AppDb) -> None:
    orgs = app_db.organizations
    owner, admin, viewer = (person(app_db, f"{n}@example.com") for n in ("o", "a", "v"))
    org = orgs.create("  Acme   Inc ", owner, SYSTEM)
    assert orgs.get(org).name == "Acme Inc"
    assert orgs.resolve(org) == org
    assert orgs.resolve("Acme Inc") == org
    assert orgs.resolve("acme inc") is None
    orgs.add_member(org, admin, Role.ADMIN, SYSTEM)
    orgs.add_member(org, viewer, Role.VIEWER, SYSTEM)
    orgs.add_member(org, viewer, Role.ADMIN, SYSTEM)  # an existing member keeps their role
    roles = {m.email: m.role for m in orgs.members(org)}
    assert roles == {
        "o@example.com": Role.OWNER,
        "a@example.com": Role.ADMIN,
        "v@example.com": Role.VIEWER,
    }
    assert [(m.name, m.role) for m in orgs.memberships(viewer)] == [("Acme Inc", Role.VIEWER)]

    with pytest.raises(Forbidden, match="transfer"):
        orgs.change_role(org, viewer, Role.OWNER, Role.OWNER, SYSTEM)
    with pytest.raises(Forbidden, match="only an owner"):
        orgs.change_role(org, owner, Role.MEMBER, Role.ADMIN, SYSTEM)
    with pytest.raises(Forbidden, match="only an owner"):
        orgs.remove_member(org, owner, Role.ADMIN, SYSTEM)
    with pytest.raises(Forbidden, match="last owner"):
        orgs.change_role(org, owner, Role.ADMIN, Role.OWNER, SYSTEM)
    with pytest.raises(Forbidden, match="last owner"):
        orgs.remove_member(org, owner, Role.OWNER, SYSTEM)
    with pytest.raises(NotFound):
        orgs.change_role(org, "no-such-user", Role.MEMBER, Role.OWNER, SYSTEM)
    assert orgs.change_role(org, viewer, Role.MEMBER, Role.ADMIN, SYSTEM).role is Role.MEMBER

    with pytest.raises(NotFound):
        orgs.transfer(org, "no-such-user", owner, SYSTEM)
    with pytest.raises(Forbidden):
        orgs.transfer(org, viewer, admin, SYSTEM)  # only the owner hands it over
    orgs.transfer(org, admin, owner, SYSTEM)
    roles = {m.email: m.role for m in orgs.members(org)}
    assert roles["a@example.com"] is Role.OWNER
    assert roles["o@example.com"] is Role.ADMIN
    orgs.remove_member(org, viewer, Role.ADMIN, SYSTEM)
    assert {m.user_id for m in orgs.members(org)} == {owner, admin}

    actions = [line.action for line in app_db.audit.query(AuditQuery(org))]
    assert actions.count("member.role_change") == 1
    for action in ("organization.create", "member.add", "organization.transfer", "member.remove"):
        assert action in actions
    with pytest.raises(InvalidInput):
        orgs.create(" ", owner, SYSTEM)
    with pytest.raises(InvalidInput):
        orgs.create("x" * 201, owner, SYSTEM)


def test_invitations_expire_work_once_and_only_for_their_address(app_db: AppDb) -> None:
    orgs = app_db.organizations
    owner, invited, stranger = (person(app_db, f"{n}@example.com") for n in ("o", "i", "s"))
    org = orgs.create("Acme", owner, SYSTEM)
    made = orgs.invite(org, " I@Example.com ", Role.VIEWER, SYSTEM)
    token = parse_qs(urlsplit(made.link).query)["token"][0]
    pending = orgs.pending_invitation(token)
    assert pending is not None
    assert (pending.email, pending.role, pending.organization_name) == (
        "i@example.com",
        Role.VIEWER,
        "Acme",
    )
    assert [i.id for i in orgs.invitations(org)] == [made.invitation.id]
    with pytest.raises(Forbidden, match="another e-mail"):
        orgs.accept_invitation(token, stranger, "s@example.com", SYSTEM)
    joined = orgs.accept_invitation(token, invited, "I@example.com", SYSTEM)
    assert (joined.organization_id, joined.role) == (org, Role.VIEWER)
    with pytest.raises(NotFound):
        orgs.accept_invitation(token, invited, "i@example.com", SYSTEM)
    assert orgs.pending_invitation(token) is None
    assert orgs.invitations(org) == []
    with pytest.raises(Conflict):
        orgs.invite(org, "i@example.com", Role.MEMBER, SYSTEM)  # already a member

    # A newer invitation to the same address replaces the older; a revoked one is dead.
    first = orgs.invite(org, "s@example.com", Role.MEMBER, SYSTEM)
    second = orgs.invite(org, "s@example.com", Role.ADMIN, SYSTEM)
    assert orgs.pending_invitation(_token(first.link)) is None
    orgs.revoke_invitation(org, second.invitation.id, SYSTEM)
    assert orgs.pending_invitation(_token(second.link)) is None
    with pytest.raises(NotFound):
        orgs.revoke_invitation(org, second.invitation.id, SYSTEM)

    expiring = orgs.invite(org, "s@example.com", Role.MEMBER, SYSTEM)
    assert orgs.pending_invitation(_token(expiring.link)) is not None
    with session_factory(app_db.engine).begin() as db:  # its time runs out
        past = datetime.now(UTC) - timedelta(seconds=1)
        db.execute(
            update(Invitation)
            .where(Invitation.id == expiring.invitation.id)
            .values(expires_at=past)
        )
    assert orgs.pending_invitation(_token(expiring.link)) is None
    with pytest.raises(NotFound, match="expired"):
        orgs.accept_invitation(_token(expiring.link), stranger, "s@example.com", SYSTEM)
    assert [m.role for m in orgs.members(org) if m.user_id == stranger] == []

    # Two accepts racing for one invitation: one joins, the other is told it is used.
    racing = _token(orgs.invite(org, "s@example.com", Role.ADMIN, SYSTEM).link)
    with ThreadPoolExecutor(2) as pool:
        accept = orgs.accept_invitation
        tries = [pool.submit(accept, racing, stranger, "s@example.com", SYSTEM) for _ in "ab"]
        outcomes = [type(t.exception()).__name__ if t.exception() else "joined" for t in tries]
    assert sorted(outcomes) == ["NotFound", "joined"]
    assert [m.role for m in orgs.members(org) if m.user_id == stranger] == [Role.ADMIN]

    with pytest.raises(InvalidInput, match="admin, member or viewer"):
        orgs.invite(org, "x@example.com", Role.OWNER, SYSTEM)
    with pytest.raises(InvalidEmail):
        orgs.invite(org, "not an address", Role.MEMBER, SYSTEM)
    assert orgs.pending_invitation("x" * 500) is None
    actions = {line.action for line in app_db.audit.query(AuditQuery(org))}
    assert {"invitation.create", "invitation.accept", "invitation.revoke"} <= actions


def _token(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


# The API, with session cookies


async def signed_in(hg: Heliograph, address: str, organization_id: str | None = None) -> Browser:
    """A browser signed in as a person made by `heliograph users create` (no organization)."""
    hg.running.services.accounts.create_user(address, PASSWORD, None)
    browser = Browser(hg.api, organization_id)
    status, body = await browser.login(address, PASSWORD)
    assert status == 200, body
    return browser


async def invite(owner: Browser, address: str, role: str) -> dict[str, Any]:
    status, body = await owner.post(
        f"/v1/organizations/{owner.organization_id}/invitations", {"email": address, "role": role}
    )
    assert status == 201, body
    data: dict[str, Any] = body["data"]
    return data


async def member_of(hg: Heliograph, owner: Browser, address: str, role: str) -> Browser:
    """A person invited by `owner` with `role`, who accepted the invitation."""
    made = await invite(owner, address, role)
    browser = await signed_in(hg, address)
    status, body = await browser.post("/v1/invitations/accept", {"token": _token(made["link"])})
    assert status == 200, body
    assert body["data"]["role"] == role
    browser.organization_id = owner.organization_id
    return browser


async def claim(hg: Heliograph, owner: Browser) -> tuple[int, Any]:
    """Make `owner` the owner of the organization `heliograph init` made, as an operator does
    with `heliograph users create --org`, and sign them in."""
    hg.running.services.accounts.create_user("owner@example.com", PASSWORD, hg.organization_id)
    owner.organization_id = hg.organization_id
    return await owner.login("owner@example.com", PASSWORD)


async def test_a_first_owner_invites_people_whose_roles_are_enforced(
    heliograph_on_each_db: Heliograph,
) -> None:
    hg = heliograph_on_each_db
    org = hg.organization_id
    async with Browser(hg.api) as owner:
        status, body = await claim(hg, owner)
        assert status == 200, body
        assert owner.organization_id == org
        async with Browser(hg.api) as late:
            status, refused = await late.signup("late@example.com", PASSWORD)
            assert status == 403, refused

        made = await invite(owner, "Newbie@Example.com", "member")
        assert made["email"] == "newbie@example.com"
        assert made["emailed"] is False
        assert "/invite?token=" in made["link"]
        async with Browser(hg.api) as anyone:
            status, shown = await anyone.get(f"/v1/invitations/{_token(made['link'])}")
        assert status == 200
        assert shown["data"]["organization_name"] == "test"
        assert shown["data"]["role"] == "member"
        # Signing up with the invitation joins with its role.
        async with Browser(hg.api) as newbie:
            status, body = await newbie.signup(
                "newbie@example.com", PASSWORD, invitation_token=_token(made["link"])
            )
            assert status == 201, body
            assert body["data"]["organization_id"] == org
        status, listed = await owner.get(f"/v1/organizations/{org}/invitations")
        assert status == 200
        assert listed["data"] == []

        viewer = await member_of(hg, owner, "viewer@example.com", "viewer")
        member = await member_of(hg, owner, "member@example.com", "member")
        admin = await member_of(hg, owner, "admin@example.com", "admin")
        async with viewer, member, admin:
            status, members = await viewer.get(f"/v1/organizations/{org}/members")
            assert status == 200
            roles = {m["email"]: m["role"] for m in members["data"]}
            assert roles == {
                "owner@example.com": "owner",
                "newbie@example.com": "member",
                "viewer@example.com": "viewer",
                "member@example.com": "member",
                "admin@example.com": "admin",
            }
            ids = {m["email"]: m["user_id"] for m in members["data"]}

            # A viewer reads but cannot write; a member writes but cannot manage keys.
            status, _ = await viewer.get("/v1/rate-limits")
            assert status == 200
            status, body = await viewer.post("/v1/session/s1/tag", {"tag": "x"})
            assert status == 403
            assert "viewer role" in body["error"]
            status, body = await member.post("/v1/session/s1/tag", {"tag": "x"})
            assert status != 403, body
            status, body = await member.post("/v1/api-keys", {"api_key_name": "k"})
            assert status == 403, body
            status, body = await admin.post("/v1/api-keys", {"api_key_name": "k"})
            assert status in (200, 201), body
            for who in (viewer, member):
                status, _ = await who.post(
                    f"/v1/organizations/{org}/invitations", {"email": "x@example.com"}
                )
                assert status == 403
                status, _ = await who.call(
                    "PATCH",
                    f"/v1/organizations/{org}/members/{ids['newbie@example.com']}",
                    {"role": "viewer"},
                )
                assert status == 403

            # Role rules: nobody becomes owner by a change, an admin cannot touch the owner, the
            # last owner stays.
            members_of = f"/v1/organizations/{org}/members"
            status, body = await admin.call(
                "PATCH", f"{members_of}/{ids['member@example.com']}", {"role": "owner"}
            )
            assert status == 403
            assert "transfer" in body["error"]
            status, body = await admin.call(
                "PATCH", f"{members_of}/{ids['owner@example.com']}", {"role": "member"}
            )
            assert status == 403
            status, body = await admin.call("DELETE", f"{members_of}/{ids['owner@example.com']}")
            assert status == 403
            status, body = await owner.call(
                "PATCH", f"{members_of}/{ids['owner@example.com']}", {"role": "admin"}
            )
            assert status == 403
            assert "last owner" in body["error"]
            status, body = await owner.call("DELETE", f"{members_of}/{ids['owner@example.com']}")
            assert status == 403
            assert "last owner" in body["error"]
            status, body = await admin.call(
                "PATCH", f"{members_of}/{ids['viewer@example.com']}", {"role": "member"}
            )
            assert status == 200
            assert body["data"]["role"] == "member"
            status, body = await admin.call(
                "PATCH", f"{members_of}/{ids['viewer@example.com']}", {"role": "boss"}
            )
            assert status == 400
            assert "role must be one of" in body["error"]
            status, _ = await admin.call("PATCH", f"{members_of}/nobody", {"role": "member"})
            assert status == 404

            # Anyone may leave; then the organization is closed to them.
            status, _ = await viewer.call("DELETE", f"{members_of}/{ids['viewer@example.com']}")
            assert status == 200
            status, body = await viewer.get(f"/v1/organizations/{org}")
            assert status == 403
            assert "not a member" in body["error"]
            status, body = await admin.call("DELETE", f"{members_of}/{ids['member@example.com']}")
            assert status == 200
            status, body = await member.get("/v1/organizations")
            assert status == 200
            assert body["data"] == []

    audit = hg.running.services.audit.query(AuditQuery(org, action="member."))
    assert {line.action for line in audit} >= {"member.add", "member.role_change", "member.remove"}


async def test_organizations_are_created_renamed_transferred_and_deleted(
    heliograph_on_each_db: Heliograph,
) -> None:
    hg = heliograph_on_each_db
    async with Browser(hg.api) as owner:
        await claim(hg, owner)
        status, created = await owner.post("/v1/organizations", {"name": "Second"})
        assert status == 201
        assert created["data"]["role"] == "owner"
        second = created["data"]["id"]
        status, mine = await owner.get("/v1/organizations")
        assert {(o["name"], o["role"]) for o in mine["data"]} == {
            ("test", "owner"),
            ("Second", "owner"),
        }
        owner.organization_id = second
        status, renamed = await owner.call("PATCH", f"/v1/organizations/{second}", {"name": "2nd"})
        assert status == 200
        assert renamed["data"]["name"] == "2nd"

        heir = await member_of(hg, owner, "heir@example.com", "member")
        async with heir:
            status, members = await owner.get(f"/v1/organizations/{second}/members")
            heir_id = next(m["user_id"] for m in members["data"] if m["role"] == "member")
            status, body = await heir.call("DELETE", f"/v1/organizations/{second}")
            assert status == 403
            status, body = await heir.post(
                f"/v1/organizations/{second}/transfer", {"user_id": heir_id}
            )
            assert status == 403
            status, body = await owner.post(
                f"/v1/organizations/{second}/transfer", {"user_id": "nobody"}
            )
            assert status == 404
            status, body = await owner.post(
                f"/v1/organizations/{second}/transfer", {"user_id": heir_id}
            )
            assert status == 200, body
            status, org = await owner.get(f"/v1/organizations/{second}")
            assert org["data"]["role"] == "admin"
            status, body = await owner.call("DELETE", f"/v1/organizations/{second}")
            assert status == 403  # an admin now

            # Deleting takes the organization's keys with it.
            key = hg.running.services.keys.create_key(second, "doomed").api_key
            status, _ = await hg.api_get("/v1/rate-limits", key)
            assert status == 200
            status, body = await heir.call("DELETE", f"/v1/organizations/{second}")
            assert status == 200, body
            status, _ = await heir.get(f"/v1/organizations/{second}")
            assert status == 403
            status, mine = await owner.get("/v1/organizations")
            assert [o["name"] for o in mine["data"]] == ["test"]
            status, _ = await hg.api_get("/v1/rate-limits", key)
            assert status == 401  # at once on this process (others re-check within seconds)
    lines = hg.running.services.audit.query(AuditQuery(second))
    assert {"organization.create", "organization.rename", "organization.transfer"} <= {
        line.action for line in lines
    }
    assert lines[0].action == "organization.delete"


async def test_csrf_other_organizations_and_bad_input_are_refused(
    heliograph_on_each_db: Heliograph,
) -> None:
    hg = heliograph_on_each_db
    org = hg.organization_id
    async with Browser(hg.api) as owner:
        await claim(hg, owner)
        assert owner.organization_id == org
        other_org, other_key = hg.new_organization("other")
        invitations = f"/v1/organizations/{org}/invitations"
        body = {"email": "a@example.com", "role": "viewer"}
        # The CSRF token must be sent, and be the session's.
        status, refused = await owner.post(invitations, body, headers={"X-CSRF-Token": ""})
        assert status == 403
        assert "X-CSRF-Token" in refused["error"]
        status, _ = await owner.post(invitations, body, headers={"X-CSRF-Token": "forged"})
        assert status == 403
        # An organization I am not in, by header or path, is closed; nothing of it shows.
        for path in ("/v1/rate-limits", f"/v1/organizations/{other_org}/members"):
            status, answer = await owner.get(
                path, headers={"Heliograph-Organization-Id": other_org}
            )
            assert (status, answer["data"]) == (403, None), path
        status, answer = await owner.post(f"/v1/organizations/{other_org}/invitations", body)
        assert status == 403
        assert answer["data"] is None
        status, _ = await owner.get("/v1/rate-limits", headers={"Heliograph-Organization-Id": ""})
        assert status == 400

        # Keys: another organization's ids are 404s; members and invitations need a person.
        for path in ("", "/members", "/invitations"):
            status, answer = await hg.api_get(f"/v1/organizations/{org}{path}", other_key)
            assert (status, answer["data"]) == (404, None), path
        status, answer = await hg.api_get(f"/v1/organizations/{org}/members")
        assert status == 200
        assert answer["data"][0]["email"] == "owner@example.com"
        status, _ = await hg.api_get(f"/v1/organizations/{org}/invitations")
        assert status == 403
        status, _ = await hg.api_post(invitations, body)
        assert status == 403
        status, _ = await hg.api_get("/v1/organizations")
        assert status == 401

        # Another organization's invitation and member, named through my organization: 404s.
        orgs = hg.running.services.organizations
        theirs = orgs.invite(other_org, "c@example.com", Role.ADMIN, SYSTEM)
        outsider, _ = hg.running.services.accounts.create_user("d@example.com", PASSWORD, other_org)
        status, _ = await owner.call("DELETE", f"{invitations}/{theirs.invitation.id}")
        assert status == 404
        assert orgs.pending_invitation(_token(theirs.link)) is not None
        mine = f"/v1/organizations/{org}/members/{outsider}"
        status, _ = await owner.call("PATCH", mine, {"role": "viewer"})
        assert status == 404
        status, _ = await owner.call("DELETE", mine)
        assert status == 404
        assert [m.role for m in orgs.members(other_org)] == [Role.OWNER]

        # Bad input: each a clear 4xx in the envelope.
        made = await invite(owner, "a@example.com", "viewer")
        bad: list[tuple[str, str, Any, int]] = [
            ("POST", invitations, {"email": "nope", "role": "viewer"}, 400),
            ("POST", invitations, {"email": "b@example.com", "role": "owner"}, 400),
            ("POST", invitations, {"email": "b@example.com", "extra": 1}, 400),
            ("POST", invitations, {"email": "owner@example.com"}, 409),
            ("POST", "/v1/organizations", {"name": ""}, 400),
            ("POST", "/v1/organizations", {"name": "x" * 201}, 400),
            ("POST", "/v1/organizations", {"name": "\u0000"}, 400),
            ("PATCH", f"/v1/organizations/{org}", {"name": 7}, 400),
            ("DELETE", f"{invitations}/nope", None, 404),
            ("POST", "/v1/invitations/accept", {"token": "unknown"}, 404),
            ("POST", "/v1/invitations/accept", {"token": "x" * 201}, 400),
            ("GET", "/v1/invitations/unknown", None, 404),
            ("GET", f"/v1/invitations/{'x' * 5000}", None, 404),
        ]
        for method, path, payload, expected in bad:
            status, answer = await owner.call(method, path, payload)
            assert (status, bool(answer["error"])) == (expected, True), (method, path, answer)
        async with owner.session.post(
            owner.api + invitations,
            data=b"{not json",
            headers={**owner.headers("POST"), "Content-Type": "application/json"},
        ) as response:
            assert response.status == 400

        # The wrong person, and an expired invitation, are refused.
        async with await signed_in(hg, "b@example.com") as stranger:
            status, answer = await stranger.post(
                "/v1/invitations/accept", {"token": _token(made["link"])}
            )
            assert status == 403
            assert "another e-mail" in answer["error"]
        with session_factory(hg.running.services.engine).begin() as db:
            past = datetime.now(UTC) - timedelta(seconds=1)
            db.execute(
                update(Invitation).where(Invitation.id == made["id"]).values(expires_at=past)
            )
        async with await signed_in(hg, "a@example.com") as invited:
            status, answer = await invited.post(
                "/v1/invitations/accept", {"token": _token(made["link"])}
            )
            assert status == 404
            assert "expired" in answer["error"]
            status, _ = await invited.get(f"/v1/invitations/{_token(made['link'])}")
            assert status == 404
            status, mine = await invited.get("/v1/organizations")
            assert mine["data"] == []


# E-mail, through a real SMTP server on loopback


class Inbox:
    """An aiosmtpd handler that keeps every message it is handed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        content = envelope.content
        assert isinstance(content, bytes)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MailServer:
    """aiosmtpd's SMTP server on a loopback port, in a thread of its own; stopped once."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._running = False

    def start(self) -> None:
        self._controller.start()
        self._running = True

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._controller.stop()


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def mailing_heliograph(
    tmp_path: Path, analytics_dir: Path, fake: Fake, smtp: MailServer
) -> AsyncIterator[Heliograph]:
    settings = heliograph_settings(
        tmp_path,
        analytics_dir,
        fake,
        smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        public_url="https://heliograph.example.com/",
    )
    instance = await start_heliograph(settings)
    yield instance
    await instance.running.stop()


async def test_an_invitation_is_emailed_with_its_link(
    mailing_heliograph: Heliograph, smtp: MailServer
) -> None:
    hg = mailing_heliograph
    inbox = smtp.inbox
    async with Browser(hg.api) as owner:
        await claim(hg, owner)
        made = await invite(owner, "friend@example.com", "viewer")
        assert made["emailed"] is True
        assert "warning" not in made
        assert made["link"].startswith("https://heliograph.example.com/invite?token=")
        assert len(inbox.messages) == 1
        message = inbox.messages[0]
        assert message["To"] == "friend@example.com"
        assert "test" in str(message["Subject"])
        body = message.get_body(("plain",))
        assert body is not None
        assert made["link"] in body.get_content()
        status, shown = await owner.get(f"/v1/invitations/{_token(made['link'])}")
        assert status == 200
        assert shown["data"]["email"] == "friend@example.com"

        # The mail server gone: the invitation is still made, and the answer says it was not sent.
        smtp.stop()
        status, body = await owner.post(
            f"/v1/organizations/{owner.organization_id}/invitations", {"email": "late@example.com"}
        )
        assert status == 201, body
        assert body["data"]["emailed"] is False
        assert "not e-mailed" in body["data"]["warning"]
        assert "/invite?token=" in body["data"]["link"]
    assert len(inbox.messages) == 1
