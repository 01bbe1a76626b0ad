"""What every provider shape shares: the text it answers, what it has seen, answers split as
awkwardly as real networks split them, and steering by model name."""

from __future__ import annotations

import asyncio
import gzip
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TEXT = "Hello, wörld! 👋 Ünïcödé"
# What every fake calls its first tool with, until it sees the tool's result.
TOOL_ARGUMENTS = {"city": "Paris", "unit": "°C"}


@dataclass
class Seen:
    requests: list[dict[str, Any]] = field(default_factory=list)
    cancelled: int = 0
    attempts: dict[str, int] = field(default_factory=dict)


SEEN = web.AppKey("seen", Seen)


async def remember(request: web.Request) -> dict[str, Any]:
    """The request's JSON body, after noting the request in the app's `Seen`."""
    raw = await request.read()
    body: dict[str, Any] = json.loads(raw) if raw else {}
    request.app[SEEN].requests.append(
        {
            "path": request.raw_path,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": body,
        }
    )
    return body


def split_awkwardly(data: bytes) -> list[bytes]:
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


async def send_chunks(request: web.Request, data: bytes, content_type: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    for piece in split_awkwardly(data):
        await response.write(piece)
        await asyncio.sleep(0)
    await response.write_eof()
    return response


def json_response(
    request: web.Request, payload: Any, status: int = 200, **headers: str
) -> web.Response:
    """JSON, gzipped when the caller accepts it."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    all_headers = {"Content-Type": "application/json", **headers}
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        body = gzip.compress(body)
        all_headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, status=status, headers=all_headers)


def error_response(request: web.Request, status: int) -> web.Response:
    """The provider refusing: 429 with Retry-After, or a 500."""
    if status == 429:
        error = {"error": {"message": "Rate limit", "type": "rate_limit"}}
        return json_response(request, error, status=429, **{"Retry-After": "1"})
    return json_response(request, {"error": {"message": "boom", "type": "server_error"}}, 500)


async def steer(request: web.Request, model: str) -> web.StreamResponse | None:
    """An error when the model asks for one, after any delay it asks for; None to answer."""
    if model == "error-429":
        return error_response(request, 429)
    if model == "error-500":
        return error_response(request, 500)
    if model.startswith("slow-"):
        await asyncio.sleep(int(model[5:]) / 1000)
    if model == "hang":
        await asyncio.sleep(3600)
    return _misbehave(request, model)


# A provider answering 200 with what no API documents, or failing with a proxy's HTML page.
WRONG_SHAPE = {
    "id": 7,
    "content": "not a list",
    "usage": "lots",
    "candidates": [{"content": {"parts": "not a list"}}],
    "usageMetadata": [],
    "choices": 3,
    "embeddings": [{"values": ["x", None]}],
}
HTML_ERROR = b"<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"


def _misbehave(request: web.Request, model: str) -> web.Response | None:
    if model == "garbage-200":
        return web.Response(body=b"<html>definitely not JSON", content_type="text/html")
    if model == "wrong-shape-200":
        return json_response(request, WRONG_SHAPE)
    if model == "html-error":
        return web.Response(body=HTML_ERROR, status=502, content_type="text/html")
    return None


async def send_then_break(request: web.Request, data: bytes) -> web.StreamResponse:
    """A stream that sends `data`, then drops the connection without ending the body."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(data)
    await asyncio.sleep(0.05)
    assert request.transport is not None
    request.transport.abort()
    return response


async def slow_events(request: web.Request, first: bytes, event: bytes) -> web.StreamResponse:
    """`first`, then `event` every 50 ms for 10 s; counts the times the caller hung up on it."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    try:
        await response.write(first)
        for _ in range(200):
            await response.write(event)
            await asyncio.sleep(0.05)
    except (ConnectionResetError, asyncio.CancelledError):
        request.app[SEEN].cancelled += 1
        raise
    return response
