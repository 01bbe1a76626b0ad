"""Dashboard metrics over rows with known times, costs, users and statuses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from conftest import Heliograph
from heliograph.analytics.chdb_executor import ChdbExecutor

DAY = datetime(2026, 3, 10, tzinfo=UTC)
WINDOW = {"timeFilter": {"start": "2026-03-10T00:00:00Z", "end": "2026-03-11T00:00:00Z"}}


@pytest.fixture
def day(heliograph: Heliograph, chdb_executor: ChdbExecutor) -> None:
    """Three requests at 01:xx, two at 20:xx UTC; one error; users ann, bo."""
    rows = [
        (DAY + timedelta(hours=1, minutes=5), 200, "ann", 1000, 100, "gpt-4o"),
        (DAY + timedelta(hours=1, minutes=30), 200, "ann", 2000, 300, "gpt-4o"),
        (DAY + timedelta(hours=1, minutes=59), 500, "bo", 0, 200, "gpt-4o-mini"),
        (DAY + timedelta(hours=20), 200, "bo", 4000, 400, "gpt-4o-mini"),
        (DAY + timedelta(hours=20, minutes=1), 200, "", 8000, 1000, "gpt-4o-mini"),
    ]
    lines = [
        orjson.dumps(
            {
                "request_id": str(uuid.uuid4()),
                "organization_id": heliograph.organization_id,
                "request_created_at": at.strftime("%Y-%m-%d %H:%M:%S.000"),
                "provider": "OPENAI",
                "model": model,
                "status": status,
                "latency": latency,
                "time_to_first_token": latency // 2,
                "is_stream": False,
                "user_id": user,
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "cost": cost,
                "pricing_status": "priced",
            }
        )
        for at, status, user, cost, latency, model in rows
    ]
    chdb_executor.insert("request_response", b"\n".join(lines), uuid.uuid4().hex)


async def test_totals_and_single_numbers(heliograph: Heliograph, day: None) -> None:
    status, body = await heliograph.api_post("/v1/metrics/totals", WINDOW)
    assert status == 200, body
    totals = body["data"]
    assert totals["total_requests"] == 5
    assert totals["total_cost"] == pytest.approx(15000 / 1e9)
    assert totals["errors"] == 1
    assert totals["active_users"] == 2
    assert totals["average_latency"] == 400
    status, body = await heliograph.api_post("/v1/metrics/totalRequests", WINDOW)
    assert body["data"] == 5


async def test_series_by_hour_and_by_day_in_a_time_zone(heliograph: Heliograph, day: None) -> None:
    status, body = await heliograph.api_post(
        "/v1/metrics/requestOverTime", {**WINDOW, "dbIncrement": "hour"}
    )
    assert status == 200, body
    assert body["data"] == [
        {"time": "2026-03-10T01:00:00Z", "count": 3},
        {"time": "2026-03-10T20:00:00Z", "count": 2},
    ]
    # UTC+10 (JavaScript's offset is -600): 20:00 UTC is already the 11th, local midnight of
    # which is 14:00 UTC on the 10th.
    status, body = await heliograph.api_post(
        "/v1/metrics/costOverTime", {**WINDOW, "dbIncrement": "day", "timeZoneDifference": -600}
    )
    assert [(p["time"], p["cost"]) for p in body["data"]] == [
        ("2026-03-09T14:00:00Z", pytest.approx(3000 / 1e9)),
        ("2026-03-10T14:00:00Z", pytest.approx(12000 / 1e9)),
    ]
    status, body = await heliograph.api_post(
        "/v1/metrics/requestStatusOverTime", {**WINDOW, "dbIncrement": "day"}
    )
    assert sorted((p["status"], p["count"]) for p in body["data"]) == [(200, 4), (500, 1)]


async def test_quantiles_and_models(heliograph: Heliograph, day: None) -> None:
    status, body = await heliograph.api_post(
        "/v1/metrics/quantiles", {**WINDOW, "dbIncrement": "day", "metric": "latency"}
    )
    assert status == 200, body
    (point,) = body["data"]
    assert point["p50"] <= point["p90"] <= point["p99"] <= 1000
    status, body = await heliograph.api_post("/v1/metrics/models", WINDOW)
    assert [(m["model"], m["total_requests"]) for m in body["data"]] == [
        ("gpt-4o-mini", 3),
        ("gpt-4o", 2),
    ]


async def test_metrics_are_scoped_and_validated(heliograph: Heliograph, day: None) -> None:
    _, other = heliograph.new_organization("rival")
    status, body = await heliograph.api_post("/v1/metrics/totals", WINDOW, key=other)
    assert body["data"]["total_requests"] == 0
    cases = [
        ("/v1/metrics/costOverTime", {}, 400, "timeFilter"),
        (
            "/v1/metrics/costOverTime",
            {
                "timeFilter": {"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
                "dbIncrement": "min",
            },
            400,
            "too many",
        ),
        ("/v1/metrics/costOverTime", {**WINDOW, "dbIncrement": "fortnight"}, 400, "dbIncrement"),
        (
            "/v1/metrics/totals",
            {"filter": {"request_response_rmt": {"nope": {}}}},
            400,
            "unknown column",
        ),
        ("/v1/metrics/happiness", WINDOW, 404, "no metric"),
    ]
    for path, payload, expected, message in cases:
        status, body = await heliograph.api_post(path, payload)
        assert status == expected, (path, body)
        assert message in body["error"]


@pytest.fixture
def teams(heliograph: Heliograph, chdb_executor: ChdbExecutor) -> None:
    rows = [("red", 1000), ("red", 3000), ("blue", 5000), ("Rose", 1), (None, 7)]
    lines = []
    for index, (team, cost) in enumerate(rows):
        properties = {"env": "prod"} if team is None else {"team": team, "env": "prod"}
        lines.append(
            orjson.dumps(
                {
                    "request_id": str(uuid.uuid4()),
                    "organization_id": heliograph.organization_id,
                    "request_created_at": (DAY + timedelta(hours=index)).strftime(
                        "%Y-%m-%d %H:%M:%S.000"
                    ),
                    "provider": "OPENAI",
                    "model": "gpt-4o-mini",
                    "status": 200,
                    "latency": 10,
                    "is_stream": False,
                    "properties": properties,
                    "cost": cost,
                    "pricing_status": "priced",
                }
            )
        )
    chdb_executor.insert("request_response", b"\n".join(lines), uuid.uuid4().hex)


async def test_property_keys_values_and_tops(heliograph: Heliograph, teams: None) -> None:
    status, body = await heliograph.api_post("/v1/property/query", WINDOW)
    assert status == 200, body
    assert body["data"] == [{"property": "env", "requests": 5}, {"property": "team", "requests": 4}]
    status, body = await heliograph.api_post("/v1/property/team/search", {"searchTerm": "R"})
    assert [v["value"] for v in body["data"]] == ["red", "Rose"]
    status, body = await heliograph.api_post("/v1/property/team/top-costs/query", WINDOW)
    assert [(v["value"], v["cost"]) for v in body["data"]] == [
        ("blue", pytest.approx(5e-6)),
        ("red", pytest.approx(4e-6)),
        ("Rose", pytest.approx(1e-9)),
    ]
    status, body = await heliograph.api_post("/v1/property/team/top-requests/query", WINDOW)
    assert body["data"][0]["value"] == "red"
    status, body = await heliograph.api_post(
        "/v1/property/team/over-time", {**WINDOW, "dbIncrement": "day"}
    )
    assert sorted((p["value"], p["requests"]) for p in body["data"]) == [
        ("Rose", 1),
        ("blue", 1),
        ("red", 2),
    ]
    _, other = heliograph.new_organization("rival")
    status, body = await heliograph.api_post("/v1/property/query", WINDOW, key=other)
    assert body["data"] == []
    status, body = await heliograph.api_post("/v1/property/team/over-time", {})
    assert status == 400


async def test_hidden_property_keys_leave_the_list_until_restored(
    heliograph: Heliograph, teams: None
) -> None:
    status, body = await heliograph.api_post("/v1/property/hide", {"key": "team"})
    assert status == 200, body
    await heliograph.api_post("/v1/property/hide", {"key": "team"})  # hiding twice is harmless
    _, body = await heliograph.api_post("/v1/property/query", WINDOW)
    assert body["data"] == [{"property": "env", "requests": 5}]
    _, body = await heliograph.api_post("/v1/property/hidden/query", {})
    assert body["data"] == [{"key": "team"}]
    # Hidden from the list only: the values are still searchable by name.
    _, body = await heliograph.api_post("/v1/property/team/search", {"searchTerm": "R"})
    assert len(body["data"]) == 2
    _, other = heliograph.new_organization("rival")
    _, body = await heliograph.api_post("/v1/property/hidden/query", {}, key=other)
    assert body["data"] == []
    status, _ = await heliograph.api_post("/v1/property/restore", {"key": "team"}, key=other)
    assert status == 404
    status, _ = await heliograph.api_post("/v1/property/restore", {"key": "team"})
    assert status == 200
    _, body = await heliograph.api_post("/v1/property/query", WINDOW)
    assert [p["property"] for p in body["data"]] == ["env", "team"]
    status, body = await heliograph.api_post("/v1/property/restore", {"key": "team"})
    assert (status, body["error"]) == (404, "property key 'team' is not hidden")
    status, _ = await heliograph.api_post("/v1/property/hide", {"key": ""})
    assert status == 400
    status, _ = await heliograph.api_post("/v1/property/hide", {"key": "k" * 501})
    assert status == 400
