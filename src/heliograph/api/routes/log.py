"""`POST /v1/log/request`: Helicone's log message, from a gateway running in another process."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from heliograph.api.deps import IdentityDep, ServicesDep
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.ingest.log_message import InvalidLogMessage, record_from_message

router = APIRouter(prefix="/v1/log", tags=["log"])


@router.post("/request", operation_id="logRequest")
async def log_request(
    identity: IdentityDep, services: ServicesDep, message: Annotated[dict[str, Any], Body()]
) -> JsonResponse:
    try:
        record = record_from_message(message, identity.organization_id, identity.key_id)
    except InvalidLogMessage as error:
        return fail(400, str(error))
    services.writer.put(record)
    return ok({"request_id": record.request_id}, status_code=202)
