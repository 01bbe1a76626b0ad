"""`/v1/settings/redaction`: which kinds of personal data are redacted from stored bodies (a change
is in the audit log). Plain `def` routes run on FastAPI's thread pool, so app DB calls never block
the event loop."""

from __future__ import annotations

from fastapi import APIRouter, Request

from heliograph.api.deps import Configurer, Reader, ServicesDep, actor_of
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.schemas import RedactionBody
from heliograph.domain.redaction import KINDS, UnknownKind

router = APIRouter(prefix="/v1/settings", tags=["settings"])


@router.get("/redaction", operation_id="getRedaction")
def get_redaction(caller: Reader, services: ServicesDep) -> JsonResponse:
    kinds = services.redaction.kinds(caller.organization_id)
    return ok({"kinds": list(kinds), "available": list(KINDS)})


@router.put("/redaction", operation_id="setRedaction")
def set_redaction(
    body: RedactionBody, request: Request, caller: Configurer, services: ServicesDep
) -> JsonResponse:
    try:
        kinds = services.redaction.set_kinds(caller.organization_id, body.kinds)
    except UnknownKind as unknown:
        return fail(400, str(unknown))
    target = ("organization", caller.organization_id)
    details = {"kinds": list(kinds)}
    actor = actor_of(request, caller)
    services.audit.record(actor, "settings.redaction", caller.organization_id, target, details)
    return ok({"kinds": list(kinds), "available": list(KINDS)})
