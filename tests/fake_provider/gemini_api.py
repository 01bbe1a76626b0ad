"""Gemini's generateContent and streamGenerateContent, the stream framed with CRLF."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from fake_provider.shared import (
    TEXT,
    TOOL_ARGUMENTS,
    json_response,
    remember,
    send_chunks,
    send_then_break,
    steer,
)

USAGE = {"promptTokenCount": 8, "candidatesTokenCount": 6, "totalTokenCount": 14}


async def generate(request: web.Request) -> web.StreamResponse:
    body = await remember(request)
    model, _, method = request.match_info["model_method"].partition(":")
    if model == "broken-stream":  # the first piece, then the connection drops
        first = _chunk(model, "Hello, ", last=False)
        return await send_then_break(request, b"data: " + json.dumps(first).encode() + b"\r\n\r\n")
    if model == "garbage-stream":
        return await send_chunks(request, GARBAGE_EVENTS, "text/event-stream")
    steered = await steer(request, model)
    if steered is not None:
        return steered
    if method == "batchEmbedContents":
        embeddings = [{"values": [0.1, 0.2, 0.3]} for _ in body.get("requests", [])]
        return json_response(request, {"embeddings": embeddings})
    tool = _tool_to_call(body)
    if method == "generateContent":
        return json_response(request, _call(model, tool) if tool else _chunk(model, TEXT, True))
    parts = [_chunk(model, "Hello, ", last=False), _chunk(model, "wörld! 👋 Ünïcödé", last=True)]
    if tool:
        parts = [_call(model, tool)]
    data = b"".join(
        b"data: " + json.dumps(p, ensure_ascii=False).encode() + b"\r\n\r\n" for p in parts
    )
    return await send_chunks(request, data, "text/event-stream")


def _chunk(model: str, text: str, last: bool) -> dict[str, Any]:
    """A piece of the answer; the last one carries the finish reason and the usage."""
    item: dict[str, Any] = {
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}],
        "modelVersion": model,
    }
    if last:
        item["candidates"][0]["finishReason"] = "STOP"
        item["usageMetadata"] = USAGE
    return item


def _tool_to_call(body: dict[str, Any]) -> str | None:
    """The first function's name, when functions are offered and none has answered yet."""
    declarations = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations", [])]
    parts = (body.get("contents") or [{}])[-1].get("parts") or []
    answered = any("functionResponse" in part for part in parts)
    return None if not declarations or answered else str(declarations[0]["name"])


def _call(model: str, tool: str) -> dict[str, Any]:
    call = {"functionCall": {"name": tool, "args": TOOL_ARGUMENTS}}
    item = _chunk(model, "", last=True)
    item["candidates"][0]["content"]["parts"] = [call]
    return item


GARBAGE_EVENTS = (
    b"data: {not json\r\n\r\n"
    b"data: [1, 2]\r\n\r\n"
    b'data: {"candidates": "x", "usageMetadata": 5}\r\n\r\n'
    b'data: {"candidates": [null, 3, {"content": {"parts": [7, {"text": 5}]}, "index": "a",'
    b' "finishReason": []}]}\r\n\r\n'
    b'data: {"candidates": [{"content": {"parts": [{"functionCall": {"name": 3, "args": 4}}]},'
    b' "index": 0}], "usageMetadata": {"promptTokenCount": "many"}}\r\n\r\n'
    b"\xff\xfe binary \x00\r\n\r\n"
)
