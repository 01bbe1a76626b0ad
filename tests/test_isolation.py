"""Tenant isolation across the whole API: every route the OpenAPI document lists is called by a
second organization (with its key, and as its owner), with the first organization's ids in its
path, and nothing of the first organization's comes back; every write route that takes an id
refuses the first organization's ids and changes nothing. The same calls made by the first
organization show its data, so the check would notice a route that leaked it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest

from conftest import Heliograph
from heliograph.domain.access import KEY_CAPABILITIES, KeyPermissions, Role
from test_permissions import PERSON, ROUTES, Person, sign_in

MARKER = "zqx"  # in the first organization's user, session, names, properties, tags and keys
SKIPPED = {"/metrics", "/healthz"}  # the process's own metrics and health
# Routes for anyone: they act on no organization (sign-up, sign-in, SSO, an invitation by the
# secret token it was sent with).
PUBLIC = {
    "/v1/auth/signup",
    "/v1/auth/login",
    "/v1/auth/password-reset",
    "/v1/auth/password-reset/confirm",
    "/v1/auth/sso",
    "/v1/auth/sso/login",
    "/v1/auth/sso/callback",
    "/v1/invitations/{token}",
    "/v1/models",  # the prices Heliograph knows, the same for everyone
    "/v1/prompt-2025/shared-body/{token}",  # a prompt body by its sealed, expiring link
}
# Writes to the analytics store: they land in the caller's own organization whatever the id (an
# annotation may arrive before its request), so each one's isolation is tested with its feature.
ANALYTICS_WRITES = {
    "/v1/log/request",
    "/oai/v1/log",
    "/anthropic/v1/log",
    "/googleapis/v1/log",
    "/custom/v1/log",
    "/v1/traces",
    "/v1/trace/log",
    "/v1/request/{request_id}/feedback",
    "/v1/request/{request_id}/score",
    "/v1/session/{session_id}/tag",
    "/v1/session/{session_id}/feedback",
}
READ_POSTS = (
    "/query",
    "/query-clickhouse",
    "/page",
    "/export",
    "/count",
    "/search",
    "/over-time",
    "/execute",
    "/download",
    "/totals",
    "/quantiles",
    "/models",
    "/{name}",
    "/query-ids",
    "/averageTokensPerRequest",
    "/requestCount",
    "/v1/providers",
    "/query/version",  # prompts: the version, versions and environment queries
    "/query/versions",
    "/production-version",
    "/environment-version",
    "/total-versions",
)
# Bodies that pass validation, so a write route reaches the id it is given.
WRITE_BODIES: dict[str, Any] = {
    "PATCH /v1/api-keys/{key_id}": {"api_key_name": "stolen"},
    "PATCH /v1/api-keys/provider-key/{key_id}": {"providerKeyName": "stolen"},
    "PUT /v1/rate-limits/{rule_id}": {"name": "stolen", "quota": 1, "window_seconds": 60},
    "PATCH /v1/organizations/{organization_id}": {"name": "stolen"},
    "POST /v1/organizations/{organization_id}/transfer": {"user_id": "x"},
    "PATCH /v1/organizations/{organization_id}/members/{user_id}": {"role": "viewer"},
    "POST /v1/organizations/{organization_id}/invitations": {"email": "thief@example.com"},
    "PUT /v1/request/{request_id}/property": {"key": "k", "value": "stolen"},
    "PUT /v1/helicone-sql/saved-query/{query_id}": {
        "name": "stolen",
        "sql": "SELECT 1 FROM request_response",
    },
    "PATCH /v1/price-overrides/{override_id}": {"input_per_mtok": "0"},
    "POST /v1/prompt-2025/id/{promptId}/rename": {"name": "stolen"},
    "PATCH /v1/prompt-2025/id/{promptId}/rename": {"name": "stolen"},
    "PATCH /v1/prompt-2025/id/{promptId}/tags": {"tags": ["stolen"]},
    "PATCH /v1/alerts/{alert_id}": {"name": "stolen", "enabled": False},
}


@pytest.fixture
def heliograph(heliograph_on_each_db: Heliograph) -> Heliograph:
    """Every test here runs on SQLite, then on PostgreSQL."""
    return heliograph_on_each_db


@dataclass
class FirstOrg:
    ids: dict[str, str]  # placeholder (or route-specific key) to the first organization's id
    owner: Person
    api_key: str  # made through the API, for the organization's own use

    def secrets(self) -> set[str]:
        return {MARKER, *self.ids.values()}


async def call(
    hg: Heliograph, method: str, path: str, body: Any, headers: dict[str, str]
) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, hg.api + path, json=body, headers=headers, allow_redirects=False
        ) as response:
            return response.status, await response.text()


async def made(hg: Heliograph, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    status, text = await call(hg, method, path, body, headers)
    assert status in (200, 201), (path, status, text)
    return orjson.loads(text)["data"]


@pytest.fixture
async def first_org(heliograph: Heliograph) -> FirstOrg:
    hg = heliograph
    headers = {
        **hg.gateway_auth(),
        "Helicone-User-Id": f"{MARKER}-user",
        "Helicone-Session-Id": f"{MARKER}-session",
        "Helicone-Session-Name": f"{MARKER}-name",
        "Helicone-Session-Path": "/step",
        f"Helicone-Property-{MARKER}key": f"{MARKER}-value",
    }
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"{MARKER} hi"}]}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{hg.gateway}/openai/v1/chat/completions", json=chat, headers=headers
        ) as response:
            assert response.status == 200
            request_id = response.headers["Helicone-Id"]
    await hg.wait_for(request_id)
    await hg.api_post(f"/v1/session/{MARKER}-session/tag", {"tag": f"{MARKER}-tag"})
    await hg.api_post(f"/v1/request/{request_id}/score", {"scores": {"q": 1}})
    await hg.api_post("/v1/property/hide", {"key": f"{MARKER}-hidden"})
    rule = {"name": f"{MARKER}-rule", "quota": 5, "window_seconds": 60}
    key = hg.auth()
    rule_id = (await made(hg, "POST", "/v1/rate-limits", rule, key))["id"]
    api_key = await made(hg, "POST", "/v1/api-keys", {"api_key_name": f"{MARKER}-key"}, key)
    provider = {
        "providerName": "openai",
        "providerKey": f"sk-{MARKER}-provider-secret",
        "providerKeyName": f"{MARKER}-provider",
    }
    provider_id = (await made(hg, "POST", "/v1/api-keys/provider-key", provider, key))["id"]
    proxy = {"proxyKeyName": f"{MARKER}-proxy", "providerKeyId": provider_id}
    proxy_id = (await made(hg, "POST", "/v1/api-keys/proxy-key", proxy, key))["id"]
    query = {"name": f"{MARKER}-query", "sql": "SELECT request_id FROM request_response"}
    query_id = (await made(hg, "POST", "/v1/helicone-sql/saved-query", query, key))[0]["id"]
    # A sample rate of 0 never sends: no traffic leaves the test.
    hook = {"destination": f"https://{MARKER}-hooks.example.com/in", "config": {"sampleRate": 0}}
    webhook_id = (await made(hg, "POST", "/v1/webhooks", hook, key))["id"]
    price = {"model": f"{MARKER}-model", "input_per_mtok": "1", "output_per_mtok": "2"}
    override_id = (await made(hg, "POST", "/v1/price-overrides", price, key))["id"]
    alert = {
        "name": f"{MARKER}-alert",
        "metric": "count",
        "threshold": 0,
        "window_minutes": 5,
        "channels": [{"type": "email", "to": [f"{MARKER}-ops@example.com"]}],
    }
    alert_id = (await made(hg, "POST", "/v1/alerts", alert, key))["id"]
    message = {"role": "user", "content": MARKER + " {{hc:x:string}}"}
    prompt_body = {"model": "m", "messages": [message]}
    prompt = {"name": f"{MARKER}-prompt", "tags": [f"{MARKER}-tag"], "promptBody": prompt_body}
    prompt_ids = await made(hg, "POST", "/v1/prompt-2025", prompt, key)
    deploy = {"promptId": prompt_ids["id"], "promptVersionId": prompt_ids["versionId"]}
    deploy["environment"] = f"{MARKER}-env"
    await made(hg, "POST", "/v1/prompt-2025/update/environment", deploy, key)
    owner = sign_in(hg, hg.organization_id, Role.OWNER, label=MARKER)
    org_path = f"/v1/organizations/{hg.organization_id}"
    await made(hg, "PATCH", org_path, {"name": f"{MARKER}-org"}, owner.headers())
    invited = {"email": f"{MARKER}-invitee@example.com", "role": "member"}
    invitation = await made(hg, "POST", f"{org_path}/invitations", invited, owner.headers())
    ids = {
        "{request_id}": request_id,
        "{rule_id}": rule_id,
        "{organization_id}": hg.organization_id,
        "{user_id}": owner.user_id,
        "{invitation_id}": invitation["id"],
        "{key_id}": api_key["id"],
        "provider-key/{key_id}": provider_id,
        "proxy-key/{key_id}": proxy_id,
        "{query_id}": query_id,
        "{override_id}": override_id,
        "{webhook_id}": webhook_id,
        "{alert_id}": alert_id,
        "{promptId}": prompt_ids["id"],
        "{promptVersionId}": prompt_ids["versionId"],
    }
    return FirstOrg(ids, owner, api_key["apiKey"])


def fill(path: str, ids: dict[str, str]) -> str:
    for prefix in ("provider-key/", "proxy-key/"):
        if f"{prefix}{{key_id}}" in path:
            path = path.replace(f"{prefix}{{key_id}}", prefix + ids[f"{prefix}{{key_id}}"])
    fixed = {
        "{session_id}": f"{MARKER}-session",
        "{key}": f"{MARKER}key",
        "{name}": "requestOverTime",
    }
    for placeholder, value in {**fixed, **ids}.items():
        path = path.replace(placeholder, value)
    return path


def operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, path) of every operation but the process's own and the public ones."""
    return [
        (method.upper(), path)
        for path, methods in spec["paths"].items()
        if path not in SKIPPED and path not in PUBLIC
        for method in methods
        if method in ("get", "post", "put", "patch", "delete")
    ]


