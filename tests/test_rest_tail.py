"""The REST long tail Helicone clients call: properties added after the fact (shown, filtered,
listed; organization-scoped), lookups by id, prompt inputs, the per-value property series, the
user overview and the rest of Helicone's dashboard metrics, each in Helicone's shape."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest

from conftest import Heliograph
from heliograph.analytics.chdb_executor import ChdbExecutor
from heliograph.domain.access import KeyPermissions

DAY = datetime(2026, 3, 10, tzinfo=UTC)
WINDOW = {"start": "2026-03-10T00:00:00Z", "end": "2026-03-11T00:00:00Z"}
PROMPT_BODY = {
    "model": "gpt-4o",
    "messages": [
        {
            "role": "user",
            "content": 'Write about <helicone-prompt-input key="topic">otters'
            '</helicone-prompt-input> for <helicone-prompt-input key="reader">kids'
            "</helicone-prompt-input>.",
        }
    ],
}


def row(organization_id: str, minutes: int, **fields: Any) -> dict[str, Any]:
    at = DAY + timedelta(hours=1, minutes=minutes)
    return {
        "request_id": str(uuid.uuid4()),
        "organization_id": organization_id,
        "request_created_at": at.strftime("%Y-%m-%d %H:%M:%S.000"),
        "provider": "OPENAI",
        "model": "gpt-4o",
        "status": 200,
        "latency": 100,
        "is_stream": False,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost": 1000,
        "pricing_status": "priced",
        **fields,
    }


def insert(executor: ChdbExecutor, rows: list[dict[str, Any]]) -> list[str]:
    executor.insert("request_response", b"\n".join(map(orjson.dumps, rows)), uuid.uuid4().hex)
    return [r["request_id"] for r in rows]


@pytest.fixture
def logged(heliograph: Heliograph, chdb_executor: ChdbExecutor) -> list[str]:
    """Three requests: `env=prod` by ann, `env=dev` by ann, a prompt request by bo (cached)."""
    org = heliograph.organization_id
    return insert(
        chdb_executor,
        [
            row(org, 0, user_id="ann", properties={"env": "prod"}),
            row(org, 10, user_id="ann", properties={"env": "dev"}, cost=3000),
            row(
                org,
                20,
                user_id="bo",
                cache_enabled=True,
                properties={"Helicone-Prompt-Id": "poem", "Helicone-Prompt-Version": "3"},
                request_body=orjson.dumps(PROMPT_BODY).decode(),
                completion_tokens=25,
            ),
        ],
    )


async def ids_where(heliograph: Heliograph, leaf: dict[str, Any]) -> set[str]:
    body = {"filter": {"request_response_rmt": leaf}, "limit": 100}
    status, found = await heliograph.api_post("/v1/request/query-clickhouse", body)
    assert status == 200, found
    return {request["request_id"] for request in found["data"]}


async def test_added_property_is_read_filtered_and_listed(
    heliograph: Heliograph, logged: list[str]
) -> None:
    prod, dev, _ = logged
    for key, value in (("env", "staging"), ("team", "search"), ("env", "canary")):
        status, body = await heliograph.api_put(
            f"/v1/request/{prod}/property", {"key": key, "value": value}
        )
        assert (status, body) == (200, {"data": None, "error": None})

    status, got = await heliograph.api_get(f"/v1/request/{prod}")
    assert status == 200
    assert got["data"]["properties"] == {"env": "canary", "team": "search"}  # newest wins
    assert got["data"]["request_properties"] == {"env": "canary", "team": "search"}

    assert await ids_where(heliograph, {"properties": {"env": {"equals": "canary"}}}) == {prod}
    assert await ids_where(heliograph, {"properties": {"env": {"equals": "prod"}}}) == set()
    assert await ids_where(heliograph, {"properties": {"env": {"equals": "dev"}}}) == {dev}
    assert await ids_where(heliograph, {"properties": {"team": {"contains": "EAR"}}}) == {prod}

    status, keys = await heliograph.api_post("/v1/property/query", {})
    assert {"property": "team", "requests": 1} in keys["data"]
    assert {"property": "env", "requests": 2} in keys["data"]
    status, values = await heliograph.api_post("/v1/property/env/search", {"searchTerm": ""})
    assert sorted(v["value"] for v in values["data"]) == ["canary", "dev"]

    status, listed = await heliograph.api_post("/v1/request/query-ids", {"requestIds": [prod]})
    assert listed["data"][0]["properties"]["team"] == "search"
    by_team = {"request_response_rmt": {"properties": {"team": {"equals": "search"}}}}
    window = {"filter": by_team, "timeFilter": WINDOW}
    status, total = await heliograph.api_post("/v1/metrics/totalRequests", window)
    assert (status, total["data"]) == (200, 1)


async def test_added_properties_stay_in_their_organization(
    heliograph: Heliograph, logged: list[str], chdb_executor: ChdbExecutor
) -> None:
    other_org, other_key = heliograph.new_organization()
    (theirs,) = insert(chdb_executor, [row(other_org, 5, properties={"env": "prod"})])
    status, _ = await heliograph.api_put(
        f"/v1/request/{theirs}/property", {"key": "secret", "value": "s3"}, key=other_key
    )
    assert status == 200
    status, _ = await heliograph.api_put(
        f"/v1/request/{theirs}/property", {"key": "env", "value": "mine"}
    )
    assert status == 404
    _, ours = await heliograph.api_post("/v1/property/query", {})
    assert {key["property"] for key in ours["data"]} == {
        "env",
        "Helicone-Prompt-Id",
        "Helicone-Prompt-Version",
    }
    _, theirs_keys = await heliograph.api_post("/v1/property/query", {}, key=other_key)
    assert {key["property"] for key in theirs_keys["data"]} == {"env", "secret"}
    assert await ids_where(heliograph, {"properties": {"secret": {"equals": "s3"}}}) == set()
    _, got = await heliograph.api_get(f"/v1/request/{theirs}", key=other_key)
    assert got["data"]["properties"] == {"env": "prod", "secret": "s3"}


async def test_added_property_refusals(heliograph: Heliograph, logged: list[str]) -> None:
    prod = logged[0]
    path = f"/v1/request/{prod}/property"
    for bad in (
        {"key": "", "value": "x"},
        {"key": "k" * 257, "value": "x"},
        {"key": "k", "value": "v" * 10_001},
        {"key": "k", "value": "a\x00b"},
        {"key": "k", "value": 5},
        {"key": "k"},
        {"key": "\ud800", "value": "x"},
    ):
        status, body = await heliograph.api_put(path, bad)
        assert status == 400, (bad, body)
        assert body["data"] is None
        assert body["error"]

    status, body = await heliograph.api_put(
        "/v1/request/not-a-uuid/property", {"key": "k", "value": "v"}
    )
    assert status == 400
    assert "UUID" in body["error"]
    status, body = await heliograph.api_put(
        f"/v1/request/{uuid.uuid4()}/property", {"key": "k", "value": "v"}
    )
    assert status == 404

    _, other_key = heliograph.new_organization()
    status, _ = await heliograph.api_put(path, {"key": "k", "value": "stolen"}, key=other_key)
    assert status == 404  # another organization's request is not there at all
    reader = heliograph.running.services.keys.create_key(
        heliograph.organization_id, "reader", KeyPermissions.READ
    ).api_key
    status, _ = await heliograph.api_put(path, {"key": "k", "value": "v"}, key=reader)
    assert status == 403
    async with aiohttp.ClientSession() as session:
        async with session.put(
            heliograph.api + path, data=b'{"key": "k", "value"', headers=heliograph.auth()
        ) as resp:
            assert resp.status == 400
        async with session.put(
            heliograph.api + path,
            data=b'{"key": "k", "value": "\xff\xfe"}',
            headers={**heliograph.auth(), "Content-Type": "application/json"},
        ) as resp:
            assert resp.status == 400

    status, got = await heliograph.api_get(f"/v1/request/{prod}")
    assert got["data"]["properties"] == {"env": "prod"}  # nothing refused was stored
    status, got = await heliograph.api_get(f"/v1/request/{prod}", key=other_key)
    assert status == 404


async def test_an_added_key_replaces_the_logged_one_whatever_its_case(
    heliograph: Heliograph, logged: list[str]
) -> None:
    """The gateway stores `Helicone-Property-*` names lower-cased; a key added later is too."""
    status, _ = await heliograph.api_put(
        f"/v1/request/{logged[0]}/property", {"key": "ENV", "value": "staging"}
    )
    assert status == 200
    _, got = await heliograph.api_get(f"/v1/request/{logged[0]}")
    assert got["data"]["properties"] == {"env": "staging"}


async def test_a_request_takes_a_bounded_number_of_added_values(
    heliograph: Heliograph, logged: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replacing a value appends a row, so the values added to one request are capped too."""
    monkeypatch.setattr("heliograph.services.requests.MAX_ADDED_VALUES", 3)
    path = f"/v1/request/{logged[0]}/property"
    for value in ("one", "two", "three"):
        status, _ = await heliograph.api_put(path, {"key": "stage", "value": value})
        assert status == 200
    status, body = await heliograph.api_put(path, {"key": "stage", "value": "four"})
    assert status == 409
    assert "at most 3" in body["error"]
    _, got = await heliograph.api_get(f"/v1/request/{logged[0]}")
    assert got["data"]["properties"]["stage"] == "three"
    status, _ = await heliograph.api_put(
        f"/v1/request/{logged[1]}/property", {"key": "k", "value": "v"}
    )
    assert status == 200  # the cap is per request


