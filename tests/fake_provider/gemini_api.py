"""Gemini's generateContent and streamGenerateContent, the stream framed with CRLF."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from fake_provider.shared import TEXT, json_response, remember, send_chunks, steer

USAGE = {"promptTokenCount": 8, "candidatesTokenCount": 6, "totalTokenCount": 14}


async def generate(request: web.Request) -> web.StreamResponse:
    await remember(request)
    model, _, method = request.match_info["model_method"].partition(":")
    steered = await steer(request, model)
    if steered is not None:
        return steered
    if method == "generateContent":
        return json_response(request, _chunk(model, TEXT, last=True))
    parts = [_chunk(model, "Hello, ", last=False), _chunk(model, "wörld! 👋 Ünïcödé", last=True)]
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
