"""Helicone's log message (`{log: {request, response}, authorization, heliconeMeta}`), as sent to
`POST /v1/log/request` by a separate gateway, turned into a `RequestRecord`.

Helicone ships bodies separately (S3); here they may ride along as `log.request.body` and
`log.response.body` (strings or JSON). Without bodies the reported usage and model are used.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from heliograph.domain.record import RequestRecord


class InvalidLogMessage(ValueError):
    """The message is not in Helicone's log shape; the text says what is missing."""


def record_from_message(message: Any, organization_id: str, key_id: str) -> RequestRecord:
    if not isinstance(message, dict) or not isinstance(message.get("log"), dict):
        raise InvalidLogMessage("expected an object with a 'log' object")
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
    record = RequestRecord(
        request_id=_uuid(request.get("id"), "log.request.id"),
        organization_id=organization_id,
        created_at=created_at,
        provider=str(request.get("provider") or "CUSTOM"),
        target_url=str(request.get("targetUrl") or ""),
        path=str(request.get("path") or ""),
        method="POST",
        request_body=_bytes(request.get("body")),
        status=_int(response.get("status"), "log.response.status"),
        response_body=_bytes(response.get("body")),
        response_created_at=_optional_moment(response.get("responseCreatedAt")) or created_at,
        latency_ms=_int(response.get("delayMs", 0), "log.response.delayMs"),
        time_to_first_token_ms=_optional_int(response.get("timeToFirstToken")),
        is_stream=bool(request.get("isStream")),
        user_id=str(request.get("userId") or ""),
        properties={str(k): str(v) for k, v in properties.items()},
        omit_request=bool(meta.get("omitRequestLog")),
        omit_response=bool(meta.get("omitResponseLog")),
        model_override=str(meta.get("modelOverride") or ""),
        api_key_id=key_id,
        reported=response,
    )
    record.session_id = record.properties.get("Helicone-Session-Id", "")
    record.session_path = record.properties.get("Helicone-Session-Path", "")
    record.session_name = record.properties.get("Helicone-Session-Name", "")
    return record


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
            return datetime.fromtimestamp(value / 1000, UTC)
        moment = datetime.fromisoformat(str(value))
    except (ValueError, OverflowError):
        raise InvalidLogMessage(f"{where} must be an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidLogMessage(f"{where} must be a number")
    return int(value)


def _optional_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    return orjson.dumps(body)