async def test_query_ids(
    heliograph: Heliograph, logged: list[str], chdb_executor: ChdbExecutor
) -> None:
    other_org, other_key = heliograph.new_organization()
    (theirs,) = insert(chdb_executor, [row(other_org, 5)])
    asked = [logged[0], logged[2].upper(), theirs, str(uuid.uuid4())]
    status, body = await heliograph.api_post("/v1/request/query-ids", {"requestIds": asked})
    assert status == 200, body
    assert [r["request_id"] for r in body["data"]] == [logged[2], logged[0]]  # newest first
    assert body["data"][0]["request_body"] == PROMPT_BODY
    status, body = await heliograph.api_post("/v1/request/query-ids", {"requestIds": []})
    assert (status, body["data"]) == (200, [])
    status, body = await heliograph.api_post(
        "/v1/request/query-ids", {"requestIds": [theirs]}, key=other_key
    )
    assert [r["request_id"] for r in body["data"]] == [theirs]

    for bad in (
        {"requestIds": ["nope"]},
        {"requestIds": [str(uuid.uuid4())] * 1001},
        {"requestIds": "x"},
        {},
    ):
        status, body = await heliograph.api_post("/v1/request/query-ids", bad)
        assert status == 400, (bad, body)


async def test_inputs(heliograph: Heliograph, logged: list[str]) -> None:
    status, body = await heliograph.api_get(f"/v1/request/{logged[2]}/inputs")
    assert status == 200, body
    assert body["data"] == {
        "inputs": {"topic": "otters", "reader": "kids"},
        "prompt_id": "poem",
        "version_id": "3",
        "environment": None,
    }
    status, body = await heliograph.api_get(f"/v1/request/{logged[0]}/inputs")
    assert (status, body) == (200, {"data": None, "error": None})
    status, _ = await heliograph.api_get(f"/v1/request/{uuid.uuid4()}/inputs")
    assert status == 404
    status, _ = await heliograph.api_get("/v1/request/x/inputs")
    assert status == 400


