"""Sessions (list, count, tree) and users, over requests sent through the gateway."""

from __future__ import annotations

import time
import uuid

import aiohttp
import pytest

from conftest import Heliograph

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def send(hg: Heliograph, **headers: str) -> str:
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
    assert found["total_tokens"] == 4 * 23
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
    assert ann["average_tokens_per_request"] == 23
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
    ],
)
async def test_bad_aggregate_queries_are_400(
    heliograph: Heliograph, path: str, body: dict, message: str
) -> None:
    status, response = await heliograph.api_post(path, body)
    assert status == 400, response
    assert message in response["error"]
