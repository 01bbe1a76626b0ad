"""`/settings`: the organization (name, members, invitations), its API keys, provider and proxy
keys, rate-limit rules, redaction and audit log, one tab each. Lists are read from the services
the REST routes use; every change is made by static/settings.js through the REST API."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from heliograph.api.deps import ServicesDep
from heliograph.domain.access import Capability, Role
from heliograph.domain.errors import InvalidInput
from heliograph.domain.redaction import KINDS
from heliograph.services.audit import AuditQuery
from heliograph.services.container import Services
from heliograph.services.organizations import INVITABLE
from heliograph.web.templating import TemplatesDep
from heliograph.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)

TABS = (
    ("organization", "Organization"),
    ("api-keys", "API keys"),
    ("vault", "Provider keys"),
    ("limits", "Rate limits & redaction"),
    ("audit", "Audit log"),
)
AUDIT_PAGE = 50
ACTION = re.compile(r"[a-z_]+(\.[a-z_]*)?")
Context = dict[str, Any]
Loader = Callable[[Viewer, Services, str | None, str | None], Awaitable[Context]]


def audit_action(text: str | None) -> str | None:
    """The audit filter the service understands: `api_key` (a bare area) becomes the prefix
    `api_key.`; `api_key.` and `api_key.create` are kept."""
    if text is None or not text.strip():
        return None
    action = text.strip().lower()
    if not ACTION.fullmatch(action):
        raise InvalidInput("action must look like api_key, api_key. or api_key.create")
    return action if "." in action else action + "."


def audit_cursor(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise InvalidInput("cursor must be the one an audit page links to") from None


@router.get("/settings")
async def settings(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
    tab: Annotated[str, Query(max_length=20)] = "organization",
    action: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    loader = LOADERS.get(tab)
    if loader is None:
        raise InvalidInput(f"tab must be one of {', '.join(name for name, _ in TABS)}")
    context = await loader(viewer, services, action, cursor)
    return templates.render(
        request, "settings.html", viewer, tabs=TABS, tab=tab, may=_abilities(viewer), **context
    )


def _abilities(viewer: Viewer) -> dict[str, bool]:
    return {capability.value: viewer.can(capability) for capability in Capability}


async def _organization(
    viewer: Viewer, services: Services, _action: str | None, _cursor: str | None
) -> Context:
    org, organizations = viewer.organization_id, services.organizations
    may_invite = viewer.can(Capability.MANAGE_MEMBERS)
    found, members, invitations = await asyncio.gather(
        run_in_threadpool(organizations.get, org),
        run_in_threadpool(organizations.members, org),
        run_in_threadpool(organizations.invitations, org) if may_invite else _nothing(),
    )
    return {
        "organization": found,
        "members": members,
        "invitations": invitations,
        "invitable": [role.value for role in INVITABLE],
        "owner": Role.OWNER.value,
    }


async def _api_keys(
    viewer: Viewer, services: Services, _action: str | None, _cursor: str | None
) -> Context:
    if not viewer.can(Capability.MANAGE_KEYS):
        return {"keys": []}
    keys = await run_in_threadpool(services.keys.list_keys, viewer.organization_id, True)
    return {"keys": keys}


async def _vault(
    viewer: Viewer, services: Services, _action: str | None, _cursor: str | None
) -> Context:
    providers = sorted(services.providers)
    if not viewer.can(Capability.MANAGE_KEYS):
        return {"provider_keys": [], "proxy_keys": [], "providers": providers}
    vault, org = services.provider_keys, viewer.organization_id
    provider_keys, proxy_keys = await asyncio.gather(
        run_in_threadpool(vault.list_keys, org), run_in_threadpool(vault.list_proxy_keys, org)
    )
    names = {key.id: f"{key.provider_name} · {key.name}" for key in provider_keys}
    return {
        "provider_keys": provider_keys,
        "proxy_keys": [key for key in proxy_keys if key.revoked_at is None],
        "provider_names": names,
        "providers": providers,
    }


async def _limits(
    viewer: Viewer, services: Services, _action: str | None, _cursor: str | None
) -> Context:
    org = viewer.organization_id
    rules, kinds = await asyncio.gather(
        run_in_threadpool(services.rules.list, org),
        run_in_threadpool(services.redaction.kinds, org),
    )
    return {"rules": rules, "redacted": set(kinds), "kinds": KINDS}


async def _audit(
    viewer: Viewer, services: Services, action: str | None, cursor: str | None
) -> Context:
    chosen = audit_action(action)
    before = audit_cursor(cursor)
    if not viewer.can(Capability.READ_AUDIT):
        return {"lines": [], "action": chosen or "", "next_cursor": None, "paged": False}
    query = AuditQuery(viewer.organization_id, action=chosen, limit=AUDIT_PAGE, before=before)
    lines = await run_in_threadpool(services.audit.query, query)
    return {
        "lines": lines,
        "action": chosen or "",
        "next_cursor": lines[-1].id if len(lines) == AUDIT_PAGE else None,
        "paged": before is not None,
    }


async def _nothing() -> list[Any]:
    return []


LOADERS: dict[str, Loader] = {
    "organization": _organization,
    "api-keys": _api_keys,
    "vault": _vault,
    "limits": _limits,
    "audit": _audit,
}