async def test_properties_over_time(heliograph: Heliograph, logged: list[str]) -> None:
    await heliograph.api_put(f"/v1/request/{logged[2]}/property", {"key": "env", "value": "dev"})
    body = {
        "timeFilter": WINDOW,
        "userFilter": "all",
        "dbIncrement": "hour",
        "timeZoneDifference": 0,
        "propertyKey": "env",
    }
    status, got = await heliograph.api_post("/v1/property/properties/over-time", body)
    assert status == 200, got
    assert got["data"] == [
        {
            "created_at_trunc": "2026-03-10T01:00:00Z",
            "property": "dev",
            "request_count": 2,
            "total_cost": pytest.approx(4000 / 1e9),
        },
        {
            "created_at_trunc": "2026-03-10T01:00:00Z",
            "property": "prod",
            "request_count": 1,
            "total_cost": pytest.approx(1000 / 1e9),
        },
    ]
    for bad in (
        {**body, "propertyKey": ""},
        {**body, "timeFilter": None},
        {**body, "userFilter": 3},
    ):
        status, _ = await heliograph.api_post("/v1/property/properties/over-time", bad)
        assert status == 400


async def test_user_overview(heliograph: Heliograph, logged: list[str]) -> None:
    body = {"filter": "all", "pSize": "p99", "useInterquartile": False}
    status, got = await heliograph.api_post("/v1/user/metrics-overview/query", body)
    assert status == 200, got
    overview = got["data"]
    assert set(overview) == {"request_count", "user_cost"}
    # ann (2 requests, 4000 nano-USD) lies above the p99 of two users: trimmed as an outlier.
    assert sum(b["value"] for b in overview["request_count"]) == 1
    assert sum(b["value"] for b in overview["user_cost"]) == 1
    (cost_bin,) = overview["user_cost"]
    assert float(cost_bin["range_start"]) == pytest.approx(1000 / 1e9)
    assert set(cost_bin) == {"range_start", "range_end", "value"}
    body["useInterquartile"] = True  # between p1 and p99: neither end survives
    status, got = await heliograph.api_post("/v1/user/metrics-overview/query", body)
    assert got["data"] == {"request_count": [], "user_cost": []}
    status, got = await heliograph.api_post(
        "/v1/user/metrics-overview/query",
        {"filter": {"request_response_rmt": {"user_id": {"equals": "nobody"}}}},
    )
    assert got["data"] == {"request_count": [], "user_cost": []}
    status, _ = await heliograph.api_post("/v1/user/metrics-overview/query", {"pSize": "p42"})
    assert status == 400


