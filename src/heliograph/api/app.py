"""`build_api_app`: the FastAPI application serving the API port."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from heliograph import __version__
from heliograph.analytics.executor import StoreUnavailable
from heliograph.api.envelope import (
    fail,
    on_http_error,
    on_invalid_input,
    on_store_unavailable,
    on_unexpected,
    on_validation_error,
)
from heliograph.api.routes import (
    alerts,
    api_keys,
    async_log,
    audit,
    auth,
    health,
    log,
    metrics,
    models,
    organizations,
    otel,
    playground,
    prices,
    prompts,
    properties,
    provider_keys,
    ratelimits,
    reports,
    requests,
    saved_queries,
    sessions,
    settings,
    sql,
    sso,
    users,
    webhooks,
)
from heliograph.domain.errors import InvalidInput
from heliograph.services.container import Services

MAX_API_BODY_BYTES = 8 * 1024 * 1024
MAX_BATCH_BODY_BYTES = 256 * 1024 * 1024  # shipped log batches carry whole bodies


class BodyLimit:
    """A 413 for a body over its route's limit: at once when `Content-Length` says so, and as
    soon as the limit is passed when the body comes chunked with no length."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            # PostgreSQL refuses NUL in text: an id or filter with one is bad input, not a 500.
            await fail(400, "the URL may not contain NUL characters")(scope, receive, send)
            return
        limit = MAX_BATCH_BODY_BYTES if scope["path"] == "/v1/log/batch" else MAX_API_BODY_BYTES
        too_large = f"request body larger than {limit} bytes"
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await fail(413, too_large)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:  # FastAPI passes an HTTPException from here to its handler
                raise HTTPException(413, too_large)
            return message

        await self.app(scope, counted, send)


def build_api_app(services: Services | None) -> FastAPI:
    """The API over `services` (None only to render the OpenAPI document)."""
    app = FastAPI(
        title="Heliograph API",
        version=__version__,
        description="Query and manage requests logged by the Heliograph gateway.",
    )
    app.state.services = services
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(InvalidInput, on_invalid_input)
    app.add_exception_handler(StoreUnavailable, on_store_unavailable)
    app.add_exception_handler(Exception, on_unexpected)

    app.add_middleware(BodyLimit)
    routers = (
        requests,
        sessions,
        users,
        metrics,
        properties,
        saved_queries,  # before sql, whose prefix it shares
        sql,
        log,
        async_log,
        otel,
        prices,
        playground,  # before prompts, whose prefix it shares
        prompts,
        models,
        reports,
        ratelimits,
        settings,
        sso,  # before auth and api_keys, whose paths are prefixes of its own
        auth,
        organizations,
        provider_keys,
        api_keys,
        audit,
        alerts,
        webhooks,
    )
    for module in (*routers, health):
        app.include_router(module.router)
    app.include_router(organizations.invitations_router)
    return app
