"""Who is looking at a page: the signed-in person and the organization they are viewing (the
`heliograph_org` cookie, checked against their memberships on every page, else their first).
A visitor without a live session is sent to `/login`, with the page to come back to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from heliograph.api.cookies import CSRF_COOKIE, SESSION_COOKIE
from heliograph.api.deps import ServicesDep
from heliograph.domain.access import ROLE_CAPABILITIES, Caller, Capability
from heliograph.services.accounts import Membership, SignedInUser

ORGANIZATION_COOKIE = "heliograph_org"


class SignInRequired(Exception):
    """No live session: the page answers with a redirect to `/login?next=<this page>`."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class NoOrganization(Exception):
    """A person who belongs to no organization (every member removed them)."""


@dataclass(frozen=True, slots=True)
class Viewer:
    person: SignedInUser
    organization: Membership
    memberships: tuple[Membership, ...]

    @property
    def organization_id(self) -> str:
        return self.organization.organization_id

    @property
    def caller(self) -> Caller:
        """The viewer as the API sees a person, for `api.deps.actor_of` and capability checks."""
        role = self.organization.role
        return Caller(
            self.organization_id,
            ROLE_CAPABILITIES[role],
            user_id=self.person.user_id,
            role=role,
            label=self.person.email,
        )

    def can(self, capability: str) -> bool:
        return Capability(capability) in ROLE_CAPABILITIES[self.organization.role]


def local_path(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site, else `default`: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ord(char) < 32 for char in target):
        return default
    return target


def _here(request: Request) -> str:
    query = request.url.query
    return quote(request.url.path + (f"?{query}" if query else ""), safe="/?=&%")


async def person_of(request: Request, services: ServicesDep) -> SignedInUser | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await run_in_threadpool(services.accounts.session, token)


async def get_viewer(request: Request, services: ServicesDep) -> Viewer:
    person = await person_of(request, services)
    if person is None or request.cookies.get(CSRF_COOKIE) != person.csrf_token:
        raise SignInRequired(_here(request))
    _, memberships = await run_in_threadpool(services.accounts.me, person.user_id)
    if not memberships:
        raise NoOrganization
    wanted = request.cookies.get(ORGANIZATION_COOKIE)
    chosen = next((m for m in memberships if m.organization_id == wanted), memberships[0])
    return Viewer(person, chosen, tuple(memberships))


ViewerDep = Annotated[Viewer, Depends(get_viewer)]
