"""How the gateway port treats slow, oversized and malformed clients: the deadline for a request
head, the header limits, one log line (no traceback) for each malformed request, and reading a
body that may stall."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import MutableMapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.log import server_logger


class MalformedRequestLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger, except that a request it could not parse is one warning line;
    every other error keeps its traceback."""

    def exception(self, msg: Any, *args: object, **kwargs: Any) -> None:
        error = kwargs.get("exc_info")
        if isinstance(error, HttpProcessingError):
            reason = " ".join(str(error.message).split())[:200]  # one line, bounded
            self.warning("malformed request (%d): %s; %s", error.code, reason, msg % args)
            return
        super().exception(msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs


def connection_options(
    header_timeout_s: float, max_headers: int, max_header_bytes: int
) -> dict[str, Any]:
    """Keyword arguments for `web.AppRunner`.

    aiohttp arms its keep-alive timer when a connection opens and after each response, and closes
    the connection when it fires while no whole request head has arrived. So `keepalive_timeout`
    is the head deadline (a client trickling a header is cut at it, whatever it sends) and the
    idle keep-alive time at once, with no work per request."""
    return {
        "keepalive_timeout": header_timeout_s,
        "max_headers": max_headers,
        "max_field_size": max_header_bytes,
        "max_line_size": max_header_bytes,
        "logger": MalformedRequestLog(server_logger),
    }


class Incomplete(enum.Enum):
    """Why a request body did not arrive whole."""

    STALLED = "the request body stopped arriving"
    GONE = "client disconnected before sending the whole body"


async def read_body(request: web.Request, idle_s: float) -> bytes | Incomplete:
    """The whole request body (413 above the app's limit), or why not: no byte of it for `idle_s`
    (noticed between `idle_s` and twice that), or the client went away."""
    content = request.content
    try:
        if content.is_eof():  # the usual case: the body came with the head, no timer needed
            return await request.read()
        reading = asyncio.ensure_future(request.read())
        received = -1
        while not reading.done():
            if content.total_bytes == received:
                reading.cancel()
                return Incomplete.STALLED
            received = content.total_bytes
            await asyncio.wait((reading,), timeout=idle_s)
        return reading.result()
    except ConnectionResetError:
        return Incomplete.GONE
