"""`/v1/organizations`: a person's organizations, their members and roles, and invitations;
`/v1/invitations`: reading and accepting an invitation by its token. Plain `def` routes:
FastAPI runs them on its thread pool, so app DB calls and e-mail never block the event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from heliograph.api.deps import (
    CallerDep,
    PersonDep,
    ServicesDep,
    actor_of,
    client_address,
)
from heliograph.api.envelope import JsonResponse, ok
from heliograph.api.schemas import StrictBody
from heliograph.domain.access import Caller, Capability, Forbidden, Role, role_from
from heliograph.services.accounts import SignedInUser
from heliograph.services.audit import Actor
from heliograph.services.organizations import (
    InvitationInfo,
    Member,
    NotFound,
    OrganizationInfo,
)

router = APIRouter(prefix="/v1/organizations", tags=["organizations"])
invitations_router = APIRouter(prefix="/v1/invitations", tags=["organizations"])

Name = Annotated[str, Field(min_length=1, max_length=200)]
RoleText = Annotated[str, Field(min_length=1, max_length=16)]
UserId = Annotated[str, Field(min_length=1, max_length=36)]


class NameBody(StrictBody):
    name: Name


class TransferBody(StrictBody):
    user_id: UserId


class RoleBody(StrictBody):
    role: RoleText


class InvitationBody(StrictBody):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    role: RoleText = Role.MEMBER.value


class AcceptBody(StrictBody):
    token: Annotated[str, Field(min_length=1, max_length=200)]


def in_path(capability: Capability | None) -> Callable[..., Awaitable[Caller]]:
    """The caller, acting on the organization the path names: another organization's id is a
    404 (before any capability is checked, so a key learns nothing of it)."""

    async def dependency(organization_id: str, caller: CallerDep) -> Caller:
        if caller.organization_id != organization_id:
            raise NotFound(f"no organization {organization_id[:40]}")
        return caller if capability is None else caller.require(capability)

    return dependency


OrgMember = Annotated[Caller, Depends(in_path(None))]
OrgReader = Annotated[Caller, Depends(in_path(Capability.READ))]
OrgConfigurer = Annotated[Caller, Depends(in_path(Capability.CONFIGURE))]
OrgMemberManager = Annotated[Caller, Depends(in_path(Capability.MANAGE_MEMBERS))]
OrgOwner = Annotated[Caller, Depends(in_path(Capability.OWN))]


def person_actor(request: Request, person: SignedInUser) -> Actor:
    return Actor(
        user_id=person.user_id,
        label=person.email,
        address=client_address(request),
        user_agent=request.headers.get("user-agent", "")[:300],
    )


def _role_of(caller: Caller) -> Role:
    if caller.role is None:
        raise Forbidden("members are managed by people, not API keys")
    return caller.role


def _organization(found: OrganizationInfo, role: Role | None) -> dict[str, Any]:
    return {
        "id": found.id,
        "name": found.name,
        "created_at": found.created_at.isoformat(),
        "role": None if role is None else role.value,
    }


def _member(member: Member) -> dict[str, Any]:
    return {
        "user_id": member.user_id,
        "email": member.email,
        "role": member.role.value,
        "joined": member.joined.isoformat(),
    }


def _invitation(invitation: InvitationInfo) -> dict[str, Any]:
    return {
        "id": invitation.id,
        "email": invitation.email,
        "role": invitation.role.value,
        "created_at": invitation.created_at.isoformat(),
        "expires_at": invitation.expires_at.isoformat(),
    }


# The person's organizations


@router.get("", operation_id="listOrganizations")
def list_organizations(person: PersonDep, services: ServicesDep) -> JsonResponse:
    """The organizations the signed-in person belongs to, with their role in each."""
    return ok(
        [
            {"id": m.organization_id, "name": m.name, "role": m.role.value}
            for m in services.organizations.memberships(person.user_id)
        ]
    )


@router.post("", operation_id="createOrganization", status_code=201)
def create_organization(
    body: NameBody, request: Request, person: PersonDep, services: ServicesDep
) -> JsonResponse:
    """A new organization, owned by the signed-in person."""
    organizations = services.organizations
    created = organizations.create(body.name, person.user_id, person_actor(request, person))
    return ok(_organization(organizations.get(created), Role.OWNER), status_code=201)


# One organization


@router.get("/{organization_id}", operation_id="getOrganization")
def get_organization(caller: OrgReader, services: ServicesDep) -> JsonResponse:
    found = services.organizations.get(caller.organization_id)
    return ok(_organization(found, caller.role))


@router.patch("/{organization_id}", operation_id="renameOrganization")
def rename_organization(
    body: NameBody, request: Request, caller: OrgConfigurer, services: ServicesDep
) -> JsonResponse:
    renamed = services.organizations.rename(
        caller.organization_id, body.name, actor_of(request, caller)
    )
    return ok(_organization(renamed, caller.role))


@router.delete("/{organization_id}", operation_id="deleteOrganization")
async def delete_organization(
    request: Request, caller: OrgOwner, services: ServicesDep
) -> JsonResponse:
    """Delete the organization's members, keys, invitations and settings. Its logged requests
    stay in the analytics store (unreachable: no key or member can name it any more). This
    process refuses its keys at once, every other within seconds."""
    organization_id = caller.organization_id
    keys = await run_in_threadpool(services.keys.list_keys, organization_id, True)
    actor = actor_of(request, caller)
    await run_in_threadpool(services.organizations.delete, organization_id, actor)
    for key in keys:
        services.verifier.forget_key(key.key_id)  # on the event loop, which owns the verifier
    services.rule_source.forget(organization_id)
    return ok({"deleted": organization_id})


@router.post("/{organization_id}/transfer", operation_id="transferOrganization")
def transfer_organization(
    body: TransferBody, request: Request, caller: OrgOwner, services: ServicesDep
) -> JsonResponse:
    """Make another member the owner; the current owner becomes an admin."""
    if caller.user_id is None:
        raise Forbidden("only a person can transfer an organization")
    services.organizations.transfer(
        caller.organization_id, body.user_id, caller.user_id, actor_of(request, caller)
    )
    return ok({"owner": body.user_id})


# Members


@router.get("/{organization_id}/members", operation_id="listMembers")
def list_members(caller: OrgReader, services: ServicesDep) -> JsonResponse:
    return ok([_member(m) for m in services.organizations.members(caller.organization_id)])


@router.patch("/{organization_id}/members/{user_id}", operation_id="changeMemberRole")
def change_role(
    user_id: str, body: RoleBody, request: Request, caller: OrgMemberManager, services: ServicesDep
) -> JsonResponse:
    changed = services.organizations.change_role(
        caller.organization_id,
        user_id,
        role_from(body.role),
        _role_of(caller),
        actor_of(request, caller),
    )
    return ok(_member(changed))


@router.delete("/{organization_id}/members/{user_id}", operation_id="removeMember")
def remove_member(
    user_id: str, request: Request, caller: OrgMember, services: ServicesDep
) -> JsonResponse:
    """Remove a member (admins and owners), or leave the organization (anyone)."""
    if caller.user_id != user_id:
        caller.require(Capability.MANAGE_MEMBERS)
    services.organizations.remove_member(
        caller.organization_id, user_id, _role_of(caller), actor_of(request, caller)
    )
    return ok({"removed": user_id})


# Invitations


ALREADY_A_MEMBER: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "The address belongs to a member already",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
}


@router.post(
    "/{organization_id}/invitations",
    operation_id="createInvitation",
    status_code=201,
    responses=ALREADY_A_MEMBER,
)
def create_invitation(
    body: InvitationBody, request: Request, caller: OrgMemberManager, services: ServicesDep
) -> JsonResponse:
    """An invitation link (shown once), e-mailed too when SMTP is configured."""
    organizations = services.organizations
    role = role_from(body.role)
    made = organizations.invite(caller.organization_id, body.email, role, actor_of(request, caller))
    warning = None
    if services.mailer.enabled:
        warning = organizations.send_invitation(made, caller.label)
    data = {
        **_invitation(made.invitation),
        "link": made.link,
        "emailed": services.mailer.enabled and warning is None,
    }
    if warning is not None:
        data["warning"] = f"the invitation was not e-mailed: {warning}; hand the link over"
    return ok(data, status_code=201)


@router.get("/{organization_id}/invitations", operation_id="listInvitations")
def list_invitations(caller: OrgMemberManager, services: ServicesDep) -> JsonResponse:
    pending = services.organizations.invitations(caller.organization_id)
    return ok([_invitation(invitation) for invitation in pending])


@router.delete("/{organization_id}/invitations/{invitation_id}", operation_id="revokeInvitation")
def revoke_invitation(
    invitation_id: str, request: Request, caller: OrgMemberManager, services: ServicesDep
) -> JsonResponse:
    services.organizations.revoke_invitation(
        caller.organization_id, invitation_id, actor_of(request, caller)
    )
    return ok({"revoked": invitation_id})


# An invitation by its token


@invitations_router.get("/{token}", operation_id="getInvitation")
def get_invitation(token: str, services: ServicesDep) -> JsonResponse:
    """What an invitation offers, for the page that accepts it (no sign-in needed)."""
    pending = services.organizations.pending_invitation(token)
    if pending is None:
        raise NotFound("the invitation is unknown, used, revoked or expired")
    return ok(
        {
            "organization_id": pending.organization_id,
            "organization_name": pending.organization_name,
            "email": pending.email,
            "role": pending.role.value,
            "expires_at": pending.expires_at.isoformat(),
        }
    )


@invitations_router.post("/accept", operation_id="acceptInvitation")
def accept_invitation(
    body: AcceptBody, request: Request, person: PersonDep, services: ServicesDep
) -> JsonResponse:
    """Join the invitation's organization, as the person it was sent to."""
    joined = services.organizations.accept_invitation(
        body.token, person.user_id, person.email, person_actor(request, person)
    )
    return ok(
        {"organization_id": joined.organization_id, "name": joined.name, "role": joined.role.value}
    )
