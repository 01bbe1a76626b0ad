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
    TOOL_ARGUMENTS,
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
    # Azure names the model by its deployment in the path.
    model = request.match_info.get("deployment") or body.get("model", "gpt-4o-mini")
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
    tool = _tool_to_call(body)
    if not body.get("stream"):
        return json_response(request, _completion(model, tool))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    chunks = _tool_chunks(model, tool) if tool else _chunks(model, include_usage)
    data = b"".join(
        b"data: " + json.dumps(e, ensure_ascii=False).encode() + b"\n\n" for e in chunks
    )
    return await send_chunks(request, data + b"data: [DONE]\n\n", "text/event-stream")


def _dated(model: str) -> str:
    """The snapshot OpenAI answers with; other servers (Ollama, vLLM) echo the name asked."""
    return f"{model}-2024-07-18" if model.startswith("gpt-") else model


def _tool_to_call(body: dict[str, Any]) -> str | None:
    """The first tool's name, when tools are offered and no tool result has come back yet."""
    tools = body.get("tools") or []
    messages = body.get("messages") or [{}]
    if not tools or messages[-1].get("role") == "tool":
        return None
    return str(tools[0]["function"]["name"])


def _tool_call(name: str) -> dict[str, Any]:
    arguments = json.dumps(TOOL_ARGUMENTS, ensure_ascii=False)
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}


def _completion(model: str, tool: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": TEXT}
    if tool:
        message = {"role": "assistant", "content": None, "tool_calls": [_tool_call(tool)]}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": _dated(model),
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if tool else "stop"}
        ],
        "usage": USAGE,
    }


def _tool_chunks(model: str, tool: str) -> list[dict[str, Any]]:
    """The call's name first, then its arguments in pieces, as OpenAI streams them."""
    arguments = json.dumps(TOOL_ARGUMENTS, ensure_ascii=False)
    head = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model}
    first = {"index": 0, "id": "call_1", "type": "function"}
    deltas: list[dict[str, Any]] = [{**first, "function": {"name": tool, "arguments": ""}}]
    for start in range(0, len(arguments), 7):
        deltas.append({"index": 0, "function": {"arguments": arguments[start : start + 7]}})
    chunks = [
        {**head, "choices": [{"index": 0, "delta": {"tool_calls": [d]}, "finish_reason": None}]}
        for d in deltas
    ]
    last = {"index": 0, "delta": {}, "finish_reason": "tool_calls"}
    return [*chunks, {**head, "choices": [last], "usage": USAGE}]


def _chunks(model: str, include_usage: bool) -> list[dict[str, Any]]:
    """One chunk per word; with `include_usage`, each says `usage: null` and a last one has it."""
    events: list[dict[str, Any]] = []
    words = TEXT.split(" ")
    for i, word in enumerate(words):
        last = i == len(words) - 1
        delta = {"content": word + ("" if last else " ")}
        chunk: dict[str, Any] = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": _dated(model),
            "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if last else None}],
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
                "model": _dated(model),
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
