"""Anthropic's messages: plain, or streamed with `event:` lines and a ping."""

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
    slow_events,
    steer,
)

USAGE = {
    "input_tokens": 12,
    "output_tokens": 7,
    "cache_read_input_tokens": 3,
    "cache_creation_input_tokens": 2,
}

ERRORS = {"anthropic-429": (429, "rate_limit_error"), "anthropic-529": (529, "overloaded_error")}


async def messages(request: web.Request) -> web.StreamResponse:
    body = await remember(request)
    model = body.get("model", "claude-sonnet-4-5")
    if model in ERRORS:  # Anthropic's own error shape
        status, kind = ERRORS[model]
        error = {"type": "error", "error": {"type": kind, "message": f"fake {kind}"}}
        return json_response(request, error, status=status)
    misbehaving = await _misbehave(request, model)
    if misbehaving is not None:
        return misbehaving
    steered = await steer(request, model)
    if steered is not None:
        return steered
    tool = _tool_to_call(body)
    if not body.get("stream"):
        if tool:
            return json_response(request, _tool_message(model, tool))
        return json_response(request, _message(model, [_text(TEXT)]))
    events = _tool_events(model, tool) if tool else _events(model)
    data = b"".join(
        f"event: {name}\ndata: {json.dumps(e, ensure_ascii=False)}\n\n".encode()
        for name, e in events
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


def _tool_to_call(body: dict[str, Any]) -> str | None:
    """The first tool's name, when tools are offered and no tool result has come back yet."""
    tools = body.get("tools") or []
    content = (body.get("messages") or [{}])[-1].get("content")
    answered = isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )
    return None if not tools or answered else str(tools[0]["name"])


def _tool_message(model: str, tool: str) -> dict[str, Any]:
    use = {"type": "tool_use", "id": "toolu_1", "name": tool, "input": TOOL_ARGUMENTS}
    return {**_message(model, [use]), "stop_reason": "tool_use"}


def _tool_events(model: str, tool: str) -> list[tuple[str, dict[str, Any]]]:
    """A tool call streamed as Anthropic does: the block, then its input as JSON pieces."""
    start = {**_message(model, []), "stop_reason": None, "usage": {**USAGE, "output_tokens": 1}}
    block = {"type": "tool_use", "id": "toolu_1", "name": tool, "input": {}}
    partial = json.dumps(TOOL_ARGUMENTS, ensure_ascii=False)
    pieces = [partial[i : i + 6] for i in range(0, len(partial), 6)]
    return [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        ),
        *[
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": piece},
                },
            )
            for piece in pieces
        ],
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 7},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def _sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(
        f"event: {name}\ndata: {json.dumps(e, ensure_ascii=False)}\n\n".encode()
        for name, e in events
    )


GARBAGE_EVENTS = (
    b"event: message_start\ndata: {not json\n\n"
    b"event: content_block_delta\ndata: [1, 2]\n\n"
    b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": "x",'
    b' "delta": 5}\n\n'
    b'event: message_delta\ndata: {"type": "message_delta", "delta": [], "usage": "x"}\n\n'
    b'event: content_block_start\ndata: {"type": "content_block_start", "index": null,'
    b' "content_block": {"type": "tool_use", "name": 5}}\n\n'
    b'data: {"type": "message_start", "message": {"usage": 7}}\n\n'
    b"\xff\xfe binary \x00\n\n"
)


async def _misbehave(request: web.Request, model: str) -> web.StreamResponse | None:
    """Streams that break (`broken-stream`), carry garbage (`garbage-stream`) or trickle
    (`slow-stream`, counting the callers that hang up on it)."""
    events = _events(model)
    if model == "broken-stream":  # the start and some text, then the connection drops
        return await send_then_break(request, _sse(events[:4]))
    if model == "garbage-stream":
        return await send_chunks(request, GARBAGE_EVENTS + _sse(events), "text/event-stream")
    if model == "slow-stream":
        delta = {"type": "text_delta", "text": "."}
        event = ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        return await slow_events(request, _sse(events[:2]), _sse([event]))
    return None
