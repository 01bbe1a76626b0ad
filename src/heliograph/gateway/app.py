"""`build_gateway_app`: the aiohttp application serving the gateway port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from heliograph.gateway.feedback import feedback_handler
from heliograph.gateway.proxy import Proxy
from heliograph.telemetry import Telemetry

CLIENT_SESSION = web.AppKey("client_session", aiohttp.ClientSession)
# Why the process cannot do its job (its logs are stuck), or None when it can.
HealthCheck = Callable[[], str | None]


def build_gateway_app(
    proxy: Proxy,
    telemetry: Telemetry,
    *,
    max_request_bytes: int,
    connect_timeout_s: float,
    read_timeout_s: float,
    api_url: str,
    body_timeout_s: float = 30.0,
    stalled: HealthCheck | None = None,
) -> web.Application:
    app = web.Application(client_max_size=max_request_bytes)
    proxy.body_timeout_s = body_timeout_s

    async def client_session(app: web.Application) -> AsyncIterator[None]:
        # One pooled session for every upstream; no total timeout, since streams run long.
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
        ) as session:
            proxy.session = session
            app[CLIENT_SESSION] = session
            yield
            proxy.session = None

    async def health(_request: web.Request) -> web.Response:
        reason = stalled() if stalled is not None else None
        if reason is not None:
            return web.json_response({"status": "stalled", "stalled": [reason]}, status=503)
        return web.json_response({"status": "ok"})

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=telemetry.exposition(), content_type="text/plain")

    app.cleanup_ctx.append(client_session)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", health)
    app.router.add_get("/healthcheck", health)
    app.router.add_post("/v1/feedback", feedback_handler(api_url, CLIENT_SESSION, body_timeout_s))  # type: ignore[arg-type]
    app.router.add_route("*", "/{prefix}/{tail:.*}", proxy.handle)
    return app
