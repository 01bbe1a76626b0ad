"""Anthropic's messages: plain, or streamed with `event:` lines and a ping."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from fake_provider.shared import TEXT, json_response, remember, send_chunks, steer

USAGE = {
    "input_tokens": 12,
    "output_tokens": 7,
    "cache_read_input_tokens": 3,
    "cache_creation_input_tokens": 2,
}


async def messages(request: web.Request) -> web.StreamResponse:
    body = await remember(request)
    model = body.get("model", "claude-sonnet-4-5")
    steered = await steer(request, model)
    if steered is not None:
        return steered
    if not body.get("stream"):
        return json_response(request, _message(model, [_text(TEXT)]))
    data = b"".join(
        f"event: {name}\ndata: {json.dumps(e, ensure_ascii=False)}\n\n".encode()
        for name, e in _events(model)
    )
    return await send_chunks(request, data, "text/event-stream")


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _message(model: str, content: list[Any]) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": USAGE,
    }


def _events(model: str) -> list[tuple[str, dict[str, Any]]]:
    start = {**_message(model, []), "stop_reason": None, "usage": {**USAGE, "output_tokens": 1}}
    delta = {"type": "text_delta", "text": TEXT}
    return [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": _text("")},
        ),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 7},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
