"""Turns a captured `RequestRecord` into a `request_response` row (`RequestRow`): parses bodies,
reads model, usage and cost (`providers/costing.py`, at the organization's price overrides as
they are when the row is built), redacts and places the bodies. Every text column is cleaned
(valid UTF-8, no NUL) whatever the record holds. Pure CPU work, run on the writer's thread."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from heliograph.domain.pricing import PriceOverride, PriceStatus
from heliograph.domain.record import RequestRecord
from heliograph.domain.redaction import Redactor
from heliograph.domain.request_row import RequestRow
from heliograph.domain.text import clean_text
from heliograph.domain.times import STORED_FORMAT
from heliograph.providers.base import Provider
from heliograph.providers.costing import cost_of
from heliograph.providers.encoding import decode_body
from heliograph.providers.sse import load_json
from heliograph.state.bodies import body_document, write_body_file

PREVIEW_BYTES = 64 * 1024
# The text columns; `build` cleans each (the edges clean too, but one bad value costs a batch).
TEXT_COLUMNS = (
    "provider", "model", "request_model", "response_model", "model_override", "target_url",
    "request_path", "method", "user_id", "session_id", "session_path", "session_name",
    "api_key_id", "error",
)  # fmt: skip


def timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.strftime(STORED_FORMAT)[:-3]


RedactorFor = Callable[[str], Redactor | None]
OverridesFor = Callable[[str], Sequence[PriceOverride]]  # an organization's price overrides


@dataclass(slots=True)
class BuiltRow:
    """A row, and beside it the body file it still needs once its id is settled: the bodies of
    a row too large for it, whose id the caller chose and may yet change."""

    row: RequestRow
    deferred_bodies: bytes | None = None


class RowBuilder:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        body_dir: Path,
        max_body: int,
        redactor_for: RedactorFor | None = None,
        overrides_for: OverridesFor | None = None,
    ) -> None:
        self._providers = providers
        self._body_dir = body_dir
        self._max_body = max_body
        self._redactor_for = redactor_for
        self._overrides_for = overrides_for

    def build(self, record: RequestRecord) -> BuiltRow:
        response_body = decode_body(record.response_body, record.response_encoding)
        request_json = load_json(record.request_body) if record.request_body else None
        overrides = self._overrides_for(record.organization_id) if self._overrides_for else ()
        provider = self._providers.get(record.provider)
        cost = cost_of(record, provider, response_body, request_json, overrides)
        usage, price = cost.usage, cost.price
        attribution = record.attribution
        row: RequestRow = {
            "request_id": _canonical_id(record.request_id),
            "organization_id": record.organization_id,
            "request_created_at": record.created_at.strftime(STORED_FORMAT)[:-3],
            "response_created_at": timestamp(record.response_created_at),
            "provider": _text(record.provider),
            "model": cost.model,
            "request_model": _text(cost.request_model),
            "response_model": _text(cost.parsed.model),
            "model_override": _text(attribution.model_override),
            "target_url": _text(record.target_url),
            "request_path": _text(record.path),
            "method": _text(record.method),
            "status": record.status,
            "latency": record.latency_ms,
            "time_to_first_token": record.time_to_first_token_ms,
            "is_stream": record.is_stream,
            "user_id": _text(attribution.user_id or _body_user(request_json)),
            "properties": _clean_properties(attribution.properties),
            "session_id": _text(attribution.session_id),
            "session_path": _text(attribution.session_path),
            "session_name": _text(attribution.session_name),
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "prompt_cache_read_tokens": usage.cache_read_tokens,
            "prompt_cache_write_tokens": usage.cache_write_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "prompt_audio_tokens": usage.audio_input_tokens,
            "completion_audio_tokens": usage.audio_output_tokens,
            "cost": price.cost_nano_usd,
            "pricing_status": price.status,
            "request_body_omitted": attribution.omit_request,
            "response_body_omitted": attribution.omit_response,
            "api_key_id": _text(record.api_key_id),
            "error": _text(record.error),
            "attempts": min(record.attempts, 255),
            "cache_enabled": record.cache_enabled,
            "storage_location": "clickhouse",
        }
        if record.cache_reference_id:  # a replay: nothing was spent, this much was saved
            row["cache_reference_id"] = _canonical_id(record.cache_reference_id)
            row["cache_saved_cost"] = price.cost_nano_usd
            row["cache_saved_latency"] = max(
                record.cache_original_latency_ms - record.latency_ms, 0
            )
            row["cost"], row["pricing_status"] = 0, PriceStatus.CACHE_HIT
        built = BuiltRow(row)
        self._add_bodies(built, record, request_json, response_body)
        return built

    def _add_bodies(
        self, built: BuiltRow, record: RequestRecord, request_json: Any, response: bytes
    ) -> None:
        row, attribution = built.row, record.attribution
        request = (
            b"" if attribution.omit_request else _searchable(record.request_body, request_json)
        )
        response = b"" if attribution.omit_response else response
        redactor = self._redactor_for(record.organization_id) if self._redactor_for else None
        if redactor is not None:  # before anything is stored, in the row or in a body file
            request, response = redactor.redact_bytes(request), redactor.redact_bytes(response)
        if len(request) + len(response) > self._max_body:
            document = body_document(request, response)
            if record.client_request_id:  # its id may still change: written once it is settled
                built.deferred_bodies = document
            else:
                write_body_file(self._body_dir, record.organization_id, record.request_id, document)
            row["storage_location"] = "file"
            request, response = request[:PREVIEW_BYTES], response[:PREVIEW_BYTES]
        row["request_body"] = request.decode("utf-8", "replace")
        row["response_body"] = response.decode("utf-8", "replace")

    def write_deferred_bodies(self, row: RequestRow, document: bytes) -> None:
        """Write the body file of a row whose id was settled after it was built."""
        with contextlib.suppress(ValueError):  # a row without UUIDs is refused by the store
            write_body_file(self._body_dir, row["organization_id"], row["request_id"], document)


def _searchable(body: bytes, parsed: Any) -> bytes:
    """JSON re-encoded with real UTF-8 (not `\\u00fc` escapes) so body search finds any text."""
    if parsed is None or b"\\u" not in body:
        return body
    return orjson.dumps(parsed)


def _body_user(request_json: Any) -> str:
    if isinstance(request_json, dict) and isinstance(request_json.get("user"), str):
        return str(request_json["user"])
    return ""


def _canonical_id(request_id: str) -> str:
    """Ids in one spelling, so a reused id is recognised; anything else is left to the store."""
    try:
        return str(uuid.UUID(request_id))
    except (ValueError, TypeError, AttributeError):
        return _text(request_id)


def _text(value: object) -> str:
    return "" if value is None else clean_text(value if isinstance(value, str) else str(value))


def _clean_properties(properties: object) -> dict[str, str]:
    if not isinstance(properties, Mapping):
        return {}
    return {_text(key): _text(value) for key, value in properties.items()}
