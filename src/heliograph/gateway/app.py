"""`build_gateway_app`: the aiohttp application serving the gateway port, and the one pooled
client session every upstream call goes through. A handler's unexpected error is answered as
Helicone answers it: a JSON 500 with `helicone-error: true`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp
import orjson
from aiohttp import web

from heliograph.gateway.async_log import ASYNC_LOG_PATHS, async_log_handler
from heliograph.gateway.feedback import feedback_handler
from heliograph.gateway.proxy import Proxy
from heliograph.gateway.unified import UNIFIED_PATHS
from heliograph.telemetry import Telemetry

# Why the process cannot do its job (its logs are stuck), or None when it can.
HealthCheck = Callable[[], str | None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger("heliograph.gateway")
UNEXPECTED_BODY = orjson.dumps(
    {
        "helicone-message": "Heliograph ran into an error servicing your request",
        "support": "The gateway's log has the details; please report it to your operator.",
        "helicone-error": "internal error",
    }
)


def upstream_session(connect_timeout_s: float, read_timeout_s: float) -> aiohttp.ClientSession:
    """One pooled session for every upstream; no total timeout, since streams run long. Bytes
    pass as they come: no decompression, no `User-Agent` of its own."""
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s
    )
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        skip_auto_headers=("User-Agent",),
    )


def build_gateway_app(
    proxy: Proxy,
    telemetry: Telemetry,
    session: aiohttp.ClientSession,
    *,
    max_request_bytes: int,
    api_url: str,
    body_timeout_s: float,
    stalled: HealthCheck | None = None,
) -> web.Application:
    app = web.Application(client_max_size=max_request_bytes)

    async def health(_request: web.Request) -> web.Response:
        reason = stalled() if stalled is not None else None
        if reason is not None:
            return web.json_response({"status": "stalled", "stalled": [reason]}, status=503)
        return web.json_response({"status": "ok"})

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=telemetry.exposition(), content_type="text/plain")

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", health)
    app.router.add_get("/healthcheck", health)
    app.router.add_post("/v1/feedback", feedback_handler(api_url, session, body_timeout_s))
    async_log = guarded(async_log_handler(api_url, session, body_timeout_s))
    for path in ASYNC_LOG_PATHS:  # before the provider routes, one of which is `/anthropic`
        app.router.add_post(path, async_log)
    for path in UNIFIED_PATHS:  # the unified API, OpenAI's shape for every provider
        app.router.add_post(path, guarded(proxy.handle))
    app.router.add_get("/v1/models", guarded(proxy.list_models))
    app.router.add_route("*", "/{prefix}/{tail:.*}", guarded(proxy.handle))
    return app


def guarded(handler: Handler) -> Handler:
    """`handler`, with an error nobody expected answered as Helicone's worker answers one (a
    JSON 500 with `helicone-error: true`) while nothing of the response has gone out yet."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:
            if request.writer.output_size > 0:  # a response is half sent: only closing is left
                raise
            log.exception("unexpected error handling a %s request", request.method)
            return web.Response(
                body=UNEXPECTED_BODY,
                status=500,
                content_type="application/json",
                headers={"helicone-error": "true"},
            )

    return handle
