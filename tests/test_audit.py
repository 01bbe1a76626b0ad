"""`GET /v1/audit` on SQLite and PostgreSQL: admins and owners read their organization's lines,
newest first, filtered and paged; keys, members and viewers are refused; another organization
sees nothing; bad parameters are 400s. Settings changes and exports are recorded."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest

from conftest import Heliograph
from heliograph.domain.access import Role
from heliograph.services.audit import Actor, AuditQuery
from test_permissions import Person, sign_in


async def audit(hg: Heliograph, headers: dict[str, str], **params: str | int) -> tuple[int, Any]:
    query = {name: str(value) for name, value in params.items()}
    async with aiohttp.ClientSession() as session:
        url = hg.api + "/v1/audit"
        async with session.get(url, params=query, headers=headers) as response:
            return response.status, await response.json()


def record(hg: Heliograph, action: str, target: str, user_id: str | None = None) -> None:
    actor = Actor(user_id=user_id, label="tester", address="10.0.0.1")
    hg.running.services.audit.record(
        actor, action, hg.organization_id, ("thing", target), {"n": target}
    )


@pytest.fixture
def owner(heliograph_on_each_db: Heliograph) -> Person:
    return sign_in(heliograph_on_each_db, heliograph_on_each_db.organization_id, Role.OWNER)


async def test_pages_cover_every_line_once_newest_first(
    heliograph_on_each_db: Heliograph, owner: Person
) -> None:
    hg = heliograph_on_each_db
    for n in range(7):
        record(hg, "thing.make", f"t{n}")
    status, body = await audit(hg, owner.headers(), action="thing.make")
    assert status == 200, body
    everything = [line["target_id"] for line in body["data"]["lines"]]
    assert everything == [f"t{n}" for n in reversed(range(7))]
    assert body["data"]["next_cursor"] is None
    line = body["data"]["lines"][0]
    assert line["actor"] == "tester"
    assert line["address"] == "10.0.0.1"
    assert line["details"] == {"n": "t6"}
    assert datetime.fromisoformat(line["created_at"]).tzinfo is not None

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"action": "thing.make", "limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        status, body = await audit(hg, owner.headers(), **params)
        assert status == 200, body
        seen += [line["target_id"] for line in body["data"]["lines"]]
        pages += 1
        cursor = body["data"]["next_cursor"]
        if cursor is None:
            break
    assert seen == everything
    assert pages == 3


async def test_filters(heliograph_on_each_db: Heliograph, owner: Person) -> None:
    hg = heliograph_on_each_db
    record(hg, "widget.create", "k1", owner.user_id)
    record(hg, "widget.delete", "k1")
    await asyncio.sleep(0.05)
    middle = datetime.now(UTC)
    await asyncio.sleep(0.05)
    record(hg, "widget_other.x", "k2")
    record(hg, "widget.rename", "u1", owner.user_id)

    async def actions(**params: str | int) -> list[str]:
        status, body = await audit(hg, owner.headers(), **params)
        assert status == 200, body
        return [line["action"] for line in body["data"]["lines"]]

    assert await actions(action="widget.") == ["widget.rename", "widget.delete", "widget.create"]
    assert await actions(action="widget.delete") == ["widget.delete"]
    assert await actions(action="widget") == [], "exact unless it ends in a dot"
    assert await actions(actor=owner.user_id) == ["widget.rename", "widget.create"]
    assert await actions(target="k1") == ["widget.delete", "widget.create"]
    assert await actions(since=middle.isoformat()) == ["widget.rename", "widget_other.x"]
    until = await actions(until=middle.isoformat(), action="widget.")
    assert until == ["widget.delete", "widget.create"]
    # The same moment in another offset, and without one (UTC).
    elsewhere = middle.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert await actions(since=elsewhere) == ["widget.rename", "widget_other.x"]
    naive = middle.replace(tzinfo=None).isoformat()
    assert await actions(since=naive) == ["widget.rename", "widget_other.x"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "before"),
        ({"cursor": "nope"}, "cursor"),
        ({"cursor": "x" * 65}, "cursor"),
        ({"action": ""}, "action"),
        ({"action": "a" * 65}, "action"),
        ({"actor": "u" * 37}, "actor"),
    ],
)
async def test_bad_parameters_are_400s(
    heliograph: Heliograph, params: dict[str, str | int], message: str
) -> None:
    owner = sign_in(heliograph, heliograph.organization_id, Role.OWNER)
    status, body = await audit(heliograph, owner.headers(), **params)
    assert status == 400, body
    assert body["data"] is None
    assert message in body["error"]


async def test_only_admins_and_owners_of_the_organization_read_it(
    heliograph_on_each_db: Heliograph, owner: Person
) -> None:
    hg = heliograph_on_each_db
    record(hg, "secret.thing", "first-org-target")
    admin = sign_in(hg, hg.organization_id, Role.ADMIN)
    status, body = await audit(hg, admin.headers())
    assert status == 200, body
    assert "first-org-target" in str(body)
    for role in (Role.MEMBER, Role.VIEWER):
        person = sign_in(hg, hg.organization_id, role)
        status, body = await audit(hg, person.headers())
        assert status == 403, (role, body)
        assert body["data"] is None
    status, body = await audit(hg, hg.auth())
    assert status == 403, "keys never read the audit log"
    status, body = await audit(hg, {})
    assert status == 401

    # The owner of a second organization: nothing of the first, by filter or cursor.
    second_org, _ = hg.new_organization("second")
    rival = sign_in(hg, second_org, Role.OWNER)
    first_line = hg.running.services.audit.query(AuditQuery(hg.organization_id, limit=1))[0]
    for params in ({}, {"target": "first-org-target"}, {"cursor": first_line.id}):
        status, body = await audit(hg, rival.headers(), **params)
        assert status == 200, body
        assert "first-org-target" not in str(body)
        assert hg.organization_id not in str(body)
    # Naming the first organization: refused, as a non-member.
    status, body = await audit(hg, rival.headers(hg.organization_id))
    assert status == 403
    assert "first-org-target" not in str(body)


async def test_settings_changes_and_exports_are_recorded(heliograph: Heliograph) -> None:
    hg = heliograph
    rule = {"name": "r", "quota": 5, "window_seconds": 60}
    status, created = await hg.api_post("/v1/rate-limits", rule)
    assert status == 201
    rule_id = created["data"]["id"]
    assert (await hg.api_put(f"/v1/rate-limits/{rule_id}", {**rule, "quota": 6}))[0] == 200
    async with aiohttp.ClientSession() as session:
        url = f"{hg.api}/v1/rate-limits/{rule_id}"
        async with session.delete(url, headers=hg.auth()) as response:
            assert response.status == 200
        url = f"{hg.api}/v1/request/export"
        async with session.post(url, json={"format": "csv"}, headers=hg.auth()) as response:
            assert response.status == 200
            await response.read()
    assert (await hg.api_put("/v1/settings/redaction", {"kinds": ["email"]}))[0] == 200
    assert (await hg.api_post("/v1/property/hide", {"key": "team"}))[0] == 200
    assert (await hg.api_post("/v1/property/restore", {"key": "team"}))[0] == 200
    sql = {"sql": "SELECT 1 AS one"}
    assert (await hg.api_post("/v1/helicone-sql/execute", sql))[0] == 200
    async with aiohttp.ClientSession() as session:
        url = f"{hg.api}/v1/helicone-sql/download"
        async with session.post(url, json=sql, headers=hg.auth()) as response:
            assert response.status == 200
            await response.read()

    lines = hg.running.services.audit.query(AuditQuery(hg.organization_id))
    actions = [line.action for line in reversed(lines) if not line.action.startswith("api_key")]
    assert actions == [
        "rate_limit.create",
        "rate_limit.update",
        "rate_limit.delete",
        "export.requests",
        "settings.redaction",
        "property.hide",
        "property.restore",
        "export.sql",
    ]
    by_action = {line.action: line for line in lines if line.action in actions}
    assert by_action["rate_limit.update"].target_id == rule_id
    assert by_action["export.requests"].details == {"format": "csv"}
    assert by_action["settings.redaction"].details == {"kinds": ["email"]}
    assert by_action["export.sql"].details == sql
    assert by_action["property.hide"].target_id == "team"
    assert {line.address for line in by_action.values() if line.actor_key_id} == {"127.0.0.1"}
