"""`POST /v1/log/request`: Helicone's log message, from a gateway running in another process;
`POST /v1/log/batch`: batches from Heliograph's own gateway processes, acknowledged (202) only
once they are durable, inserted or in the spool, so the sender may drop them."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from heliograph.api.deps import ServicesDep, Writer
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.ingest.log_message import InvalidLogMessage, record_from_message
from heliograph.ingest.wire import InvalidBatch, decode_records

router = APIRouter(prefix="/v1/log", tags=["log"])
log = logging.getLogger("heliograph.ingest")


@router.post("/request", operation_id="logRequest")
async def log_request(
    caller: Writer, services: ServicesDep, message: Annotated[dict[str, Any], Body()]
) -> JsonResponse:
    try:
        record = record_from_message(message, caller.organization_id, caller.key_id or "")
    except InvalidLogMessage as error:
        return fail(400, str(error))
    services.writer.put(record)
    return ok({"request_id": record.request_id}, status_code=202)


@router.post("/batch", operation_id="logBatch", include_in_schema=False)
async def log_batch(request: Request, services: ServicesDep) -> JsonResponse:
    """Batches shipped by Heliograph's own gateway processes, authenticated by the ingest token."""
    expected = services.settings.ingest_token
    given = request.headers.get("Authorization", "")
    if not expected or not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        return fail(401, "this endpoint takes the ingest token of Heliograph's gateway processes")
    try:
        records = decode_records(await request.body())
    except InvalidBatch as error:
        return fail(400, f"invalid batch: {error}")
    try:
        await services.writer.store_now(records)
    except OSError as error:  # neither the store nor the disk took it: the sender keeps it
        log.error("could not keep a shipped batch of %d records: %s", len(records), error)
        return fail(503, "the batch could not be stored; send it again later")
    return ok({"accepted": len(records)}, status_code=202)
