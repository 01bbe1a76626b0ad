"""`/v1/auth`: sign-up, sign-in, sign-out and who is signed in; password change and reset. A
session is the `heliograph_session` cookie (HttpOnly) and `heliograph_csrf`, whose value every
unsafe cookie-authenticated request repeats in `X-CSRF-Token`."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from heliograph.api.cookies import SESSION_COOKIE, clear_session_cookies, set_session_cookies
from heliograph.api.deps import PersonDep, ServicesDep, client_address
from heliograph.api.envelope import JsonResponse, ok
from heliograph.api.schemas import StrictBody
from heliograph.services.accounts import NewSession
from heliograph.services.audit import Actor
from heliograph.services.mailer import MailError

router = APIRouter(prefix="/v1/auth", tags=["auth"])

Email = Annotated[str, Field(min_length=3, max_length=320)]
Password = Annotated[str, Field(min_length=1, max_length=256)]
Token = Annotated[str, Field(min_length=1, max_length=200)]


class SignupBody(StrictBody):
    email: Email
    password: Password
    organization_name: Annotated[str, Field(max_length=200)] = ""
    invitation_token: Token | None = None


class LoginBody(StrictBody):
    email: Annotated[str, Field(max_length=320)]
    password: Password


class PasswordChangeBody(StrictBody):
    current_password: Password
    new_password: Password


class ResetRequestBody(StrictBody):
    email: Annotated[str, Field(max_length=320)]


class ResetBody(StrictBody):
    token: Token
    new_password: Password


def anonymous(request: Request) -> Actor:
    return Actor(
        address=client_address(request), user_agent=request.headers.get("user-agent", "")[:300]
    )


def _signed_in(request: Request, opened: NewSession, status_code: int = 200) -> JsonResponse:
    """The session's cookies, and who it is for; the CSRF value is also in the body for clients
    that do not read cookies."""
    data = {
        "user_id": opened.user_id,
        "email": opened.email,
        "organization_id": opened.organization_id,
        "csrf_token": opened.csrf_token,
    }
    response = ok(data, status_code=status_code)
    set_session_cookies(response, request, opened.token, opened.csrf_token, opened.max_age_s)
    return response


@router.post("/signup", operation_id="signUp", status_code=201)
async def signup(body: SignupBody, request: Request, services: ServicesDep) -> JsonResponse:
    """A new person: the first of a fresh install becomes owner; later ones need an invitation
    (unless `HELIOGRAPH_SIGNUP=open`)."""
    await services.login_throttle.attempt(body.email.strip().lower(), client_address(request))
    opened = await run_in_threadpool(
        services.accounts.signup,
        body.email,
        body.password,
        body.organization_name,
        body.invitation_token,
        anonymous(request),
    )
    return _signed_in(request, opened, 201)


@router.post("/login", operation_id="logIn")
async def login(body: LoginBody, request: Request, services: ServicesDep) -> JsonResponse:
    await services.login_throttle.attempt(body.email.strip().lower(), client_address(request))
    opened = await run_in_threadpool(
        services.accounts.login, body.email, body.password, anonymous(request)
    )
    return _signed_in(request, opened)


@router.post("/logout", operation_id="logOut")
async def logout(request: Request, person: PersonDep, services: ServicesDep) -> JsonResponse:
    token = request.cookies.get(SESSION_COOKIE, "")
    actor = Actor(user_id=person.user_id, label=person.email, address=client_address(request))
    await run_in_threadpool(services.accounts.logout, token, actor)
    response = ok({"signed_out": True})
    clear_session_cookies(response, request)
    return response


@router.get("/me", operation_id="me")
async def me(person: PersonDep, services: ServicesDep) -> JsonResponse:
    user, memberships = await run_in_threadpool(services.accounts.me, person.user_id)
    organizations = [
        {"id": m.organization_id, "name": m.name, "role": m.role.value} for m in memberships
    ]
    return ok(
        {
            "user_id": user.id,
            "email": user.email,
            "name": user.name,
            "has_password": user.password_hash is not None,
            "organizations": organizations,
            "csrf_token": person.csrf_token,
        }
    )


@router.post("/password", operation_id="changePassword")
async def change_password(
    body: PasswordChangeBody, request: Request, person: PersonDep, services: ServicesDep
) -> JsonResponse:
    """A new password; every other session of this person ends."""
    await services.login_throttle.attempt(person.email, client_address(request))
    actor = Actor(user_id=person.user_id, label=person.email, address=client_address(request))
    await run_in_threadpool(
        services.accounts.change_password,
        person.user_id,
        body.current_password,
        body.new_password,
        person.session_id,
        actor,
    )
    return ok({"changed": True})


@router.post("/password-reset", operation_id="requestPasswordReset", status_code=202)
async def request_reset(
    body: ResetRequestBody, request: Request, services: ServicesDep
) -> JsonResponse:
    """E-mail a reset link when SMTP is configured. The answer is the same whether or not the
    account exists; without SMTP, an operator runs `heliograph users reset-password`."""
    await services.login_throttle.attempt(body.email.strip().lower(), client_address(request))
    if not services.mailer.enabled:
        hint = "no e-mail is configured: an operator runs `heliograph users reset-password`"
        return ok({"emailed": False, "hint": hint}, status_code=202)
    issued = await run_in_threadpool(
        services.accounts.request_reset, body.email, anonymous(request)
    )
    if issued is not None:
        token, email = issued
        link = f"{services.settings.resolved_public_url}/reset-password?token={token}"
        text = f"Someone asked to reset your Heliograph password. To choose a new one: {link}\n"
        # A failure is logged by the mailer; the answer must not say whether the account exists.
        with contextlib.suppress(MailError):
            await run_in_threadpool(services.mailer.send, email, "Reset your password", text)
    return ok({"emailed": True}, status_code=202)


@router.post("/password-reset/confirm", operation_id="resetPassword")
async def reset_password(body: ResetBody, request: Request, services: ServicesDep) -> JsonResponse:
    """The new password for a reset link's token; every session of the account ends."""
    await run_in_threadpool(
        services.accounts.reset_password, body.token, body.new_password, anonymous(request)
    )
    return ok({"changed": True})
