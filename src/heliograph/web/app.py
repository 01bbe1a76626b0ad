"""`build_web_app`: the API with the dashboard's pages, static files and security headers on the
same origin, so the pages call the REST API with the session cookie."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from heliograph.analytics.executor import StoreUnavailable
from heliograph.api.app import build_api_app
from heliograph.api.envelope import (
    on_http_error,
    on_invalid_input,
    on_store_unavailable,
    on_validation_error,
)
from heliograph.api.routes.async_log import ASYNC_LOG_PREFIXES
from heliograph.domain.errors import InvalidInput
from heliograph.services.container import Services
from heliograph.web.assets import Assets
from heliograph.web.pages import (
    alerts,
    auth,
    cache,
    home,
    prompts,
    properties,
    request_detail,
    requests,
    sessions,
    settings,
    sql,
    users,
    webhooks,
)
from heliograph.web.security import SecurityHeaders
from heliograph.web.templating import Templates
from heliograph.web.viewer import NoOrganization, SignInRequired

# `requests` before `request_detail`: its fixed paths (/requests/live, /requests/export) come first.
PAGES = (
    auth,
    home,
    requests,
    request_detail,
    sessions,
    users,
    properties,
    cache,
    sql,
    prompts,
    webhooks,
    alerts,
    settings,
)


def build_web_app(services: Services) -> FastAPI:
    app = build_api_app(services)
    assets = Assets()
    app.state.templates = Templates(assets)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str, request: Request) -> Response:
        return assets.response(request, name)

    for page in PAGES:
        app.include_router(page.router)
    _install_error_pages(app)
    app.add_middleware(SecurityHeaders)
    return app


NOT_PAGES = ("/v1/", "/healthz", "/metrics", "/static/", *ASYNC_LOG_PREFIXES)


def is_page(request: Request) -> bool:
    return not request.url.path.startswith(NOT_PAGES)


def _install_error_pages(app: FastAPI) -> None:
    """Pages answer errors in HTML; the API keeps its JSON envelope."""
    templates: Templates = app.state.templates

    async def sign_in(request: Request, error: Exception) -> Response:
        assert isinstance(error, SignInRequired)
        return RedirectResponse(f"/login?next={error.next_path}", 303)

    async def no_organization(request: Request, error: Exception) -> Response:
        return templates.render(request, "no_organization.html", status_code=403)

    async def invalid(request: Request, error: Exception) -> Response:
        if not is_page(request):
            return await on_invalid_input(request, error)
        assert isinstance(error, InvalidInput)
        return templates.render(request, "error.html", status_code=error.status, message=str(error))

    async def invalid_parameter(request: Request, error: Exception) -> Response:
        """A query parameter FastAPI refused (too long, say): a page says which, in HTML."""
        if not is_page(request):
            return await on_validation_error(request, error)
        assert isinstance(error, RequestValidationError)
        names = sorted({str(item.get("loc", ("", "?"))[-1])[:40] for item in error.errors()})
        message = f"This page cannot take the value of {', '.join(names[:5])} in its address."
        return templates.render(request, "error.html", status_code=400, message=message)

    async def unavailable(request: Request, error: Exception) -> Response:
        if not is_page(request):
            return await on_store_unavailable(request, error)
        message = "The analytics store is not answering; try again in a moment."
        return templates.render(request, "error.html", status_code=503, message=message)

    async def http_error(request: Request, error: Exception) -> Response:
        if not is_page(request):
            return await on_http_error(request, error)
        assert isinstance(error, HTTPException)
        message = "No such page." if error.status_code == 404 else str(error.detail)
        status = error.status_code
        return templates.render(request, "error.html", status_code=status, message=message)

    app.add_exception_handler(SignInRequired, sign_in)
    app.add_exception_handler(NoOrganization, no_organization)
    app.add_exception_handler(InvalidInput, invalid)
    app.add_exception_handler(RequestValidationError, invalid_parameter)
    app.add_exception_handler(StoreUnavailable, unavailable)
    app.add_exception_handler(HTTPException, http_error)
