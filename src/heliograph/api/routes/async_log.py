"""Helicone's async-logging routes: `/oai/v1/log`, `/anthropic/v1/log`, `/googleapis/v1/log`
and `/custom/v1/log`, where Helicone's manual loggers and LiteLLM's `helicone` callback send a
call they made themselves. Answered 200 with the request id (and `Helicone-Id`), once queued.
A large body is read and turned into a record in a worker thread (`api/offload.py`)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from heliograph.api.deps import ServicesDep, Writer
from heliograph.api.envelope import JsonResponse, ok
from heliograph.api.offload import off_the_loop
from heliograph.domain.record import RequestRecord
from heliograph.ingest.async_log import ROUTE_PROVIDERS, load_body, record_from_async_log
from heliograph.ingest.collector import collector_paused

# API paths outside `/v1/`: the dashboard answers these in the API's JSON envelope, not HTML.
ASYNC_LOG_PREFIXES = ("/oai/", "/anthropic/", "/googleapis/", "/custom/")

router = APIRouter(tags=["log"])
# The body is read raw (parsed off the event loop), so its schema is described here.
ASYNC_LOG_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "additionalProperties": True,
                    "description": "Helicone's async log: `providerRequest {url, json, meta}`, "
                    "`providerResponse {status, headers, json | textBody, cost?}`, optional "
                    "`timing {startTime, endTime, timeToFirstToken}`",
                    "title": "Body",
                    "type": "object",
                }
            }
        },
        "required": True,
    }
}


def _read(
    raw: bytes, headers: Iterable[tuple[str, str]], route: str, organization_id: str, key_id: str
) -> RequestRecord:
    with collector_paused(len(raw)):
        document = load_body(raw)
        provider, now = ROUTE_PROVIDERS[route], datetime.now(UTC)
        return record_from_async_log(document, headers, provider, organization_id, key_id, now)


async def _log(route: str, request: Request, caller: Writer, services: ServicesDep) -> JsonResponse:
    raw = await request.body()
    headers = list(request.headers.items())
    read = functools.partial(
        _read, raw, headers, route, caller.organization_id, caller.key_id or ""
    )
    record = await off_the_loop(read, len(raw))
    services.writer.put(record)
    response = ok({"request_id": record.request_id})
    response.headers["Helicone-Id"] = record.request_id
    return response


@router.post("/oai/v1/log", operation_id="logOpenAIAsync", openapi_extra=ASYNC_LOG_BODY)
async def log_openai(request: Request, caller: Writer, services: ServicesDep) -> JsonResponse:
    """A call to OpenAI (or an OpenAI-shaped API) logged by the caller."""
    return await _log("oai", request, caller, services)


@router.post("/anthropic/v1/log", operation_id="logAnthropicAsync", openapi_extra=ASYNC_LOG_BODY)
async def log_anthropic(request: Request, caller: Writer, services: ServicesDep) -> JsonResponse:
    """A call to Anthropic's Messages API logged by the caller."""
    return await _log("anthropic", request, caller, services)


@router.post("/googleapis/v1/log", operation_id="logGoogleAsync", openapi_extra=ASYNC_LOG_BODY)
async def log_google(request: Request, caller: Writer, services: ServicesDep) -> JsonResponse:
    """A call to Google's Gemini API logged by the caller."""
    return await _log("googleapis", request, caller, services)


@router.post("/custom/v1/log", operation_id="logCustomAsync", openapi_extra=ASYNC_LOG_BODY)
async def log_custom(request: Request, caller: Writer, services: ServicesDep) -> JsonResponse:
    """A call to any other model, with usage in one of Helicone's documented shapes."""
    return await _log("custom", request, caller, services)
