"""Sessions (list, count, names, charts, tree, tags, feedback) and users, over requests sent
through the gateway."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest

from conftest import Heliograph

SESSIONS = "sessions_request_response_rmt"
MIXED_OR = {
    "left": {SESSIONS: {"session_total_requests": {"gte": 1}}},
    "operator": "or",
    "right": {"request_response_rmt": {"user_id": {"equals": "ann"}}},
}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def send(hg: Heliograph, **headers: str) -> str:
    """One request through the gateway; a few milliseconds pass before the next, so requests sent
    in order are stored in order (times are kept to the millisecond)."""
    await asyncio.sleep(0.005)
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{hg.gateway}/openai/v1/chat/completions",
            json=CHAT,
            headers={**hg.gateway_auth(), **headers},
        ) as response:
            assert response.status == 200
            await response.read()
            return response.headers["Helicone-Id"]


@pytest.fixture
async def trip(heliograph: Heliograph) -> dict[str, str]:
    """A session of four requests on three paths by two users, and one lone request."""
    session = f"trip-{uuid.uuid4()}"
    base = {"Helicone-Session-Id": session, "Helicone-Session-Name": "planner"}
    ids = {
        "plan": await send(
            heliograph, **base, **{"Helicone-Session-Path": "/plan", "Helicone-User-Id": "ann"}
        ),
        "step-1": await send(
            heliograph,
            **base,
            **{"Helicone-Session-Path": "/plan/step-1", "Helicone-User-Id": "ann"},
        ),
        "step-2": await send(
            heliograph,
            **base,
            **{"Helicone-Session-Path": "/plan/step-2", "Helicone-User-Id": "bo"},
        ),
        "answer": await send(
            heliograph, **base, **{"Helicone-Session-Path": "/answer", "Helicone-User-Id": "ann"}
        ),
        "lone": await send(heliograph, **{"Helicone-User-Id": "cy"}),
    }
    for request_id in ids.values():
        await heliograph.wait_for(request_id)
    ids["session"] = session
    return ids


async def test_sessions_are_listed_counted_and_searched(
    heliograph: Heliograph, trip: dict[str, str]
) -> None:
    status, body = await heliograph.api_post("/v1/session/query", {"search": trip["session"][5:15]})
    assert status == 200, body
    (found,) = body["data"]
    assert found["session_id"] == trip["session"]
    assert found["session_name"] == "planner"
    assert found["total_requests"] == 4
    assert found["user_ids"] == ["ann", "bo"]
    assert found["total_tokens"] == 4 * 30  # the provider's own total_tokens, cached included
    assert found["total_cost"] == pytest.approx(4 * 8175 / 1e9)
    status, body = await heliograph.api_post("/v1/session/count", {"nameEquals": "planner"})
    assert body["data"]["count"] == 1
    assert body["data"]["avg_requests"] == 4
    future = int(time.time() * 1000) + 3_600_000
    window = {"timeFilter": {"startTimeUnixMs": future, "endTimeUnixMs": future + 1000}}
    status, body = await heliograph.api_post("/v1/session/query", window)
    assert body["data"] == []


async def test_session_tree_nests_paths_with_offsets_and_totals(
    heliograph: Heliograph, trip: dict[str, str]
) -> None:
    status, body = await heliograph.api_get(f"/v1/session/{trip['session']}/tree")
    assert status == 200, body
    tree = body["data"]
    assert tree["session_name"] == "planner"
    assert tree["total_requests"] == 4
    plan, answer = tree["children"]
    assert (plan["path"], answer["path"]) == ("/plan", "/answer")
    assert [r["request_id"] for r in plan["requests"]] == [trip["plan"]]
    assert [child["path"] for child in plan["children"]] == ["/plan/step-1", "/plan/step-2"]
    assert plan["total_requests"] == 3
    assert plan["total_cost_nano_usd"] == 3 * 8175
    assert plan["start_offset_ms"] == 0
    assert answer["start_offset_ms"] >= plan["children"][1]["start_offset_ms"]
    assert tree["duration_ms"] >= answer["start_offset_ms"]


async def test_user_metrics(heliograph: Heliograph, trip: dict[str, str]) -> None:
    status, body = await heliograph.api_post(
        "/v1/user/metrics/query", {"sort": {"total_requests": "desc"}}
    )
    assert status == 200, body
    users = body["data"]["users"]
    assert [(u["user_id"], u["total_requests"]) for u in users] == [
        ("ann", 3),
        ("bo", 1),
        ("cy", 1),
    ]
    assert body["data"]["count"] == 3
    ann = users[0]
    assert ann["active_for"] == 1
    assert ann["average_tokens_per_request"] == 30
    assert ann["cost"] == pytest.approx(3 * 8175 / 1e9)


async def test_other_organizations_see_nothing(
    heliograph: Heliograph, trip: dict[str, str]
) -> None:
    _, key = heliograph.new_organization("rival")
    status, _ = await heliograph.api_get(f"/v1/session/{trip['session']}/tree", key=key)
    assert status == 404
    status, body = await heliograph.api_post("/v1/session/query", {}, key=key)
    assert body["data"] == []
    status, body = await heliograph.api_post("/v1/user/metrics/query", {}, key=key)
    assert body["data"] == {"users": [], "count": 0, "hasUsers": False}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/session/query", {"limit": 0}, "limit"),
        ("/v1/session/query", {"limit": 5000}, "limit"),
        ("/v1/session/query", {"filter": {"nope": {}}}, "unknown table"),
        ("/v1/session/count", {"timeFilter": {"startTimeUnixMs": 5, "endTimeUnixMs": 1}}, "before"),
        ("/v1/user/metrics/query", {"sort": {"shoe_size": "asc"}}, "unknown sort key"),
        ("/v1/user/metrics/query", {"sort": {"cost": "up"}}, "sort"),
        ("/v1/session/query", {"filter": MIXED_OR}, "only by 'and'"),
        ("/v1/session/query", {"filter": {SESSIONS: {"session_shoe": {"equals": 1}}}}, "unknown"),
        (
            "/v1/session/query",
            {"filter": {SESSIONS: {"session_total_cost": {"gte": "x"}}}},
            "number",
        ),
        ("/v1/request/query-clickhouse", {"filter": {SESSIONS: {}}}, "only to the session"),
        ("/v1/session/metrics/query", {"pSize": "p42"}, "pSize"),
        ("/v1/session/name/query", {"limit": 0}, "limit"),
        ("/v1/user/query", {"userIds": "ann"}, "userIds"),
        ("/v1/user/query", {"userIds": ["u"] * 1001}, "userIds"),
        ("/v1/user/metrics/query", {"filter": {SESSIONS: {}}}, "only to the session"),
    ],
)
async def test_bad_aggregate_queries_are_400(
    heliograph: Heliograph, path: str, body: dict[str, Any], message: str
) -> None:
    status, response = await heliograph.api_post(path, body)
    assert status == 400, response
    assert message in response["error"]


def session_filter(column: str, operator: str, value: object) -> dict[str, Any]:
    return {"filter": {SESSIONS: {column: {operator: value}}}}


async def test_session_level_filters_select_sessions(
    heliograph: Heliograph, trip: dict[str, str]
) -> None:
    query = "/v1/session/query"
    status, body = await heliograph.api_post(
        query, session_filter("session_total_requests", "gte", 4)
    )
    assert status == 200, body
    assert [s["session_id"] for s in body["data"]] == [trip["session"]]
    _, body = await heliograph.api_post(query, session_filter("session_total_requests", "gt", 4))
    assert body["data"] == []
    _, body = await heliograph.api_post(
        query, session_filter("session_total_cost", "gte", 4 * 8175e-9)
    )
    assert len(body["data"]) == 1
    _, body = await heliograph.api_post(
        query, session_filter("session_session_name", "equals", "x")
    )
    assert body["data"] == []
    # Request conditions narrow what is counted; session conditions then judge the narrowed session.
    only_bo = {
        "left": {"request_response_rmt": {"user_id": {"equals": "bo"}}},
        "operator": "and",
        "right": {SESSIONS: {"session_total_requests": {"equals": 1}}},
    }
    _, body = await heliograph.api_post(query, {"filter": only_bo})
    (found,) = body["data"]
    assert (found["total_requests"], found["user_ids"]) == (1, ["bo"])
    _, body = await heliograph.api_post("/v1/session/count", {"filter": only_bo})
    assert body["data"]["count"] == 1


async def test_session_names_aggregate_their_sessions(
    heliograph: Heliograph, trip: dict[str, str]
) -> None:
    await send(heliograph, **{"Helicone-Session-Id": "other", "Helicone-Session-Name": "planner"})
    last = await send(
        heliograph, **{"Helicone-Session-Id": "solo", "Helicone-Session-Name": "chat"}
    )
    await heliograph.wait_for(last)
    status, body = await heliograph.api_post("/v1/session/name/query", {})
    assert status == 200, body
    by_name = {row["name"]: row for row in body["data"]}
    assert set(by_name) == {"planner", "chat"}
    assert (by_name["planner"]["session_count"], by_name["planner"]["total_requests"]) == (2, 5)
    assert by_name["planner"]["first_used"] <= by_name["planner"]["last_used"]
    assert by_name["chat"]["total_cost"] == pytest.approx(8175 / 1e9)
    _, body = await heliograph.api_post("/v1/session/name/query", {"nameContains": "PLAN"})
    assert [row["name"] for row in body["data"]] == ["planner"]


async def test_session_metrics_are_histograms_per_session(
    heliograph: Heliograph, trip: dict[str, str]
) -> None:
    last = await send(heliograph, **{"Helicone-Session-Id": "short", "Helicone-Session-Name": "x"})
    await heliograph.wait_for(last)
    status, body = await heliograph.api_post("/v1/session/metrics/query", {"pSize": "p99"})
    assert status == 200, body
    charts = body["data"]
    # The histogram is trimmed at the 99th percentile (3.97 requests), as Helicone's is, so the
    # four-request session falls outside it; the averages count every session.
    assert sum(row["value"] for row in charts["session_count"]) == pytest.approx(1)
    assert charts["average"]["session_count"] == [{"average": 2.5}]
    assert charts["average"]["session_cost"][0]["average"] == pytest.approx(2.5 * 8175 / 1e9)
    assert float(charts["session_count"][-1]["range_end"]) <= 4
    _, body = await heliograph.api_post("/v1/session/metrics/query", {"nameContains": "planner"})
    assert body["data"]["average"]["session_count"] == [{"average": 4}]
    _, body = await heliograph.api_post("/v1/session/metrics/query", {"nameContains": "nobody"})
    assert body["data"]["session_count"] == []


async def test_session_tags_and_feedback(heliograph: Heliograph, trip: dict[str, str]) -> None:
    session = trip["session"]
    status, body = await heliograph.api_get(f"/v1/session/{session}/tag")
    assert (status, body["data"]) == (200, None)
    for tag in ("draft", "golden"):
        status, body = await heliograph.api_post(f"/v1/session/{session}/tag", {"tag": tag})
        assert status == 200, body
    _, body = await heliograph.api_get(f"/v1/session/{session}/tag")
    assert body["data"] == "golden"
    status, body = await heliograph.api_post(f"/v1/session/{session}/feedback", {"rating": False})
    assert status == 200, body
    _, body = await heliograph.api_get(f"/v1/session/{session}/tree")
    assert (body["data"]["tag"], body["data"]["feedback"]) == ("golden", False)
    query = "/v1/session/query"
    _, body = await heliograph.api_post(query, session_filter("session_tag", "equals", "golden"))
    assert [s["session_id"] for s in body["data"]] == [session]
    _, body = await heliograph.api_post(query, session_filter("session_tag", "equals", "draft"))
    assert body["data"] == []


async def test_session_tags_and_feedback_need_a_known_session(
    heliograph: Heliograph, trip: dict[str, str]
) -> None:
    session = trip["session"]
    status, body = await heliograph.api_post("/v1/session/nope/tag", {"tag": "x"})
    assert (status, "no session") == (404, body["error"][:10])
    status, _ = await heliograph.api_post(f"/v1/session/{session}/feedback", {"rating": "yes"})
    assert status == 400
    status, _ = await heliograph.api_post(f"/v1/session/{session}/tag", {"tag": "x" * 201})
    assert status == 400
    _, key = heliograph.new_organization("rival")
    status, _ = await heliograph.api_post(f"/v1/session/{session}/tag", {"tag": "x"}, key=key)
    assert status == 404
    status, _ = await heliograph.api_post(
        f"/v1/session/{session}/feedback", {"rating": True}, key=key
    )
    assert status == 404
    _, body = await heliograph.api_get(f"/v1/session/{session}/tag")
    assert body["data"] is None


async def test_user_query_totals(heliograph: Heliograph, trip: dict[str, str]) -> None:
    status, body = await heliograph.api_post("/v1/user/query", {})
    assert status == 200, body
    assert [(u["user_id"], u["count"]) for u in body["data"]] == [("ann", 3), ("bo", 1), ("cy", 1)]
    ann = body["data"][0]
    assert (ann["prompt_tokens"], ann["completion_tokens"]) == (3 * 16, 3 * 7)
    assert ann["cost"] == pytest.approx(3 * 8175 / 1e9)
    _, body = await heliograph.api_post("/v1/user/query", {"userIds": ["bo", "cy", "zed"]})
    assert [u["user_id"] for u in body["data"]] == ["bo", "cy"]
    _, key = heliograph.new_organization("rival")
    _, body = await heliograph.api_post("/v1/user/query", {}, key=key)
    assert body["data"] == []