async def test_helicone_metrics(heliograph: Heliograph, logged: list[str]) -> None:
    async def metric(name: str, **extra: Any) -> Any:
        status, body = await heliograph.api_post(
            f"/v1/metrics/{name}", {"timeFilter": WINDOW, **extra}
        )
        assert status == 200, (name, body)
        return body["data"]

    assert await metric("averageTokensPerRequest") == {
        "average_prompt_tokens_per_response": 10,
        "average_completion_tokens_per_response": pytest.approx(35 / 3),
        "average_total_tokens_per_response": pytest.approx(65 / 3),
    }
    assert await metric("requestCount", filter="all") == 3
    assert await metric("requestCount", isCached=True) == 1
    assert await metric("totalThreats") == 0
    assert await metric("threatsOverTime") == []
    assert await metric("country") == []
    usage = await metric("modelUsageOverTime", dbIncrement="hour")
    assert usage == [
        {"time": "2026-03-10T01:00:00Z", "model": "gpt-4o", "request_count": 3, "total_tokens": 65}
    ]
    (tokens,) = await metric("detailedTokensOverTime", dbIncrement="day")
    assert tokens["prompt_tokens"] == 30
    assert tokens["completion_tokens"] == 35
    assert tokens["reasoning_tokens"] == 0
    assert tokens["prompt_cache_read_tokens"] == 0

    status, body = await heliograph.api_post("/v1/providers", {"timeFilter": WINDOW, "limit": 5})
    assert body["data"] == [{"provider": "OPENAI", "total_requests": 3}]
    (model,) = await metric("models")
    assert (model["total_prompt_token"], model["total_completion_tokens"]) == (30, 35)

    status, body = await heliograph.api_post("/v1/metrics/threatsOverTime", {"filter": {"bad": 1}})
    assert status == 400
    status, body = await heliograph.api_post("/v1/metrics/threatsOverTime", {})
    assert status == 400
    assert "timeFilter" in body["error"]
    status, body = await heliograph.api_post("/v1/metrics/requestCount", {"isCached": "maybe"})
    assert status == 400
    status, body = await heliograph.api_post("/v1/metrics/nope", {})
    assert status == 404
    assert "requestCount" in body["error"]


async def test_dashboard_scores(heliograph: Heliograph, logged: list[str]) -> None:
    prod, dev, prompt = logged
    for request_id, scores in (
        (prod, {"accuracy": 2}),
        (dev, {"accuracy": 4}),
        (prod, {"accuracy": 6}),
    ):
        status, _ = await heliograph.api_post(f"/v1/request/{request_id}/score", {"scores": scores})
        assert status == 201
    await heliograph.api_post(f"/v1/request/{prompt}/feedback", {"rating": True})
    body = {
        "timeFilter": WINDOW,
        "userFilter": "all",
        "dbIncrement": "day",
        "timeZoneDifference": 0,
    }
    status, got = await heliograph.api_post("/v1/dashboard/scores/query", body)
    assert status == 200, got
    assert got["data"] == [  # prod's newest accuracy (6) and dev's (4)
        {"created_at_trunc": "2026-03-10T00:00:00Z", "score_key": "accuracy", "score_sum": 5.0},
        {
            "created_at_trunc": "2026-03-10T00:00:00Z",
            "score_key": "helicone-score-feedback",
            "score_sum": 1.0,
        },
    ]
    by_env = {"request_response_rmt": {"properties": {"env": {"equals": "dev"}}}}
    status, got = await heliograph.api_post(
        "/v1/dashboard/scores/query", {**body, "userFilter": by_env}
    )
    assert [(p["score_key"], p["score_sum"]) for p in got["data"]] == [("accuracy", 4.0)]
    _, other_key = heliograph.new_organization()
    status, got = await heliograph.api_post("/v1/dashboard/scores/query", body, key=other_key)
    assert (status, got["data"]) == (200, [])
    status, got = await heliograph.api_post("/v1/dashboard/scores/query", {"userFilter": "all"})
    assert status == 400
