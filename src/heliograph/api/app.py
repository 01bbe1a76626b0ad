"""`build_api_app`: the FastAPI application serving the API port."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from heliograph import __version__
from heliograph.analytics.executor import StoreUnavailable
from heliograph.api.envelope import (
    fail,
    on_bad_query,
    on_http_error,
    on_store_unavailable,
    on_unexpected,
    on_validation_error,
)
from heliograph.api.routes import (
    health,
    log,
    metrics,
    properties,
    ratelimits,
    requests,
    sessions,
    settings,
    sql,
    users,
)
from heliograph.domain.filters import FilterError
from heliograph.services.container import Services
from heliograph.services.requests import QueryError

MAX_API_BODY_BYTES = 8 * 1024 * 1024
MAX_BATCH_BODY_BYTES = 256 * 1024 * 1024  # shipped log batches carry whole bodies


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
    app.add_exception_handler(FilterError, on_bad_query)
    app.add_exception_handler(QueryError, on_bad_query)
    app.add_exception_handler(StoreUnavailable, on_store_unavailable)
    app.add_exception_handler(Exception, on_unexpected)

    @app.middleware("http")
    async def limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        limit = MAX_BATCH_BODY_BYTES if request.url.path == "/v1/log/batch" else MAX_API_BODY_BYTES
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return fail(413, f"request body larger than {limit} bytes")
        return await call_next(request)

    routers = (requests, sessions, users, metrics, properties, sql, log, ratelimits, settings)
    for module in (*routers, health):
        app.include_router(module.router)
    return app
