"""`POST /v1/feedback` on the gateway port (Helicone's shape: `{"helicone-id", "rating"}` with
`Helicone-Auth`), passed on to the API, which owns feedback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp
import orjson
from aiohttp import web

from heliograph.gateway.connections import Incomplete, read_body
from heliograph.gateway.headers import valid_uuid

log = logging.getLogger("heliograph.gateway")


def feedback_handler(
    api_url: str, session: aiohttp.ClientSession, body_timeout_s: float
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def feedback(request: web.Request) -> web.Response:
        raw = await read_body(request, body_timeout_s)
        if isinstance(raw, Incomplete):
            return _error(408, raw.value)
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _error(400, 'the body must be JSON: {"helicone-id": ..., "rating": true}')
        request_id = document.get("helicone-id") if isinstance(document, dict) else None
        rating = document.get("rating") if isinstance(document, dict) else None
        if not isinstance(request_id, str) or not isinstance(rating, bool):
            return _error(400, 'expected {"helicone-id": "<request id>", "rating": true|false}')
        request_id = valid_uuid(request_id)  # it becomes part of an API URL: a UUID, nothing else
        if request_id is None:
            return _error(400, '"helicone-id" must be a request id (a UUID)')
        headers = {"Authorization": request.headers.get("Helicone-Auth", "")}
        url = f"{api_url}/v1/request/{request_id}/feedback"
        try:
            async with session.post(url, json={"rating": rating}, headers=headers) as response:
                body = await response.read()
                return web.Response(
                    body=body, status=response.status, content_type="application/json"
                )
        except aiohttp.ClientError as error:
            log.warning("feedback: the API could not be reached: %s", error)
            return _error(502, "the API could not be reached")

    return feedback


def _error(status: int, message: str) -> web.Response:
    body = orjson.dumps({"data": None, "error": message})
    return web.Response(body=body, status=status, content_type="application/json")
