"""Permissions on every route: each route of the OpenAPI document is called with a read key, a
write key and a read-write key, and by a viewer, a member and an admin; the answer is a 403
exactly where the caller lacks the route's capability. Then the gateway: a read key cannot log
or send feedback through it, a write key can (and can log through `/v1/log/request`), but cannot
read what it logged."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from conftest import Heliograph
from heliograph.api.cookies import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from heliograph.api.deps import ORGANIZATION_HEADER
from heliograph.domain.access import (
    KEY_CAPABILITIES,
    ROLE_CAPABILITIES,
    Capability,
    KeyPermissions,
    Role,
)
from heliograph.services.audit import SYSTEM

READ, WRITE, CONFIGURE = Capability.READ, Capability.WRITE, Capability.CONFIGURE
KEYS, MEMBERS, AUDIT, OWN = (
    Capability.MANAGE_KEYS,
    Capability.MANAGE_MEMBERS,
    Capability.READ_AUDIT,
    Capability.OWN,
)
PERSON = None  # a route for a signed-in person, or for anyone: never a 403 for a key
PASSWORD = "correct horse battery staple"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

# The capability each route needs. A route missing here fails the test: classify it.
ROUTES: dict[str, Capability | None] = {
    "POST /v1/request/query-clickhouse": READ,
    "POST /v1/request/query": READ,
    "POST /v1/request/page": READ,
    "POST /v1/request/export": READ,
    "POST /v1/request/count/query": READ,
    "GET /v1/request/{request_id}": READ,
    "POST /v1/request/{request_id}/feedback": WRITE,
    "POST /v1/request/{request_id}/score": WRITE,
    "POST /v1/session/query": READ,
    "POST /v1/session/count": READ,
    "POST /v1/session/name/query": READ,
    "POST /v1/session/metrics/query": READ,
    "GET /v1/session/{session_id}/tree": READ,
    "GET /v1/session/{session_id}/tag": READ,
    "POST /v1/session/{session_id}/tag": WRITE,
    "POST /v1/session/{session_id}/feedback": WRITE,
    "POST /v1/user/metrics/query": READ,
    "POST /v1/user/query": READ,
    "POST /v1/metrics/totals": READ,
    "POST /v1/metrics/quantiles": READ,
    "POST /v1/metrics/models": READ,
    "POST /v1/metrics/{name}": READ,
    "POST /v1/property/query": READ,
    "POST /v1/property/{key}/search": READ,
    "POST /v1/property/{key}/top-costs/query": READ,
    "POST /v1/property/{key}/top-requests/query": READ,
    "POST /v1/property/{key}/over-time": READ,
    "POST /v1/property/hide": CONFIGURE,
    "POST /v1/property/restore": CONFIGURE,
    "POST /v1/property/hidden/query": READ,
    "POST /v1/helicone-sql/execute": READ,
    "POST /v1/helicone-sql/download": READ,
    "GET /v1/helicone-sql/schema": READ,
    "POST /v1/log/request": WRITE,
    "POST /oai/v1/log": WRITE,
    "POST /anthropic/v1/log": WRITE,
    "POST /googleapis/v1/log": WRITE,
    "POST /custom/v1/log": WRITE,
    "POST /v1/traces": WRITE,
    "POST /v1/trace/log": WRITE,
    "POST /v1/request/query-ids": READ,
    "GET /v1/request/{request_id}/inputs": READ,
    "PUT /v1/request/{request_id}/property": WRITE,
    "POST /v1/property/properties/over-time": READ,
    "POST /v1/user/metrics-overview/query": READ,
    "POST /v1/metrics/averageTokensPerRequest": READ,
    "POST /v1/metrics/requestCount": READ,
    "POST /v1/providers": READ,
    "POST /v1/dashboard/scores/query": READ,
    "GET /v1/helicone-sql/saved-queries": READ,
    "GET /v1/helicone-sql/saved-query/{query_id}": READ,
    "POST /v1/helicone-sql/saved-query": WRITE,
    "PUT /v1/helicone-sql/saved-query/{query_id}": WRITE,
    "DELETE /v1/helicone-sql/saved-query/{query_id}": WRITE,
    "POST /v1/helicone-sql/saved-queries/bulk-delete": WRITE,
    "POST /v1/prompt-2025": WRITE,
    "POST /v1/prompt-2025/update": WRITE,
    "POST /v1/prompt-2025/update/environment": WRITE,
    "POST /v1/prompt-2025/remove/environment": WRITE,
    "POST /v1/prompt-2025/id/{promptId}/rename": WRITE,
    "PATCH /v1/prompt-2025/id/{promptId}/rename": WRITE,
    "PATCH /v1/prompt-2025/id/{promptId}/tags": WRITE,
    "DELETE /v1/prompt-2025/{promptId}": WRITE,
    "DELETE /v1/prompt-2025/{promptId}/{promptVersionId}": WRITE,
    "POST /v1/prompt-2025/query": READ,
    "GET /v1/prompt-2025/count": READ,
    "GET /v1/prompt-2025/tags": READ,
    "GET /v1/prompt-2025/environments": READ,
    "GET /v1/prompt-2025/id/{promptId}": READ,
    "GET /v1/prompt-2025/id/{promptId}/{promptVersionId}/inputs": READ,
    "POST /v1/prompt-2025/query/version": READ,
    "POST /v1/prompt-2025/query/versions": READ,
    "POST /v1/prompt-2025/query/production-version": READ,
    "POST /v1/prompt-2025/query/environment-version": READ,
    "POST /v1/prompt-2025/query/total-versions": READ,
    "GET /v1/prompt-2025/{promptVersionId}/prompt-body": READ,
    "GET /v1/prompt-2025/shared-body/{token}": PERSON,  # public: a sealed, expiring link
    "GET /v1/price-overrides": READ,
    "POST /v1/price-overrides": CONFIGURE,
    "PATCH /v1/price-overrides/{override_id}": CONFIGURE,
    "DELETE /v1/price-overrides/{override_id}": CONFIGURE,
    # Webhooks: the list carries each HMAC key, so reading it needs CONFIGURE too.
    "GET /v1/webhooks": CONFIGURE,
    "POST /v1/webhooks": CONFIGURE,
    "DELETE /v1/webhooks/{webhook_id}": CONFIGURE,
    "POST /v1/webhooks/{webhook_id}/test": CONFIGURE,
    "GET /v1/webhooks/{webhook_id}/deliveries": CONFIGURE,
    "POST /v1/price-overrides/recompute": CONFIGURE,
    "GET /v1/reports/weekly": READ,
    "POST /v1/reports/weekly/send": CONFIGURE,
    "GET /v1/models": PERSON,  # public: the prices Heliograph knows
    "POST /v1/prompt-2025/playground": WRITE,  # a run through the gateway, logged
    "GET /v1/alerts": READ,
    "POST /v1/alerts": CONFIGURE,
    "GET /v1/alerts/{alert_id}": READ,
    "PATCH /v1/alerts/{alert_id}": CONFIGURE,
    "DELETE /v1/alerts/{alert_id}": CONFIGURE,
    "GET /v1/alerts/{alert_id}/history": READ,
    "GET /v1/rate-limits": READ,
    "POST /v1/rate-limits": CONFIGURE,
    "PUT /v1/rate-limits/{rule_id}": CONFIGURE,
    "DELETE /v1/rate-limits/{rule_id}": CONFIGURE,
    "GET /v1/settings/redaction": READ,
    "PUT /v1/settings/redaction": CONFIGURE,
    "GET /v1/api-keys": KEYS,
    "POST /v1/api-keys": KEYS,
    "PATCH /v1/api-keys/{key_id}": KEYS,
    "DELETE /v1/api-keys/{key_id}": KEYS,
    "POST /v1/api-keys/provider-key": KEYS,
    "GET /v1/api-keys/provider-keys": KEYS,
    "GET /v1/api-keys/provider-key/{key_id}": KEYS,
    "PATCH /v1/api-keys/provider-key/{key_id}": KEYS,
    "DELETE /v1/api-keys/provider-key/{key_id}": KEYS,
    "POST /v1/api-keys/proxy-key": KEYS,
    "GET /v1/api-keys/proxy-keys": KEYS,
    "DELETE /v1/api-keys/proxy-key/{key_id}": KEYS,
    "GET /v1/audit": AUDIT,
    "GET /v1/organizations/{organization_id}": READ,
    "PATCH /v1/organizations/{organization_id}": CONFIGURE,
    "DELETE /v1/organizations/{organization_id}": OWN,
    "POST /v1/organizations/{organization_id}/transfer": OWN,
    "GET /v1/organizations/{organization_id}/members": READ,
    "PATCH /v1/organizations/{organization_id}/members/{user_id}": MEMBERS,
    "DELETE /v1/organizations/{organization_id}/members/{user_id}": MEMBERS,
    "GET /v1/organizations/{organization_id}/invitations": MEMBERS,
    "POST /v1/organizations/{organization_id}/invitations": MEMBERS,
    "DELETE /v1/organizations/{organization_id}/invitations/{invitation_id}": MEMBERS,
    "GET /v1/organizations": PERSON,
    "POST /v1/organizations": PERSON,
    "GET /v1/invitations/{token}": PERSON,
    "POST /v1/invitations/accept": PERSON,
    "GET /v1/auth/sso": PERSON,
    "GET /v1/auth/sso/login": PERSON,
    "GET /v1/auth/sso/callback": PERSON,
    "POST /v1/auth/signup": PERSON,
    "POST /v1/auth/login": PERSON,
    "POST /v1/auth/logout": PERSON,
    "GET /v1/auth/me": PERSON,
    "POST /v1/auth/password": PERSON,
    "POST /v1/auth/password-reset": PERSON,
    "POST /v1/auth/password-reset/confirm": PERSON,
}
UNCHECKED = {"GET /healthz", "GET /metrics"}  # the process's own health and metrics


@pytest.fixture
def heliograph(heliograph_on_each_db: Heliograph) -> Heliograph:
    """Every test here runs on SQLite, then on PostgreSQL."""
    return heliograph_on_each_db


@dataclass(frozen=True)
class Person:
    """A person signed in (a live session), acting on one organization."""

    user_id: str
    email: str
    token: str
    csrf: str
    organization_id: str

    def headers(self, organization_id: str | None = None) -> dict[str, str]:
        return {
            "Cookie": f"{SESSION_COOKIE}={self.token}; {CSRF_COOKIE}={self.csrf}",
            CSRF_HEADER: self.csrf,
            ORGANIZATION_HEADER: organization_id or self.organization_id,
        }


def sign_in(hg: Heliograph, organization_id: str, role: Role, label: str = "") -> Person:
    """A new person with `role` in the organization, signed in (`label` starts their e-mail)."""
    accounts = hg.running.services.accounts
    email = f"{label or role.value}-{uuid.uuid4().hex[:8]}@example.com"
    user_id, _ = accounts.create_user(email, PASSWORD, organization_id, role)
    opened = accounts.open_session(user_id, email, SYSTEM)
    return Person(user_id, email, opened.token, opened.csrf_token, organization_id)


def new_key(hg: Heliograph, permissions: KeyPermissions, org_id: str | None = None) -> str:
    keys = hg.running.services.keys
    return keys.create_key(org_id or hg.organization_id, "test", permissions).api_key


def route_calls(spec: dict[str, Any], fill: dict[str, str]) -> list[tuple[str, str, str, Any]]:
    """(route, method, filled path, body) for every operation of the OpenAPI document."""
    now = datetime.now(UTC)
    day = {
        "start": (now - timedelta(days=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
    }
    bodies: dict[str, Any] = {
        "/v1/helicone-sql/execute": {"sql": "SELECT 1 AS one"},
        "/v1/helicone-sql/download": {"sql": "SELECT 1 AS one"},
        "/v1/request/export": {"format": "jsonl"},
    }
    found = []
    for path, operations in spec["paths"].items():
        for method in operations:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            if path.startswith("/v1/metrics") or path.endswith("/over-time"):
                body: Any = {"timeFilter": day, "dbIncrement": "hour"}
            else:
                body = bodies.get(path, {})
            filled = path
            for placeholder, value in fill.items():
                filled = filled.replace(placeholder, value)
            found.append((f"{method.upper()} {path}", method.upper(), filled, body))
    return found


def fill_for(organization_id: str) -> dict[str, str]:
    """Ids that exist nowhere (or the caller's own organization), so no call changes anything
    another call reads."""
    unknown = str(uuid.uuid4())
    return {
        "{organization_id}": organization_id,
        "{request_id}": unknown,
        "{session_id}": "permissions-session",
        "{key}": "permissions-key",
        "{name}": "requestOverTime",
        "{rule_id}": unknown,
        "{key_id}": unknown,
        "{user_id}": unknown,
        "{invitation_id}": unknown,
        "{token}": "not-an-invitation",
        "{promptId}": "nOpRmT",
        "{promptVersionId}": unknown,
        "{webhook_id}": unknown,
    }


async def statuses(
    hg: Heliograph, headers: dict[str, str], calls: list[tuple[str, str, str, Any]]
) -> dict[str, int]:
    found = {}
    async with aiohttp.ClientSession() as session:
        for route, method, path, body in calls:
            async with session.request(
                method, hg.api + path, json=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                found[route] = response.status
    return found


async def test_every_route_is_classified(heliograph: Heliograph) -> None:
    _, spec = await heliograph.api_get("/openapi.json")
    routes = {route for route, *_ in route_calls(spec, {})}
    assert routes - UNCHECKED - ROUTES.keys() == set(), "classify these routes in ROUTES"
    assert ROUTES.keys() - routes == set(), "these routes are gone: drop them from ROUTES"


@pytest.mark.parametrize("permissions", list(KeyPermissions))
async def test_a_key_is_refused_exactly_where_its_permissions_stop(
    heliograph: Heliograph, permissions: KeyPermissions
) -> None:
    _, spec = await heliograph.api_get("/openapi.json")
    calls = [c for c in route_calls(spec, fill_for(heliograph.organization_id)) if c[0] in ROUTES]
    key = new_key(heliograph, permissions)
    found = await statuses(heliograph, heliograph.auth(key), calls)
    allowed = KEY_CAPABILITIES[permissions]
    wrong = {
        route: status
        for route, status in found.items()
        if (status == 403) != (ROUTES[route] is not PERSON and ROUTES[route] not in allowed)
        or status >= 500
        or (ROUTES[route] in allowed and status == 401)
    }
    assert wrong == {}, f"{permissions.value} key"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MEMBER, Role.ADMIN])
async def test_a_role_is_refused_exactly_where_its_capabilities_stop(
    heliograph: Heliograph, role: Role
) -> None:
    _, spec = await heliograph.api_get("/openapi.json")
    person = sign_in(heliograph, heliograph.organization_id, role)
    calls = [
        c
        for c in route_calls(spec, fill_for(heliograph.organization_id))
        if ROUTES.get(c[0]) is not PERSON and c[0] in ROUTES
    ]
    found = await statuses(heliograph, person.headers(), calls)
    allowed = ROLE_CAPABILITIES[role]
    wrong = {
        route: status
        for route, status in found.items()
        if (status == 403) != (ROUTES[route] not in allowed) or status in (401, 500)
    }
    assert wrong == {}, f"{role.value}"


# The gateway and the log and feedback routes


async def gateway_post(
    hg: Heliograph, path: str, key: str, body: Any
) -> tuple[int, dict[str, str], Any]:
    headers = {**hg.gateway_auth(key), "Authorization": "Bearer sk-test"}
    async with aiohttp.ClientSession() as session:
        async with session.post(hg.gateway + path, json=body, headers=headers) as response:
            return response.status, dict(response.headers), await response.json()


async def test_a_read_key_cannot_log_or_send_feedback_through_the_gateway(
    heliograph: Heliograph,
) -> None:
    read = new_key(heliograph, KeyPermissions.READ)
    status, headers, body = await gateway_post(
        heliograph, "/openai/v1/chat/completions", read, CHAT
    )
    assert status == 403, body
    assert "read-only" in str(body)
    refused = headers["Helicone-Id"]
    # Feedback on a request the organization did log: refused for a read key, on both ports.
    status, headers, _ = await gateway_post(
        heliograph, "/openai/v1/chat/completions", heliograph.api_key, CHAT
    )
    assert status == 200
    logged = headers["Helicone-Id"]
    feedback = {"helicone-id": logged, "rating": True}
    status, _, body = await gateway_post(heliograph, "/v1/feedback", read, feedback)
    assert status == 403, body
    status, body = await heliograph.api_post(
        f"/v1/request/{logged}/feedback", {"rating": True}, read
    )
    assert status == 403, body
    status, body = await heliograph.api_post("/v1/log/request", {"log": {}}, read)
    assert status == 403, body
    assert (await heliograph.wait_for(logged))["feedback_rating"] is None
    # Logged after the refused call, and stored: the refused call was not logged.
    assert (await heliograph.api_get(f"/v1/request/{refused}"))[0] == 404


async def test_a_write_key_logs_and_sends_feedback_but_cannot_read(
    heliograph: Heliograph,
) -> None:
    write = new_key(heliograph, KeyPermissions.WRITE)
    status, headers, body = await gateway_post(
        heliograph, "/openai/v1/chat/completions", write, CHAT
    )
    assert status == 200, body
    request_id = headers["Helicone-Id"]
    row = await heliograph.wait_for(request_id)  # read with the organization's rw key
    assert row["request_id"] == request_id
    status, body = await heliograph.api_get(f"/v1/request/{request_id}", write)
    assert status == 403, body
    assert body == {"data": None, "error": "this API key may not read this organization's data"}
    status, body = await heliograph.api_post("/v1/request/query", {}, write)
    assert status == 403

    feedback = {"helicone-id": request_id, "rating": False}
    status, _, body = await gateway_post(heliograph, "/v1/feedback", write, feedback)
    assert status == 201, body
    status, body = await heliograph.api_post(
        f"/v1/request/{request_id}/score", {"scores": {"quality": 3}}, write
    )
    assert status == 201, body
    row = await heliograph.wait_for(request_id)
    assert row["feedback_rating"] is False
    assert row["scores"]["quality"] == 3


async def test_a_write_key_logs_through_the_log_route(heliograph: Heliograph) -> None:
    write = new_key(heliograph, KeyPermissions.WRITE)
    request_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    message = {
        "log": {
            "request": {
                "id": request_id,
                "provider": "OPENAI",
                "path": "/v1/chat/completions",
                "requestCreatedAt": now.isoformat(),
                "body": CHAT,
            },
            "response": {"status": 200, "delayMs": 10, "body": {"choices": []}},
        }
    }
    status, body = await heliograph.api_post("/v1/log/request", message, write)
    assert status == 202, body
    assert (await heliograph.wait_for(request_id))["request_id"] == request_id
    status, body = await heliograph.api_post("/v1/request/count/query", {}, write)
    assert status == 403
