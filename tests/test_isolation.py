"""Tenant isolation across the whole API: every route the OpenAPI document lists is called by a
second organization, with the first organization's ids in its path, and nothing of the first
organization's comes back. The same calls made by the first organization show its data, so the
check would notice a route that leaked it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest

from conftest import Heliograph

MARKER = "zqx"  # in the user, session, name, property and tag of the first organization
SKIPPED = {"/metrics", "/healthz"}  # the process's own metrics and health
# Writes; each one's isolation is tested with its feature.
WRITES = {
    "/v1/log/request",
    "/v1/rate-limits",
    "/v1/property/hide",
    "/v1/property/restore",
    "/v1/request/{request_id}/feedback",
    "/v1/request/{request_id}/score",
    "/v1/session/{session_id}/tag",
    "/v1/session/{session_id}/feedback",
}


@pytest.fixture
async def first_org(heliograph: Heliograph) -> dict[str, str]:
    headers = {
        **heliograph.gateway_auth(),
        "Helicone-User-Id": f"{MARKER}-user",
        "Helicone-Session-Id": f"{MARKER}-session",
        "Helicone-Session-Name": f"{MARKER}-name",
        "Helicone-Session-Path": "/step",
        f"Helicone-Property-{MARKER}key": f"{MARKER}-value",
    }
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"{MARKER} hi"}]}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{heliograph.gateway}/openai/v1/chat/completions", json=chat, headers=headers
        ) as response:
            assert response.status == 200
            request_id = response.headers["Helicone-Id"]
    await heliograph.wait_for(request_id)
    await heliograph.api_post(f"/v1/session/{MARKER}-session/tag", {"tag": f"{MARKER}-tag"})
    await heliograph.api_post(f"/v1/request/{request_id}/score", {"scores": {"q": 1}})
    await heliograph.api_post("/v1/property/hide", {"key": f"{MARKER}-hidden"})
    rule = {"name": f"{MARKER}-rule", "quota": 5, "window_seconds": 60}
    status, created = await heliograph.api_post("/v1/rate-limits", rule)
    assert status == 201, created
    return {"request_id": request_id, "rule_id": created["data"]["id"]}


def calls(ids: dict[str, str], spec: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """One call per read route of the OpenAPI document, its path filled with the first
    organization's ids and its body covering the last day."""
    now = datetime.now(UTC)
    iso = {
        "start": (now - timedelta(days=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
    }
    fill = {
        "{request_id}": ids["request_id"],
        "{session_id}": f"{MARKER}-session",
        "{key}": f"{MARKER}key",
        "{name}": "requestOverTime",
        "{rule_id}": ids["rule_id"],
    }
    bodies: dict[str, Any] = {
        "/v1/helicone-sql/execute": {"sql": "SELECT * FROM request_response"},
        "/v1/helicone-sql/download": {"sql": "SELECT * FROM request_response"},
        "/v1/request/export": {"format": "jsonl"},
    }
    found = []
    for path, operations in spec["paths"].items():
        if path in SKIPPED:
            continue
        for method in operations:
            if method not in ("get", "post") or (method == "post" and path in WRITES):
                continue
            if path.startswith("/v1/metrics") or path.endswith("/over-time"):
                body: Any = {"timeFilter": iso, "dbIncrement": "hour"}
            else:
                body = bodies.get(path, {})
            filled = path
            for placeholder, value in fill.items():
                filled = filled.replace(placeholder, value)
            found.append((method.upper(), filled, None if method == "get" else body))
    return found


async def responses(
    hg: Heliograph, key: str | None, wanted: list[tuple[str, str, Any]]
) -> dict[str, str]:
    texts = {}
    async with aiohttp.ClientSession() as session:
        for method, path, body in wanted:
            if (
                path.endswith(("/tag", "/feedback", "/score", "/hide", "/restore"))
                and method == "POST"
            ):
                continue  # writes; their isolation is tested with the feature
            async with session.request(method, hg.api + path, json=body, headers=hg.auth(key)) as r:
                text = await r.text()
                assert r.status in (200, 404), (path, r.status, text)
                # A 404 names only what the caller asked for; anything else is an answer.
                texts[f"{method} {path}"] = text if r.status == 200 else ""
    return texts


async def test_no_route_shows_another_organizations_data(
    heliograph: Heliograph, first_org: dict[str, str]
) -> None:
    _, spec = await heliograph.api_get("/openapi.json")
    wanted = calls(first_org, spec)
    assert len(wanted) >= 25
    _, second_key = heliograph.new_organization("second")
    seen_by_second = await responses(heliograph, second_key, wanted)
    leaks = {
        route: text[:200]
        for route, text in seen_by_second.items()
        if MARKER in text or first_org["request_id"] in text
    }
    assert leaks == {}
    seen_by_first = await responses(heliograph, None, wanted)
    shown = {route for route, text in seen_by_first.items() if MARKER in text}
    # The first organization sees itself through the routes that return its identifiers.
    assert {
        "POST /v1/request/query-clickhouse",
        "POST /v1/request/page",
        "POST /v1/request/export",
        f"GET /v1/request/{first_org['request_id']}",
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
    } <= shown
    assert orjson.loads(seen_by_second["POST /v1/session/count"])["data"]["count"] == 0
    assert orjson.loads(seen_by_first["POST /v1/session/count"])["data"]["count"] == 1


async def test_every_route_refuses_a_missing_or_wrong_key(
    heliograph: Heliograph, first_org: dict[str, str]
) -> None:
    _, spec = await heliograph.api_get("/openapi.json")
    every = [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if path not in SKIPPED
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(every) >= 35
    async with aiohttp.ClientSession() as session:
        for method, path in every:
            ((_, filled, _),) = calls(first_org, {"paths": {path: {"get": {}}}})
            for headers in ({}, {"Authorization": "Bearer sk-helicone-not-a-key"}):
                url = heliograph.api + filled
                async with session.request(method, url, json={}, headers=headers) as response:
                    body = await response.json()
                    assert response.status == 401, (method, path, response.status, body)
                    assert body["data"] is None
