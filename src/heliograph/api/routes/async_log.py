"""Helicone's async-logging routes: `/oai/v1/log`, `/anthropic/v1/log`, `/googleapis/v1/log`
and `/custom/v1/log`, where Helicone's manual loggers and LiteLLM's `helicone` callback send a
call they made themselves. Answered 200 with the request id (and `Helicone-Id`), once queued."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from heliograph.api.deps import ServicesDep, Writer
from heliograph.api.envelope import JsonResponse, ok
from heliograph.ingest.async_log import ROUTE_PROVIDERS, record_from_async_log

# API paths outside `/v1/`: the dashboard answers these in the API's JSON envelope, not HTML.
ASYNC_LOG_PREFIXES = ("/oai/", "/anthropic/", "/googleapis/", "/custom/")

router = APIRouter(tags=["log"])
AsyncLogBody = Annotated[
    dict[str, Any],
    Body(
        description="Helicone's async log: `providerRequest {url, json, meta}`, "
        "`providerResponse {status, headers, json | textBody, cost?}`, optional `timing "
        "{startTime, endTime, timeToFirstToken}`"
    ),
]


def _log(
    route: str, request: Request, caller: Writer, services: ServicesDep, body: dict[str, Any]
) -> JsonResponse:
    record = record_from_async_log(
        body,
        request.headers.items(),
        ROUTE_PROVIDERS[route],
        caller.organization_id,
        caller.key_id or "",
        datetime.now(UTC),
    )
    services.writer.put(record)
    response = ok({"request_id": record.request_id})
    response.headers["Helicone-Id"] = record.request_id
    return response


@router.post("/oai/v1/log", operation_id="logOpenAIAsync")
async def log_openai(
    request: Request, caller: Writer, services: ServicesDep, body: AsyncLogBody
) -> JsonResponse:
    """A call to OpenAI (or an OpenAI-shaped API) logged by the caller."""
    return _log("oai", request, caller, services, body)


@router.post("/anthropic/v1/log", operation_id="logAnthropicAsync")
async def log_anthropic(
    request: Request, caller: Writer, services: ServicesDep, body: AsyncLogBody
) -> JsonResponse:
    """A call to Anthropic's Messages API logged by the caller."""
    return _log("anthropic", request, caller, services, body)


@router.post("/googleapis/v1/log", operation_id="logGoogleAsync")
async def log_google(
    request: Request, caller: Writer, services: ServicesDep, body: AsyncLogBody
) -> JsonResponse:
    """A call to Google's Gemini API logged by the caller."""
    return _log("googleapis", request, caller, services, body)


@router.post("/custom/v1/log", operation_id="logCustomAsync")
async def log_custom(
    request: Request, caller: Writer, services: ServicesDep, body: AsyncLogBody
) -> JsonResponse:
    """A call to any other model, with usage in one of Helicone's documented shapes."""
    return _log("custom", request, caller, services, body)
