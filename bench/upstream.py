"""A lean fake provider for benchmarks: fixed answers, JSON or SSE, no bookkeeping, in OpenAI's
shape (`/v1/chat/completions`) and in Anthropic's (`/v1/messages`: the same text, in the same
number of writes, so the two compare).

Run as `python bench/upstream.py PORT [--pieces]`. With `--pieces` it answers as real providers do:
the JSON in a few chunks and every SSE event in its own write, with a small gap between writes, so
a request spans several event-loop turns of the proxy in front of it.
"""

from __future__ import annotations

import asyncio
import json
import sys

import uvloop
from aiohttp import web

USAGE = {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi there!"},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
).encode()


def chunk(content: str | None, usage: dict[str, int] | None = None) -> bytes:
    choices = [] if content is None else [{"index": 0, "delta": {"content": content}}]
    body: dict[str, object] = {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


STREAM = [chunk(word) for word in ("Hi", " there", "!", " How", " can", " I", " help?")]
USAGE_CHUNK = chunk(None, USAGE)
PIECE_GAP_S = 0.001
GAP_S = web.AppKey("gap_s", float)
JSON_PIECES = 3


# Anthropic's answers: the same text, usage and word pieces as the OpenAI ones above.
MESSAGE = json.dumps(
    {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Hi there!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 8},
    }
).encode()


def event(name: str, data: dict[str, object]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_stream() -> list[bytes]:
    """One write per word, as `STREAM`; the framing events ride with the first and the last word
    (as the usage chunk rides with OpenAI's last), so both streams take as many writes."""
    start: dict[str, object] = {
        "type": "message",
        "id": "msg_bench",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 1},
    }
    words = ("Hi", " there", "!", " How", " can", " I", " help?")
    writes = [
        event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
        )
        for w in words
    ]
    writes[0] = (
        event("message_start", {"type": "message_start", "message": start})
        + event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        + writes[0]
    )
    writes[-1] += event("content_block_stop", {"type": "content_block_stop", "index": 0}) + event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 8},
        },
    )
    writes.append(event("message_stop", {"type": "message_stop"}))  # where OpenAI's [DONE] goes
    return writes


ANTHROPIC_STREAM = anthropic_stream()


def pieces_of(data: bytes, count: int) -> list[bytes]:
    size = -(-len(data) // count)
    return [data[start : start + size] for start in range(0, len(data), size)]


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    gap_s = request.app[GAP_S]
    if b'"stream":true' not in body.replace(b" ", b""):
        if not gap_s:
            return web.Response(body=COMPLETION, content_type="application/json")
        return await write_pieces(request, "application/json", pieces_of(COMPLETION, JSON_PIECES))
    events = list(STREAM)
    if b"include_usage" in body:
        # Providers send the usage event right behind the last content event, not a gap later.
        events[-1] += USAGE_CHUNK
    events.append(b"data: [DONE]\n\n")
    return await write_pieces(request, "text/event-stream", events)


async def messages(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    if b'"stream":true' not in body.replace(b" ", b""):
        if not request.app[GAP_S]:
            return web.Response(body=MESSAGE, content_type="application/json")
        return await write_pieces(request, "application/json", pieces_of(MESSAGE, JSON_PIECES))
    return await write_pieces(request, "text/event-stream", ANTHROPIC_STREAM)


async def write_pieces(
    request: web.Request, content_type: str, pieces: list[bytes]
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": content_type})
    gap_s = request.app[GAP_S]
    try:
        await response.prepare(request)
        for number, piece in enumerate(pieces):
            if number and gap_s:
                await asyncio.sleep(gap_s)
            await response.write(piece)
        await response.write_eof()
    except ConnectionResetError:
        pass  # the load generator hung up at the end of a run
    return response


def main() -> None:
    app = web.Application()
    app[GAP_S] = PIECE_GAP_S if "--pieces" in sys.argv[2:] else 0.0
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/messages", messages)
    web.run_app(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
