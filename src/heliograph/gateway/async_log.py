"""Helicone's async-log routes on the gateway port (`/oai/v1/log`, `/anthropic/v1/log`,
`/googleapis/v1/log`, `/custom/v1/log`): passed on to the API, which owns them, and never
upstream to a provider."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import aiohttp
import orjson
from aiohttp import web

from heliograph.domain.text import clean_mapping
from heliograph.gateway.connections import Incomplete, read_body

log = logging.getLogger("heliograph.gateway")

ASYNC_LOG_PATHS = ("/oai/v1/log", "/anthropic/v1/log", "/googleapis/v1/log", "/custom/v1/log")
MAX_LOG_BODY_BYTES = 8 * 1024 * 1024  # the API's own limit for these routes


def async_log_handler(
    api_url: str, session: aiohttp.ClientSession, body_timeout_s: float
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def async_log(request: web.Request) -> web.Response:
        raw = await _read(request, body_timeout_s)
        if isinstance(raw, web.Response):
            return raw
        try:
            async with session.post(
                api_url + request.path, data=raw, headers=_passed_on(request)
            ) as response:
                body = await response.read()
                headers = {"Helicone-Id": response.headers.get("Helicone-Id", "")}
                return web.Response(
                    body=body,
                    status=response.status,
                    content_type="application/json",
                    headers=headers if headers["Helicone-Id"] else None,
                )
        except aiohttp.ClientError as error:
            log.warning("async log: the API could not be reached: %s", error)
            return _error(502, "the API could not be reached")

    return async_log


async def _read(request: web.Request, body_timeout_s: float) -> bytes | web.Response:
    """The body, or the answer refusing it: too large (said up front, past the app's limit, or
    past this route's), or incomplete."""
    raw: bytes | Incomplete | None = None  # None: too large, whichever check said so
    length = request.content_length
    if length is None or length <= MAX_LOG_BODY_BYTES:
        with contextlib.suppress(web.HTTPRequestEntityTooLarge):
            raw = await read_body(request, body_timeout_s)
    if isinstance(raw, Incomplete):
        return _error(408, raw.value)
    if raw is None or len(raw) > MAX_LOG_BODY_BYTES:
        return _error(413, f"request body larger than {MAX_LOG_BODY_BYTES} bytes")
    return raw


def _passed_on(request: web.Request) -> dict[str, str]:
    """The key (`Authorization`, else `Helicone-Auth`), the content type and the `Helicone-*`
    options the API reads; nothing else."""
    headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
    key = request.headers.get("Authorization") or request.headers.get("Helicone-Auth")
    if key:
        headers["Authorization"] = key
    for name, value in request.headers.items():
        lower = name.lower()
        if lower.startswith("helicone-") and lower != "helicone-auth":
            headers[name] = value
    # A byte that was not UTF-8 arrives as a lone surrogate, which no client can send on.
    return clean_mapping(headers)


def _error(status: int, message: str) -> web.Response:
    body = orjson.dumps({"data": None, "error": message})
    return web.Response(body=body, status=status, content_type="application/json")
