"""`POST /v1/log/request`: Helicone's log message, from a gateway running in another process;
`POST /v1/log/batch`: batches from Heliograph's own gateway processes, acknowledged (202) only
once they are durable, inserted or in the spool, so the sender may drop them. A log message is
read in a worker thread, as an async log is (`api/offload.py`)."""

from __future__ import annotations

import functools
import hmac
import logging
from typing import Any

from fastapi import APIRouter, Request

from heliograph.api.deps import ServicesDep, Writer
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.offload import off_the_loop
from heliograph.domain.record import RequestRecord
from heliograph.ingest.async_log import load_body
from heliograph.ingest.collector import collector_paused
from heliograph.ingest.log_message import record_from_message
from heliograph.ingest.wire import InvalidBatch, decode_records

router = APIRouter(prefix="/v1/log", tags=["log"])
log = logging.getLogger("heliograph.ingest")
# The body is read raw (parsed off the event loop), so its schema is described here.
MESSAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {"additionalProperties": True, "title": "Message", "type": "object"}
            }
        },
        "required": True,
    }
}


@router.post("/request", operation_id="logRequest", openapi_extra=MESSAGE_BODY)
async def log_request(request: Request, caller: Writer, services: ServicesDep) -> JsonResponse:
    raw = await request.body()
    read = functools.partial(_read, raw, caller.organization_id, caller.key_id or "")
    record = await off_the_loop(read, len(raw))  # a refused message is an `InvalidInput`: a 400
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


def _read(raw: bytes, organization_id: str, key_id: str) -> RequestRecord:
    with collector_paused(len(raw)):
        return record_from_message(load_body(raw), organization_id, key_id)
