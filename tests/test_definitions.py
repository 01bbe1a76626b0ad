"""One definition of total tokens and of session duration, whichever endpoint reports them:
total tokens = prompt + cache read + cache write + completion + reasoning; a session lasts from
its first request's start to its last response's end."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import Heliograph

HOUR_MS = 3_600_000
START_MS = int(datetime(2026, 1, 5, 10, 0, tzinfo=UTC).timestamp() * 1000)
# An Anthropic request with cache reads and writes, then an OpenAI one with reasoning, 600 ms on.
ANTHROPIC = {"promptTokens": 10, "promptCacheReadTokens": 12, "promptCacheWriteTokens": 4}
OPENAI = {"promptTokens": 20, "reasoningTokens": 6}
TOTAL_TOKENS = 10 + 12 + 4 + 5 + 20 + 15 + 6
DURATION_MS = 600 + 34


def message(session: str, offset_ms: int, provider: str, usage: dict[str, int]) -> dict[str, Any]:
    created = START_MS + 100 + offset_ms
    return {
        "log": {
            "request": {
                "id": str(uuid.uuid4()),
                "userId": "dana",
                "requestCreatedAt": created,
                "provider": provider,
                "properties": {"Helicone-Session-Id": session, "Helicone-Session-Path": "/a"},
            },
            "response": {
                "status": 200,
                "delayMs": 34,
                "responseCreatedAt": created + 34,
                "completionTokens": 5 if provider == "ANTHROPIC" else 15,
                **usage,
            },
        }
    }


@pytest.fixture
async def session(heliograph: Heliograph) -> tuple[str, str]:
    """A fresh organization with one two-request session; returns (session id, API key)."""
    _, key = heliograph.new_organization("definitions")
    session_id = f"s-{uuid.uuid4()}"
    for offset, provider, usage in ((0, "ANTHROPIC", ANTHROPIC), (600, "OPENAI", OPENAI)):
        status, body = await heliograph.api_post(
            "/v1/log/request", message(session_id, offset, provider, usage), key
        )
        assert status == 202, body
    deadline = time.monotonic() + 3
    while True:
        status, body = await heliograph.api_post("/v1/request/count/query", {"filter": "all"}, key)
        if body["data"] == 2 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert body["data"] == 2
    return session_id, key


async def test_every_endpoint_agrees_on_total_tokens_and_duration(
    heliograph: Heliograph, session: tuple[str, str]
) -> None:
    session_id, key = session
    _, listed = await heliograph.api_post("/v1/session/query", {}, key)
    (found,) = listed["data"]
    assert (found["total_tokens"], found["duration_ms"]) == (TOTAL_TOKENS, DURATION_MS)
    assert found["prompt_cache_read_tokens"] == 12

    _, tree = await heliograph.api_get(f"/v1/session/{session_id}/tree", key)
    assert (tree["data"]["total_tokens"], tree["data"]["duration_ms"]) == (
        TOTAL_TOKENS,
        DURATION_MS,
    )

    _, charts = await heliograph.api_post("/v1/session/metrics/query", {}, key)
    average = charts["data"]["average"]["session_duration"][0]["average"]
    assert average == pytest.approx(DURATION_MS / 1000)

    _, users = await heliograph.api_post("/v1/user/metrics/query", {}, key)
    (user,) = users["data"]["users"]
    assert user["total_tokens"] == TOTAL_TOKENS
    assert user["average_tokens_per_request"] == TOTAL_TOKENS / 2

    _, totals = await heliograph.api_post("/v1/user/query", {}, key)
    assert totals["data"][0]["total_tokens"] == TOTAL_TOKENS


@pytest.mark.parametrize("whole_hours", [True, False])
async def test_metrics_count_every_token(
    heliograph: Heliograph, session: tuple[str, str], whole_hours: bool
) -> None:
    """From the hourly rollup (whole hours) and from the requests (a partial hour) alike."""
    _, key = session
    start = START_MS if whole_hours else START_MS + 50
    window = {
        "start": datetime.fromtimestamp(start / 1000, UTC).isoformat(),
        "end": datetime.fromtimestamp((START_MS + HOUR_MS) / 1000, UTC).isoformat(),
    }
    _, totals = await heliograph.api_post("/v1/metrics/totals", {"timeFilter": window}, key)
    assert totals["data"]["total_tokens"] == TOTAL_TOKENS
    assert totals["data"]["prompt_cache_read_tokens"] == 12
    _, models = await heliograph.api_post("/v1/metrics/models", {"timeFilter": window}, key)
    assert sum(model["total_tokens"] for model in models["data"]) == TOTAL_TOKENS
