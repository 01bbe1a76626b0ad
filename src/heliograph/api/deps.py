"""Dependencies shared by routes: the services container and the `Caller`. A caller is an API
key (`Authorization: Bearer <key>`) or a person signed in with the session cookie, who names the
organization they act on (in the path or the `Heliograph-Organization-Id` header) and whose
unsafe requests carry the CSRF token. Each route asks for the capability it needs."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from heliograph.api.cookies import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from heliograph.domain.access import (
    KEY_CAPABILITIES,
    ROLE_CAPABILITIES,
    Caller,
    Capability,
    Forbidden,
    KeyPermissions,
    NotAuthenticated,
)
from heliograph.domain.errors import InvalidInput
from heliograph.services.accounts import SignedInUser
from heliograph.services.audit import Actor
from heliograph.services.container import Services

ORGANIZATION_HEADER = "Heliograph-Organization-Id"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NO_KEY = "missing or invalid Authorization header (Bearer <key>)"


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_person(request: Request, services: ServicesDep) -> SignedInUser:
    """The person behind the session cookie; for an unsafe method, only with the CSRF token."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotAuthenticated("not signed in")
    person = await run_in_threadpool(services.accounts.session, token)
    if person is None:
        raise NotAuthenticated("the session has ended; sign in again")
    if request.method not in SAFE_METHODS:
        _check_csrf(request, person.csrf_token)
    return person


PersonDep = Annotated[SignedInUser, Depends(get_person)]


def _check_csrf(request: Request, expected: str) -> None:
    header = request.headers.get(CSRF_HEADER, "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    # Both must match the session's own token: a cookie planted by a sibling site cannot pass.
    same = hmac.compare_digest(header.encode(), expected.encode()) and hmac.compare_digest(
        cookie.encode(), expected.encode()
    )
    if not header or not same:
        raise Forbidden(f"missing or wrong {CSRF_HEADER} header (it must equal {CSRF_COOKIE})")


async def get_caller(request: Request, services: ServicesDep) -> Caller:
    authorization = request.headers.get("Authorization")
    if authorization is not None or SESSION_COOKIE not in request.cookies:
        identity = await services.verifier.verify(authorization)
        if identity is None:
            raise NotAuthenticated(NO_KEY)
        capabilities = KEY_CAPABILITIES[KeyPermissions(identity.permissions)]
        return Caller(
            identity.organization_id, capabilities, key_id=identity.key_id, label=identity.key_id
        )
    person = await get_person(request, services)
    organization_id = request.path_params.get("organization_id") or request.headers.get(
        ORGANIZATION_HEADER
    )
    if not organization_id:
        raise InvalidInput(f"name the organization in the {ORGANIZATION_HEADER} header")
    role = await run_in_threadpool(services.accounts.role_of, person.user_id, organization_id)
    if role is None:
        raise Forbidden("you are not a member of that organization")
    return Caller(
        organization_id,
        ROLE_CAPABILITIES[role],
        user_id=person.user_id,
        role=role,
        label=person.email,
    )


CallerDep = Annotated[Caller, Depends(get_caller)]


def requires(capability: Capability) -> Callable[[Caller], Awaitable[Caller]]:
    async def dependency(caller: CallerDep) -> Caller:
        return caller.require(capability)

    return dependency


Reader = Annotated[Caller, Depends(requires(Capability.READ))]
Writer = Annotated[Caller, Depends(requires(Capability.WRITE))]
Configurer = Annotated[Caller, Depends(requires(Capability.CONFIGURE))]
KeyManager = Annotated[Caller, Depends(requires(Capability.MANAGE_KEYS))]
MemberManager = Annotated[Caller, Depends(requires(Capability.MANAGE_MEMBERS))]
AuditReader = Annotated[Caller, Depends(requires(Capability.READ_AUDIT))]
Owner = Annotated[Caller, Depends(requires(Capability.OWN))]


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def actor_of(request: Request, caller: Caller) -> Actor:
    """The audit log's `Actor` for this caller and request."""
    return Actor(
        user_id=caller.user_id,
        key_id=caller.key_id,
        label=caller.label,
        address=client_address(request),
        user_agent=request.headers.get("user-agent", "")[:300],
    )
