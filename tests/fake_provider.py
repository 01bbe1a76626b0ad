"""A fake LLM provider with real quirks: OpenAI, Anthropic and Gemini shapes, SSE split mid-line
and mid-UTF-8, Anthropic `event:` lines and pings, Gemini CRLF framing, gzip bodies, 429/5xx with
Retry-After. Also used by `bench/gateway.py`.

Models steer it: `error-429`, `error-500` answer with that error; `slow-<ms>` waits first;
`hang` never answers.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TEXT = "Hello, wörld! 👋 Ünïcödé"
USAGE = {
    "prompt_tokens": 21,
    "completion_tokens": 9,
    "total_tokens": 30,
    "prompt_tokens_details": {"cached_tokens": 5, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 0},
}


@dataclass
class Seen:
    requests: list[dict[str, Any]] = field(default_factory=list)
    cancelled: int = 0
    attempts: dict[str, int] = field(default_factory=dict)


def _split_awkwardly(data: bytes) -> list[bytes]:
    """Cut inside lines and inside multi-byte UTF-8 characters, as real networks do."""
    pieces, start = [], 0
    for size in (7, 13, 3, 29, 5, 17):
        if start >= len(data):
            break
        pieces.append(data[start : start + size])
        start += size
    step = 31
    while start < len(data):
        pieces.append(data[start : start + step])
        start += step
    return pieces


async def _send_chunks(request: web.Request, data: bytes, content_type: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    for piece in _split_awkwardly(data):
        await response.write(piece)
        await asyncio.sleep(0)
    await response.write_eof()
    return response


def _json(request: web.Request, payload: Any, status: int = 200, **headers: str) -> web.Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    all_headers = {"Content-Type": "application/json", **headers}
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        body = gzip.compress(body)
        all_headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, status=status, headers=all_headers)


async def _steer(request: web.Request, model: str) -> web.StreamResponse | None:
    if model == "error-429":
        return _json(
            request,
            {"error": {"message": "Rate limit", "type": "rate_limit"}},
            status=429,
            **{"Retry-After": "1"},
        )
    if model == "error-500":
        return _json(request, {"error": {"message": "boom", "type": "server_error"}}, status=500)
    if model.startswith("slow-"):
        await asyncio.sleep(int(model[5:]) / 1000)
    if model == "hang":
        await asyncio.sleep(3600)
    return None


def build_app(seen: Seen | None = None) -> web.Application:
    seen = seen or Seen()
    app = web.Application(handler_args={})

    async def remember(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        body = json.loads(raw) if raw else {}
        seen.requests.append(
            {
                "path": request.raw_path,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body,
            }
        )
        return body

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await remember(request)
        model = body.get("model", "gpt-4o-mini")
        if model == "slow-stream":
            return await slow_stream(request)
        if model.startswith("flaky-"):  # fails N times per conversation, then answers
            key = json.dumps(body.get("messages"))
            seen.attempts[key] = seen.attempts.get(key, 0) + 1
            if seen.attempts[key] <= int(model.split("-")[1]):
                failure = "error-429" if model.endswith("-429") else "error-500"
                return await _steer(request, failure)  # type: ignore[return-value]
            model = "gpt-4o-mini"
        steered = await _steer(request, model)
        if steered is not None:
            return steered
        if not body.get("stream"):
            return _json(
                request,
                {
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
                },
            )
        events = []
        for i, word in enumerate(TEXT.split(" ")):
            delta = {"content": word + ("" if i == len(TEXT.split(" ")) - 1 else " ")}
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": f"{model}-2024-07-18",
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }
            if (body.get("stream_options") or {}).get("include_usage"):
                chunk["usage"] = None
            events.append(chunk)
        if (body.get("stream_options") or {}).get("include_usage"):
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
        data = b"".join(
            b"data: " + json.dumps(e, ensure_ascii=False).encode() + b"\n\n" for e in events
        )
        return await _send_chunks(request, data + b"data: [DONE]\n\n", "text/event-stream")

    async def slow_stream(request: web.Request) -> web.StreamResponse:
        """One chunk every 50 ms for 10 s; counts the times the caller hung up on it."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for _ in range(200):
                await response.write(b'data: {"choices":[{"index":0,"delta":{"content":"."}}]}\n\n')
                await asyncio.sleep(0.05)
        except (ConnectionResetError, asyncio.CancelledError):
            seen.cancelled += 1
            raise
        return response

    async def embeddings(request: web.Request) -> web.StreamResponse:
        body = await remember(request)
        return _json(
            request,
            {
                "object": "list",
                "model": body.get("model"),
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                "usage": {"prompt_tokens": 4, "total_tokens": 4},
            },
        )

    async def messages(request: web.Request) -> web.StreamResponse:
        body = await remember(request)
        model = body.get("model", "claude-sonnet-4-5")
        steered = await _steer(request, model)
        if steered is not None:
            return steered
        usage = {
            "input_tokens": 12,
            "output_tokens": 7,
            "cache_read_input_tokens": 3,
            "cache_creation_input_tokens": 2,
        }
        if not body.get("stream"):
            return _json(
                request,
                {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": TEXT}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": usage,
                },
            )
        start_usage = {**usage, "output_tokens": 1}
        events = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_1",
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            ),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            ("ping", {"type": "ping"}),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": TEXT},
                },
            ),
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
        data = b"".join(
            f"event: {name}\ndata: {json.dumps(e, ensure_ascii=False)}\n\n".encode()
            for name, e in events
        )
        return await _send_chunks(request, data, "text/event-stream")

    async def gemini(request: web.Request) -> web.StreamResponse:
        await remember(request)
        model, _, method = request.match_info["model_method"].partition(":")
        steered = await _steer(request, model)
        if steered is not None:
            return steered
        usage = {"promptTokenCount": 8, "candidatesTokenCount": 6, "totalTokenCount": 14}

        def chunk(text: str, with_usage: bool) -> dict[str, Any]:
            item: dict[str, Any] = {
                "candidates": [
                    {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
                ],
                "modelVersion": model,
            }
            if with_usage:
                item["candidates"][0]["finishReason"] = "STOP"
                item["usageMetadata"] = usage
            return item

        if method == "generateContent":
            return _json(request, chunk(TEXT, True))
        parts = [chunk("Hello, ", False), chunk("wörld! 👋 Ünïcödé", True)]
        data = b"".join(
            b"data: " + json.dumps(p, ensure_ascii=False).encode() + b"\r\n\r\n" for p in parts
        )
        return await _send_chunks(request, data, "text/event-stream")

    app.router.add_post("/v1/chat/completions", chat)

    async def moderations(request: web.Request) -> web.StreamResponse:
        body = await remember(request)
        text = str(body.get("input", ""))
        if "moderation-down" in text:
            return _json(request, {"error": {"message": "unavailable"}}, status=503)
        flagged = "forbidden" in text
        result = {"flagged": flagged, "categories": {"violence": flagged, "hate": False}}
        return _json(request, {"id": "modr-1", "model": "omni-moderation", "results": [result]})

    app.router.add_post("/v1/moderations", moderations)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/{version:v1beta|v1}/models/{model_method}", gemini)
    return app


async def start_fake(port: int = 0) -> tuple[web.AppRunner, int, Seen]:
    seen = Seen()
    runner = web.AppRunner(build_app(seen), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    sock = site._server.sockets[0]  # type: ignore[union-attr]
    return runner, sock.getsockname()[1], seen
