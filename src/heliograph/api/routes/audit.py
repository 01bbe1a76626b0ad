"""`/v1/audit`: the organization's audit log for its admins and owners (keys are refused), newest
first, filtered by action, actor, target and time, and paged with an opaque cursor."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from heliograph.api.deps import AuditReader, ServicesDep
from heliograph.api.envelope import JsonResponse, ok
from heliograph.domain.errors import InvalidInput
from heliograph.domain.times import as_utc
from heliograph.services.audit import MAX_PAGE, AuditLine, AuditQuery

router = APIRouter(prefix="/v1/audit", tags=["audit"])
DEFAULT_PAGE = 100


def _cursor(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise InvalidInput("cursor must be the next_cursor of a previous page") from None


def _shape(line: AuditLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "created_at": as_utc(line.created_at).isoformat(timespec="milliseconds"),
        "action": line.action,
        "actor": line.actor,
        "actor_user_id": line.actor_user_id,
        "actor_key_id": line.actor_key_id,
        "target_type": line.target_type,
        "target_id": line.target_id,
        "details": line.details,
        "address": line.address,
        "user_agent": line.user_agent,
    }


@router.get("", operation_id="listAuditLog")
async def list_audit_log(
    caller: AuditReader,
    services: ServicesDep,
    action: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description='exact, or a prefix ending in "."'),
    ] = None,
    actor: Annotated[
        str | None, Query(min_length=1, max_length=36, description="a user id")
    ] = None,
    target: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=64, description="a page's next_cursor")] = None,
) -> JsonResponse:
    """Lines newest first; `next_cursor` (when not null) asks for the page after this one."""
    since = None if since is None else as_utc(since)
    until = None if until is None else as_utc(until)
    if since is not None and until is not None and since >= until:
        raise InvalidInput("since must be before until")
    query = AuditQuery(
        caller.organization_id,
        action=action,
        actor_user_id=actor,
        target_id=target,
        since=since,
        until=until,
        limit=limit,
        before=_cursor(cursor),
    )
    lines = await run_in_threadpool(services.audit.query, query)
    next_cursor = lines[-1].id if len(lines) == limit else None
    return ok({"lines": [_shape(line) for line in lines], "next_cursor": next_cursor})
