"""Turns a captured `RequestRecord` into a `request_response` row (`RequestRow`): parses bodies,
reads model, usage and cost (`providers/costing.py`, at the organization's price overrides as
they are when the row is built), redacts and places the bodies. Every text column is cleaned
(valid UTF-8, no NUL) and cut to its cap, and every count kept in its column's range, whatever the
record holds: every source (gateway, log messages, async logs, OTLP) passes through here, and a
row is never refused for a value, only trimmed. Pure CPU work, run on the writer's thread."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from heliograph.domain.json_values import INT64_MAX
from heliograph.domain.pricing import (
    MAX_MODEL_CHARS,
    MAX_PROVIDER_CHARS,
    PriceOverride,
    PriceStatus,
)
from heliograph.domain.record import (
    MAX_ATTRIBUTION_CHARS,
    MAX_ERROR_CHARS,
    MAX_PROPERTY_NAME_CHARS,
    MAX_PROPERTY_VALUE_CHARS,
    MAX_STORED_PROPERTIES,
    MAX_URL_CHARS,
    RequestRecord,
)
from heliograph.domain.redaction import Redactor
from heliograph.domain.request_row import RequestRow
from heliograph.domain.text import cut_text
from heliograph.domain.times import STORED_FORMAT
from heliograph.ingest.collector import collector_paused
from heliograph.providers.base import Provider
from heliograph.providers.costing import cost_of
from heliograph.providers.encoding import decode_body
from heliograph.providers.sse import load_json
from heliograph.state.bodies import (
    body_document,
    provider_body_document,
    write_body_file,
    write_provider_bodies,
)

PREVIEW_BYTES = 64 * 1024
# Each text column's cap in characters; `build` cleans and cuts each (the edges clean too, but
# one bad value costs a batch, and one huge one lands in every list, rollup key and metric).
# Models and providers as price overrides take them; URLs as an async log takes them (a header
# line is at most 8 KiB too); user and session values as the API's filters take them.
TEXT_COLUMNS = {
    "provider": MAX_PROVIDER_CHARS,
    "model": MAX_MODEL_CHARS,
    "request_model": MAX_MODEL_CHARS,
    "response_model": MAX_MODEL_CHARS,
    "model_override": MAX_MODEL_CHARS,
    "target_url": MAX_URL_CHARS,
    "request_path": MAX_URL_CHARS,
    "method": 16,
    "user_id": MAX_ATTRIBUTION_CHARS,
    "session_id": MAX_ATTRIBUTION_CHARS,
    "session_path": MAX_ATTRIBUTION_CHARS,
    "session_name": MAX_ATTRIBUTION_CHARS,
    "api_key_id": 256,  # our own key ids, far shorter
    "error": MAX_ERROR_CHARS,
}


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
        with collector_paused(len(record.request_body) + len(record.response_body)):
            return self._build(record)

    def _build(self, record: RequestRecord) -> BuiltRow:
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
            "provider": column_text(record.provider, "provider"),
            "model": column_text(cost.model, "model"),
            "request_model": column_text(cost.request_model, "request_model"),
            "response_model": column_text(cost.parsed.model, "response_model"),
            "model_override": column_text(attribution.model_override, "model_override"),
            "target_url": column_text(record.target_url, "target_url"),
            "request_path": column_text(record.path, "request_path"),
            "method": column_text(record.method, "method"),
            "status": record.status,
            "latency": record.latency_ms,
            "time_to_first_token": record.time_to_first_token_ms,
            "is_stream": record.is_stream,
            "user_id": column_text(attribution.user_id or _body_user(request_json), "user_id"),
            "properties": clean_properties(attribution.properties),
            "session_id": column_text(attribution.session_id, "session_id"),
            "session_path": column_text(attribution.session_path, "session_path"),
            "session_name": column_text(attribution.session_name, "session_name"),
            "prompt_tokens": _optional_count(usage.input_tokens),
            "completion_tokens": _optional_count(usage.output_tokens),
            "prompt_cache_read_tokens": _count(usage.cache_read_tokens),
            "prompt_cache_write_tokens": _count(usage.cache_write_tokens),
            "reasoning_tokens": _count(usage.reasoning_tokens),
            "prompt_audio_tokens": _count(usage.audio_input_tokens),
            "completion_audio_tokens": _count(usage.audio_output_tokens),
            "cost": price.cost_nano_usd,
            "pricing_status": price.status,
            "request_body_omitted": attribution.omit_request,
            "response_body_omitted": attribution.omit_response,
            "api_key_id": column_text(record.api_key_id, "api_key_id"),
            "error": column_text(record.error, "error"),
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
        if record.provider_request_body or record.provider_response_body:
            self._add_provider_bodies(record, redactor)

    def _add_provider_bodies(self, record: RequestRecord, redactor: Redactor | None) -> None:
        """The provider's own request and response, beside a translated request's, in a file
        of their own: kept, omitted and redacted as the bodies they were translated from."""
        attribution = record.attribution
        request = b"" if attribution.omit_request else record.provider_request_body
        response = b"" if attribution.omit_response else record.provider_response_body
        if redactor is not None:
            request, response = redactor.redact_bytes(request), redactor.redact_bytes(response)
        if not request and not response:
            return
        document = provider_body_document(request, response)
        with contextlib.suppress(ValueError):  # ids that are not UUIDs: the store refuses them
            request_id = _canonical_id(record.request_id)
            write_provider_bodies(self._body_dir, record.organization_id, request_id, document)

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
        return cut_text(request_id, 64)


def column_text(value: object, column: str) -> str:
    """`value` as the text column `column` stores it: cleaned, cut to the column's cap."""
    return cut_text(value, TEXT_COLUMNS[column])


def clean_properties(properties: object) -> dict[str, str]:
    """At most `MAX_STORED_PROPERTIES`, the first ones, names and values cut and cleaned; cut
    names that collide keep the last value."""
    if not isinstance(properties, Mapping):
        return {}
    kept = itertools.islice(properties.items(), MAX_STORED_PROPERTIES)
    return {
        cut_text(key, MAX_PROPERTY_NAME_CHARS): cut_text(value, MAX_PROPERTY_VALUE_CHARS)
        for key, value in kept
    }


def _count(value: int) -> int:
    """A token count in its Int64 column; a negative one (a sender's bug) is 0."""
    return min(max(value, 0), INT64_MAX)


def _optional_count(value: int | None) -> int | None:
    return None if value is None else _count(value)
