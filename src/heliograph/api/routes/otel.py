"""OpenTelemetry ingest: `POST /v1/traces` (OTLP/HTTP, as a collector takes it) and Helicone's
`POST /v1/trace/log`. The LLM spans of an export become requests (`ingest/otlp.py`); the answer
is a collector's, in the request's own content type, counting any spans refused."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Request, Response

from heliograph.api.deps import ServicesDep, Writer
from heliograph.api.offload import off_the_loop
from heliograph.domain.access import Caller
from heliograph.ingest.collector import collector_paused
from heliograph.ingest.otlp import (
    JSON_TYPE,
    Converted,
    decode_export,
    encode_response,
    media_type,
    records_from_export,
)

router = APIRouter(tags=["otel"])

# The body is read raw (protobuf or JSON, maybe gzipped), so it is described here, not derived.
EXPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An OTLP ExportTraceServiceRequest; Content-Encoding gzip is accepted.",
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {"type": "object", "properties": {"resourceSpans": {"type": "array"}}}
            },
        },
    }
}
EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An OTLP ExportTraceServiceResponse; partialSuccess counts refused spans",
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        },
    },
    415: {
        "description": "A Content-Type or Content-Encoding that OTLP/HTTP does not use",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    },
}


@router.post(
    "/v1/traces",
    operation_id="exportTraces",
    openapi_extra=EXPORT_BODY,
    responses=EXPORT_RESPONSES,
    response_class=Response,
)
async def export_traces(request: Request, caller: Writer, services: ServicesDep) -> Response:
    """Take an OTLP trace export: each LLM span is logged as one request."""
    return await _take(request, caller, services)


@router.post(
    "/v1/trace/log",
    operation_id="logTrace",
    openapi_extra=EXPORT_BODY,
    responses=EXPORT_RESPONSES,
    response_class=Response,
)
async def log_trace(request: Request, caller: Writer, services: ServicesDep) -> Response:
    """Helicone's name for the same thing: an OTLP export (usually JSON `resourceSpans`)."""
    return await _take(request, caller, services)


async def _take(request: Request, caller: Caller, services: ServicesDep) -> Response:
    media = media_type(request.headers.get("content-type", ""))
    body = await request.body()
    encoding = request.headers.get("content-encoding", "")
    # Decoding and converting a large export is CPU work: kept off the event loop.
    convert = functools.partial(_convert, body, media, encoding, caller)
    converted = await off_the_loop(convert)
    for record in converted.records:
        services.writer.put(record)
    return Response(encode_response(converted, media), media_type=_answer_type(media))


def _convert(body: bytes, media: str, encoding: str, caller: Caller) -> Converted:
    with collector_paused(len(body)):  # the decoded size is unknown yet; gzip only grows it
        export = decode_export(body, media, encoding)
        return records_from_export(export, caller.organization_id, caller.key_id or "")


def _answer_type(media: str) -> str:
    return JSON_TYPE if media == JSON_TYPE else "application/x-protobuf"
