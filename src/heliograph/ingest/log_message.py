"""Helicone's log message (`{log: {request, response}, authorization, heliconeMeta}`), as sent to
`POST /v1/log/request` by a separate gateway, turned into a `RequestRecord`.

Helicone ships bodies separately (S3); here they may ride along as `log.request.body` and
`log.response.body` (strings or JSON). Without bodies the reported usage and model are used.
Every string is cleaned here (valid UTF-8, no NUL), so nothing a sender writes can poison ingest.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from heliograph.domain.errors import InvalidInput
from heliograph.domain.json_values import (
    EARLIEST,
    INT32_MAX,
    INT64_MAX,
    LATEST,
    MAX_JSON_DEPTH,
    clean_json,
    is_number,
    nested_deeper_than,
)
from heliograph.domain.pricing import MAX_COST_USD
from heliograph.domain.record import MAX_PROPERTIES, Attribution, RequestRecord
from heliograph.domain.text import clean_text


class InvalidLogMessage(InvalidInput):
    """The message is not in Helicone's log shape; the text says what is missing."""


def record_from_message(message: Any, organization_id: str, key_id: str) -> RequestRecord:
    if not isinstance(message, dict) or not isinstance(message.get("log"), dict):
        raise InvalidLogMessage("expected an object with a 'log' object")
    if nested_deeper_than(message, MAX_JSON_DEPTH):
        raise InvalidLogMessage(f"the message is nested more than {MAX_JSON_DEPTH} levels deep")
    log = message["log"]
    request, response = log.get("request"), log.get("response")
    if not isinstance(request, dict) or not isinstance(response, dict):
        raise InvalidLogMessage("log needs 'request' and 'response' objects")
    meta = message.get("heliconeMeta")
    meta = meta if isinstance(meta, dict) else {}
    created_at = _moment(request.get("requestCreatedAt"), "log.request.requestCreatedAt")
    properties = request.get("properties") or {}
    if not isinstance(properties, dict):
        raise InvalidLogMessage("log.request.properties must be an object")
    custom = [key for key in properties if not str(key).startswith("Helicone-Session-")]
    if len(custom) > MAX_PROPERTIES:  # as many as the gateway takes in headers
        raise InvalidLogMessage(f"log.request.properties holds at most {MAX_PROPERTIES} properties")
    cleaned = {_text(key): _text(value) for key, value in properties.items()}
    return RequestRecord(
        request_id=_uuid(request.get("id"), "log.request.id"),
        organization_id=organization_id,
        created_at=created_at,
        provider=_text(request.get("provider")) or "CUSTOM",
        target_url=_text(request.get("targetUrl")),
        path=_text(request.get("path")),
        method="POST",
        request_body=_bytes(request.get("body")),
        status=_int(response.get("status"), "log.response.status", -INT32_MAX, INT32_MAX),
        response_body=_bytes(response.get("body")),
        response_created_at=_optional_moment(response.get("responseCreatedAt")) or created_at,
        latency_ms=_int(response.get("delayMs", 0), "log.response.delayMs", 0, INT64_MAX),
        time_to_first_token_ms=_optional_int(response.get("timeToFirstToken")),
        is_stream=bool(request.get("isStream")),
        attribution=Attribution(
            user_id=_text(request.get("userId")),
            properties=cleaned,
            session_id=cleaned.get("Helicone-Session-Id", ""),
            session_path=cleaned.get("Helicone-Session-Path", ""),
            session_name=cleaned.get("Helicone-Session-Name", ""),
            omit_request=bool(meta.get("omitRequestLog")),
            omit_response=bool(meta.get("omitResponseLog")),
            model_override=_model_override(meta),
        ),
        api_key_id=key_id,
        client_request_id=True,  # the sender chose the id, so it may come again
        reported=_reported(request, response, meta),
    )


def _model_override(meta: dict[str, Any]) -> str:
    """The model the row is stored under whatever the bodies say: the AI gateway's registry
    name (`gatewayModel`, which Helicone stores over any other), else `modelOverride`."""
    return _text(meta.get("gatewayModel")) or _text(meta.get("modelOverride"))


def _reported(
    request: dict[str, Any], response: dict[str, Any], meta: dict[str, Any]
) -> dict[str, object]:
    """What the sender measured (usage, cost, model), for when no body says it; the body itself
    is not kept twice. The model is the response's, else the request's, else the provider's
    own id for it."""
    reported = {str(key): clean_json(value) for key, value in response.items() if key != "body"}
    cost = reported.get("cost")
    if is_number(cost) and not 0 <= cost <= MAX_COST_USD:  # type: ignore[operator]
        raise InvalidLogMessage(
            f"log.response.cost must be a number of dollars, 0 to {MAX_COST_USD}"
        )
    if not isinstance(reported.get("model"), str) or not reported.get("model"):
        reported["model"] = _text(request.get("model") or meta.get("providerModelId"))
    return reported


def _text(value: Any) -> str:
    return "" if value is None else clean_text(value if isinstance(value, str) else str(value))


def _uuid(value: Any, where: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidLogMessage(f"{where} must be a UUID") from None


def _optional_moment(value: Any) -> datetime | None:
    return None if value is None else _moment(value, "log.response.responseCreatedAt")


def _moment(value: Any, where: str) -> datetime:
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value / 1000, UTC)
        else:
            moment = datetime.fromisoformat(clean_text(str(value)))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidLogMessage(f"{where} must be an ISO 8601 time") from None
    if not EARLIEST <= moment < LATEST:
        raise InvalidLogMessage(f"{where} must be between 1970 and 2200")
    return moment


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidLogMessage(f"{where} must be a number")
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidLogMessage(f"{where} must be a number from {low} to {high}")
    return int(value)


def _optional_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if math.isfinite(value) and 0 <= value <= INT64_MAX else None


def _bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return clean_text(body).encode()
    return orjson.dumps(clean_json(body))
