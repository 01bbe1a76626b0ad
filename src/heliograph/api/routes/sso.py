"""`/v1/auth/sso`: single sign-on with OpenID Connect: whether it is on, the redirect to the
identity provider, and the callback that opens a session. The flow's state is also kept in a
short-lived cookie, so a callback only completes in the browser that started it (no login CSRF)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from heliograph.api.cookies import served_over_tls, set_session_cookies
from heliograph.api.deps import ServicesDep, client_address
from heliograph.api.envelope import JsonResponse, ok
from heliograph.domain.errors import InvalidInput
from heliograph.services.audit import Actor
from heliograph.services.container import Services
from heliograph.services.sso import (
    SsoDisabled,
    SsoFailed,
    SsoService,
    open_sso,
    shorten,
)

router = APIRouter(prefix="/v1/auth/sso", tags=["sso"])

CALLBACK_PATH = "/v1/auth/sso/callback"
STATE_COOKIE = "heliograph_sso_state"
STATE_COOKIE_MAX_AGE_S = 600  # as long as a flow lives
Param = Annotated[str | None, Query(max_length=2000)]


def _error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


REDIRECT = {"description": "A redirect (`Location`)", "content": None}
NOT_CONFIGURED = _error("Single sign-on is not configured")
ISSUER_DOWN = _error("The identity provider could not be reached or answered nonsense")


def sso_service(request: Request, services: Services) -> SsoService | None:
    """The app's `SsoService`, made on first use from the settings (None when SSO is off)."""
    state = request.app.state
    if not hasattr(state, "sso"):
        state.sso = open_sso(services.settings, services.engine, CALLBACK_PATH)
    sso: SsoService | None = state.sso
    return sso


def _enabled(request: Request, services: Services) -> SsoService:
    sso = sso_service(request, services)
    if sso is None:
        raise SsoDisabled("single sign-on is not configured on this server")
    return sso


@router.get("", operation_id="ssoStatus")
async def status(request: Request, services: ServicesDep) -> JsonResponse:
    """Whether single sign-on is on, with which issuer, and where a browser starts it."""
    sso = sso_service(request, services)
    if sso is None:
        return ok({"enabled": False, "issuer": None, "login_url": None})
    login_url = f"{services.settings.resolved_public_url}/v1/auth/sso/login"
    return ok({"enabled": True, "issuer": sso.config.issuer, "login_url": login_url})


@router.get(
    "/login",
    operation_id="ssoLogin",
    status_code=302,
    response_class=RedirectResponse,
    responses={302: REDIRECT, 404: NOT_CONFIGURED, 502: ISSUER_DOWN},
)
async def login(
    request: Request,
    services: ServicesDep,
    next_path: Annotated[str, Query(alias="next", max_length=2000)] = "/",
) -> RedirectResponse:
    """Send the browser to the identity provider; it comes back to `callback`, then to `next`
    (a path on this site; anything else becomes "/")."""
    started = await _enabled(request, services).start(next_path)
    response = RedirectResponse(started.url, status_code=302)
    response.set_cookie(
        STATE_COOKIE,
        started.state,
        max_age=STATE_COOKIE_MAX_AGE_S,
        path="/v1/auth/sso",
        httponly=True,
        samesite="lax",
        secure=served_over_tls(request),
    )
    return response


@router.get(
    "/callback",
    operation_id="ssoCallback",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        302: REDIRECT,
        403: _error("Sign-in refused"),
        404: NOT_CONFIGURED,
        502: ISSUER_DOWN,
    },
)
async def callback(
    request: Request,
    services: ServicesDep,
    code: Param = None,
    state: Param = None,
    error: Param = None,
    error_description: Param = None,
) -> RedirectResponse:
    """Where the identity provider sends the browser back: the flow is taken (once), the code
    exchanged, the ID token verified, and a session opened for the person it names."""
    sso = _enabled(request, services)
    if error is not None:
        if state:
            await sso.abandon(state)
        message = f"the identity provider refused the sign-in: {error}"
        raise SsoFailed(
            shorten(f"{message}: {error_description}" if error_description else message)
        )
    if not code or not state:
        raise SsoFailed("the callback needs code and state")
    if not hmac.compare_digest(request.cookies.get(STATE_COOKIE, "").encode(), state.encode()):
        await sso.abandon(state)
        raise SsoFailed("this sign-in was started in another browser; start again")
    actor = Actor(
        address=client_address(request), user_agent=request.headers.get("user-agent", "")[:300]
    )
    email = ""
    try:
        finished = await sso.finish(code, state)
        email = finished.claims.email
        opened = await run_in_threadpool(services.accounts.sso_sign_in, finished.claims, actor)
    except InvalidInput as refusal:
        if refusal.status == 403:  # the ID token did not verify, or the account rules said no
            await run_in_threadpool(_record_refusal, services, actor, sso, email, str(refusal))
        raise
    response = RedirectResponse(finished.redirect_to, status_code=302)
    set_session_cookies(response, request, opened.token, opened.csrf_token, opened.max_age_s)
    response.delete_cookie(
        STATE_COOKIE, path="/v1/auth/sso", httponly=True, secure=served_over_tls(request)
    )
    return response


def _record_refusal(
    services: Services, actor: Actor, sso: SsoService, email: str, reason: str
) -> None:
    details = {"issuer": sso.config.issuer, "reason": shorten(reason)}
    target = ("email", email[:255]) if email else ("", "")
    services.audit.record(actor, "login.sso_refused", None, target, details)