def is_read(method: str, path: str) -> bool:
    return method == "GET" or (method == "POST" and path.endswith(READ_POSTS))


def calls(ids: dict[str, str], spec: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """(route, method, filled path, body) per read route, its path filled with the first
    organization's ids and its body covering the last day."""
    now = datetime.now(UTC)
    iso = {
        "start": (now - timedelta(days=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
    }
    bodies: dict[str, Any] = {
        "/v1/helicone-sql/execute": {"sql": "SELECT * FROM request_response"},
        "/v1/helicone-sql/download": {"sql": "SELECT * FROM request_response"},
        "/v1/request/export": {"format": "jsonl"},
        "/v1/request/query-ids": {"requestIds": [ids["{request_id}"]]},
        "/v1/prompt-2025/query/version": {"promptVersionId": ids["{promptVersionId}"]},
        "/v1/prompt-2025/query/versions": {"promptId": ids["{promptId}"]},
        "/v1/prompt-2025/query/production-version": {"promptId": ids["{promptId}"]},
        "/v1/prompt-2025/query/total-versions": {"promptId": ids["{promptId}"]},
        "/v1/prompt-2025/query/environment-version": {
            "promptId": ids["{promptId}"],
            "environment": f"{MARKER}-env",
        },
    }
    request = f"?requestId={ids['{request_id}']}"  # the routes' required query parameters
    queries = {"/v1/prompt-2025/id/{promptId}/{promptVersionId}/inputs": request}
    found = []
    for method, path in operations(spec):
        if not is_read(method, path):
            continue
        if path.startswith(("/v1/metrics", "/v1/dashboard", "/v1/providers")) or path.endswith(
            "/over-time"
        ):
            body: Any = {"timeFilter": iso, "dbIncrement": "hour"}
            if path == "/v1/property/properties/over-time":
                body["propertyKey"] = f"{MARKER}key"
        else:
            body = bodies.get(path, {})
        filled = fill(path, ids) + queries.get(path, "")
        found.append((f"{method} {path}", method, filled, None if method == "GET" else body))
    return found


def refused_to_keys(route: str) -> bool:
    """Whether an `rw` key gets a 403 (a person's capability) or 401 (a person's route)."""
    capability = ROUTES[route]
    return capability is PERSON or capability not in KEY_CAPABILITIES[KeyPermissions.READ_WRITE]


async def responses(
    hg: Heliograph,
    headers: dict[str, str],
    wanted: list[tuple[str, str, str, Any]],
    foreign: bool,
) -> dict[str, str]:
    """The text of each 200 answer by route; a 404 or a refusal names only what was asked."""
    by_key = "Authorization" in headers
    texts = {}
    for route, method, path, body in wanted:
        status, text = await call(hg, method, path, body, headers)
        expected = {200, 404}
        if foreign and "{organization_id}" in route:
            # A non-member is refused; a key learns nothing of it (a 404 before any capability).
            expected = {404} if by_key else {403}
        elif by_key and refused_to_keys(route):
            expected = {401 if ROUTES[route] is PERSON else 403}
        assert status in expected, (route, status, text)
        texts[f"{method} {path}"] = text if status == 200 else ""
    return texts


def leaks(seen: dict[str, str], first: FirstOrg) -> dict[str, str]:
    return {
        route: text[:200]
        for route, text in seen.items()
        if any(secret in text for secret in first.secrets())
    }


def told(text: str, asked: str, first: FirstOrg) -> set[str]:
    """The first organization's ids and names in `text`, but those the caller asked about."""
    return {secret for secret in first.secrets() if secret in text and secret not in asked}


async def test_no_route_shows_another_organizations_data(
    heliograph: Heliograph, first_org: FirstOrg
) -> None:
    _, spec = await heliograph.api_get("/openapi.json")
    wanted = calls(first_org.ids, spec)
    assert len(wanted) >= 35
    second_org, second_key = heliograph.new_organization("second")
    rival = sign_in(heliograph, second_org, Role.OWNER)
    by_key = await responses(heliograph, heliograph.auth(second_key), wanted, foreign=True)
    assert leaks(by_key, first_org) == {}
    by_owner = await responses(heliograph, rival.headers(), wanted, foreign=True)
    assert leaks(by_owner, first_org) == {}
    assert "GET /v1/audit" in by_owner
    assert orjson.loads(by_owner["GET /v1/audit"])["data"]["lines"] != [], "its own lines only"

    seen_by_first = {
        **await responses(heliograph, heliograph.auth(), wanted, foreign=False),
        **await responses(heliograph, first_org.owner.headers(), wanted, foreign=False),
    }
    shown = {route for route, text in seen_by_first.items() if MARKER in text}
    org = f"/v1/organizations/{heliograph.organization_id}"
    provider = first_org.ids["provider-key/{key_id}"]
    # The first organization sees itself through the routes that return its identifiers.
    assert {
        "POST /v1/request/query-clickhouse",
        "POST /v1/request/page",
        "POST /v1/request/export",
        f"GET /v1/request/{first_org.ids['{request_id}']}",
        "POST /v1/session/query",
        "POST /v1/session/name/query",
        f"GET /v1/session/{MARKER}-session/tree",
        f"GET /v1/session/{MARKER}-session/tag",
        "POST /v1/user/query",
        "POST /v1/user/metrics/query",
        "POST /v1/property/query",
        "POST /v1/property/hidden/query",
        f"POST /v1/property/{MARKER}key/search",
        f"POST /v1/property/{MARKER}key/top-costs/query",
        "POST /v1/helicone-sql/execute",
        "GET /v1/rate-limits",
        "GET /v1/alerts",
        "GET /v1/api-keys",
        "GET /v1/api-keys/provider-keys",
        f"GET /v1/api-keys/provider-key/{provider}",
        "GET /v1/api-keys/proxy-keys",
        "GET /v1/webhooks",
        "GET /v1/audit",
        "GET /v1/organizations",
        f"GET {org}",
        f"GET {org}/members",
        f"GET {org}/invitations",
        "GET /v1/auth/me",
        "POST /v1/prompt-2025/query",
        "GET /v1/prompt-2025/tags",
        "GET /v1/prompt-2025/environments",
        f"GET /v1/prompt-2025/id/{first_org.ids['{promptId}']}",
        "POST /v1/prompt-2025/query/version",
        "POST /v1/prompt-2025/query/versions",
        "POST /v1/prompt-2025/query/environment-version",
        f"GET /v1/prompt-2025/{first_org.ids['{promptVersionId}']}/prompt-body",
    } <= shown
    assert orjson.loads(by_key["POST /v1/session/count"])["data"]["count"] == 0
    assert orjson.loads(seen_by_first["POST /v1/session/count"])["data"]["count"] == 1


async def test_a_member_naming_another_organization_is_refused_everywhere(
    heliograph: Heliograph, first_org: FirstOrg
) -> None:
    _, spec = await heliograph.api_get("/openapi.json")
    second_org, _ = heliograph.new_organization("second")
    rival = sign_in(heliograph, second_org, Role.OWNER)
    for method, path in operations(spec):
        route = f"{method} {path}"
        if ROUTES[route] is PERSON:
            continue  # a person's own routes name no organization
        body = WRITE_BODIES.get(route, {})
        headers = rival.headers(heliograph.organization_id)
        filled = fill(path, first_org.ids)
        status, text = await call(heliograph, method, filled, body, headers)
        assert status == 403, (route, status, text)
        assert told(text, filled, first_org) == set(), route


async def test_no_write_route_takes_another_organizations_ids(
    heliograph: Heliograph, first_org: FirstOrg
) -> None:
    hg = heliograph
    _, spec = await hg.api_get("/openapi.json")
    writes = [
        (method, path)
        for method, path in operations(spec)
        if not is_read(method, path) and "{" in path and path not in ANALYTICS_WRITES
    ]
    assert len(writes) >= 12
    before = await state(hg, first_org)
    second_org, second_key = hg.new_organization("second")
    rival = sign_in(hg, second_org, Role.OWNER)
    for headers in (hg.auth(second_key), rival.headers()):
        for method, path in writes:
            route = f"{method} {path}"
            body = WRITE_BODIES.get(route, {})
            filled = fill(path, first_org.ids)
            status, text = await call(hg, method, filled, body, headers)
            assert status in (403, 404), (route, status, text)
            assert told(text, filled, first_org) == set(), route
    assert await state(hg, first_org) == before
    # The first organization's key made through the API still works.
    status, _ = await call(hg, "GET", "/v1/rate-limits", None, hg.auth(first_org.api_key))
    assert status == 200


async def state(hg: Heliograph, first: FirstOrg) -> dict[str, str]:
    """What the first organization's writes could change, as its owner reads it."""
    org = f"/v1/organizations/{hg.organization_id}"
    found = {}
    for path in (
        "/v1/api-keys",
        "/v1/api-keys/provider-keys",
        "/v1/api-keys/proxy-keys",
        "/v1/rate-limits",
        "/v1/helicone-sql/saved-queries",
        "/v1/price-overrides",
        "/v1/webhooks",
        f"/v1/webhooks/{first.ids['{webhook_id}']}/deliveries",
        "/v1/alerts",
        f"/v1/prompt-2025/id/{first.ids['{promptId}']}",
        f"/v1/prompt-2025/{first.ids['{promptVersionId}']}/prompt-body",
        "/v1/prompt-2025/tags",
        "/v1/prompt-2025/environments",
        org,
        f"{org}/members",
        f"{org}/invitations",
    ):
        status, text = await call(hg, "GET", path, None, first.owner.headers())
        assert status == 200, (path, text)
        found[path] = without_last_use(text)
    return found


def without_last_use(text: str) -> str:
    """The text with keys' `last_used_at` blanked: using a key is not a write to it, and the key
    cache records a use in the background, whenever it gets to it."""
    return re.sub(r'"last_used_at":(null|"[^"]*")', '"last_used_at":-', text)


async def test_every_route_refuses_a_missing_or_wrong_key(
    heliograph: Heliograph, first_org: FirstOrg
) -> None:
    _, spec = await heliograph.api_get("/openapi.json")
    every = operations(spec)
    assert len(every) >= 50
    for method, path in every:
        filled = fill(path, first_org.ids)
        for headers in ({}, {"Authorization": "Bearer sk-helicone-not-a-key"}):
            status, text = await call(heliograph, method, filled, {}, headers)
            assert status == 401, (method, path, status, text)
            assert orjson.loads(text)["data"] is None
