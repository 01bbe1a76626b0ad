"""OpenAI's shapes: chat completions (plain, streamed with or without the usage chunk, flaky,
trickling), embeddings and moderations."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from fake_provider.shared import (
    SEEN,
    TEXT,
    error_response,
    json_response,
    remember,
    send_chunks,
    steer,
)

USAGE = {
    "prompt_tokens": 21,
    "completion_tokens": 9,
    "total_tokens": 30,
    "prompt_tokens_details": {"cached_tokens": 5, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 0},
}


async def chat(request: web.Request) -> web.StreamResponse:
    body = await remember(request)
    model = body.get("model", "gpt-4o-mini")
    if model == "slow-stream":
        return await slow_stream(request)
    if model.startswith("flaky-"):  # fails N times per conversation, then answers
        attempts = request.app[SEEN].attempts
        key = json.dumps(body.get("messages"))
        attempts[key] = attempts.get(key, 0) + 1
        if attempts[key] <= int(model.split("-")[1]):
            return error_response(request, 429 if model.endswith("-429") else 500)
        model = "gpt-4o-mini"
    steered = await steer(request, model)
    if steered is not None:
        return steered
    if not body.get("stream"):
        return json_response(request, _completion(model))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    data = b"".join(
        b"data: " + json.dumps(e, ensure_ascii=False).encode() + b"\n\n"
        for e in _chunks(model, include_usage)
    )
    return await send_chunks(request, data + b"data: [DONE]\n\n", "text/event-stream")


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": f"{model}-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": TEXT},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }


def _chunks(model: str, include_usage: bool) -> list[dict[str, Any]]:
    """One chunk per word; with `include_usage`, each says `usage: null` and a last one has it."""
    events: list[dict[str, Any]] = []
    words = TEXT.split(" ")
    for i, word in enumerate(words):
        delta = {"content": word + ("" if i == len(words) - 1 else " ")}
        chunk: dict[str, Any] = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": f"{model}-2024-07-18",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        if include_usage:
            chunk["usage"] = None
        events.append(chunk)
    if include_usage:
        events.append(
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": f"{model}-2024-07-18",
                "choices": [],
                "usage": USAGE,
            }
        )
    return events


async def slow_stream(request: web.Request) -> web.StreamResponse:
    """One chunk every 50 ms for 10 s; counts the times the caller hung up on it."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    try:
        for _ in range(200):
            await response.write(b'data: {"choices":[{"index":0,"delta":{"content":"."}}]}\n\n')
            await asyncio.sleep(0.05)
    except (ConnectionResetError, asyncio.CancelledError):
        request.app[SEEN].cancelled += 1
        raise
    return response


async def embeddings(request: web.Request) -> web.StreamResponse:
    body = await remember(request)
    return json_response(
        request,
        {
            "object": "list",
            "model": body.get("model"),
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
            "usage": {"prompt_tokens": 4, "total_tokens": 4},
        },
    )


async def moderations(request: web.Request) -> web.StreamResponse:
    """Flags any input containing `forbidden`; `moderation-down` makes it answer 503."""
    body = await remember(request)
    text = str(body.get("input", ""))
    if "moderation-down" in text:
        return json_response(request, {"error": {"message": "unavailable"}}, status=503)
    flagged = "forbidden" in text
    result = {"flagged": flagged, "categories": {"violence": flagged, "hate": False}}
    return json_response(request, {"id": "modr-1", "model": "omni-moderation", "results": [result]})
