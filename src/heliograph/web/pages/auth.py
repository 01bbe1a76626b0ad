"""The pages a visitor reaches without a session: sign-in, sign-up, an invitation, a password
reset. The forms post JSON to `/v1/auth/*` and `/v1/invitations/accept` (app.js)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from heliograph.api.deps import ServicesDep
from heliograph.web.templating import TemplatesDep
from heliograph.web.viewer import local_path, person_of

router = APIRouter(include_in_schema=False)
Token = Annotated[str, Query(max_length=200)]


@router.get("/login")
async def login(
    request: Request,
    services: ServicesDep,
    templates: TemplatesDep,
    next_path: Annotated[str, Query(alias="next", max_length=2000)] = "/",
) -> Response:
    target = local_path(next_path)
    if await person_of(request, services) is not None:
        return RedirectResponse(target, 303)
    settings = services.settings
    return templates.render(
        request, "login.html", next=target, sso=bool(settings.oidc_issuer), signup=settings.signup
    )


@router.get("/signup")
async def signup(
    request: Request, services: ServicesDep, templates: TemplatesDep, invitation: Token = ""
) -> Response:
    pending = None
    if invitation:
        pending = await run_in_threadpool(services.organizations.pending_invitation, invitation)
    return templates.render(
        request,
        "signup.html",
        invitation=pending,
        token=invitation,
        signup=services.settings.signup,
    )


@router.get("/invite")
async def invitation(
    request: Request, services: ServicesDep, templates: TemplatesDep, token: Token = ""
) -> Response:
    """The link in an invitation: a visitor signs up (or in) first; a signed-in person accepts."""
    pending = await run_in_threadpool(services.organizations.pending_invitation, token)
    if pending is not None and await person_of(request, services) is None:
        return RedirectResponse(f"/signup?invitation={token}", 303)
    return templates.render(request, "invitation.html", invitation=pending, token=token)


@router.get("/forgot-password")
async def forgot_password(request: Request, templates: TemplatesDep) -> Response:
    return templates.render(request, "forgot_password.html")


@router.get("/reset-password")
async def reset_password(request: Request, templates: TemplatesDep, token: Token = "") -> Response:
    return templates.render(request, "reset_password.html", token=token)
