"""Turns a captured `RequestRecord` into a `request_response` row: parses bodies, reads model and
usage with the provider's parser, prices the usage. Every text column is cleaned (valid UTF-8, no
NUL) whatever the record holds. Pure CPU work, run on the writer's thread."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import zstandard

from heliograph.domain.pricing import PRICED, Price, price_usage, usd_to_nano
from heliograph.domain.record import RequestRecord
from heliograph.domain.redaction import Redactor
from heliograph.domain.text import clean_text
from heliograph.domain.usage import Usage
from heliograph.providers import openai
from heliograph.providers.base import Parsed, Provider, request_model
from heliograph.providers.encoding import decode_body
from heliograph.providers.sse import load_json

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
PREVIEW_BYTES = 64 * 1024
CACHE_HIT = "cache_hit"
# Bodies too large for the row, kept in it until its id is settled (caller-chosen ids only).
DEFERRED_BODIES = "_deferred_bodies"
TEXT_COLUMNS = (
    "provider", "model", "request_model", "response_model", "model_override", "target_url",
    "request_path", "method", "user_id", "session_id", "session_path", "session_name",
    "api_key_id", "error",
)  # fmt: skip


def timestamp(value: Any) -> str | None:
    return None if value is None else value.strftime(TIMESTAMP_FORMAT)[:-3]


RedactorFor = Callable[[str], Redactor | None]


class RowBuilder:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        body_dir: Path,
        max_body: int,
        redactor_for: RedactorFor | None = None,
    ) -> None:
        self._providers = providers
        self._body_dir = body_dir
        self._max_body = max_body
        self._redactor_for = redactor_for

    def build(self, record: RequestRecord) -> dict[str, Any]:
        response_body = decode_body(record.response_body, record.response_encoding)
        request_json = load_json(record.request_body) if record.request_body else None
        parsed = self._parse(record, response_body)
        model_from_request = request_model(record.path, request_json)
        model = _text(
            record.model_override
            or parsed.model
            or model_from_request
            or _reported_model(record.reported)
        )
        usage, price = self._usage_and_price(record, parsed, model)
        user_id = record.user_id or _body_user(request_json)
        row: dict[str, Any] = {
            "request_id": _canonical_id(record.request_id),
            "organization_id": record.organization_id,
            "request_created_at": timestamp(record.created_at),
            "response_created_at": timestamp(record.response_created_at),
            "provider": record.provider,
            "model": model,
            "request_model": model_from_request,
            "response_model": parsed.model,
            "model_override": record.model_override,
            "target_url": record.target_url,
            "request_path": record.path,
            "method": record.method,
            "status": record.status,
            "latency": record.latency_ms,
            "time_to_first_token": record.time_to_first_token_ms,
            "is_stream": record.is_stream,
            "user_id": user_id,
            "properties": _clean_properties(record.properties),
            "session_id": record.session_id,
            "session_path": record.session_path,
            "session_name": record.session_name,
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "prompt_cache_read_tokens": usage.cache_read_tokens,
            "prompt_cache_write_tokens": usage.cache_write_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "prompt_audio_tokens": usage.audio_input_tokens,
            "completion_audio_tokens": usage.audio_output_tokens,
            "cost": price.cost_nano_usd,
            "pricing_status": price.status,
            "request_body_omitted": record.omit_request,
            "response_body_omitted": record.omit_response,
            "api_key_id": record.api_key_id,
            "error": record.error,
            "attempts": min(record.attempts, 255),
            "cache_enabled": record.cache_enabled,
        }
        if record.cache_reference_id:  # a replay: nothing was spent, this much was saved
            row["cache_reference_id"] = _canonical_id(record.cache_reference_id)
            row["cache_saved_cost"] = price.cost_nano_usd
            row["cache_saved_latency"] = max(
                record.cache_original_latency_ms - record.latency_ms, 0
            )
            row["cost"], row["pricing_status"] = 0, CACHE_HIT
        for column in TEXT_COLUMNS:  # defensive: edges clean too, but one bad value costs a batch
            row[column] = _text(row[column])
        self._add_bodies(row, record, request_json, response_body)
        return row

    def _parse(self, record: RequestRecord, response_body: bytes) -> Parsed:
        provider = self._providers.get(record.provider)
        parse = provider.parse if provider else openai.parse
        if not response_body:
            return Parsed()
        return parse(response_body, record.is_stream)

    def _usage_and_price(
        self, record: RequestRecord, parsed: Parsed, model: str
    ) -> tuple[Usage, Price]:
        usage = parsed.usage
        if not usage.is_known and record.reported:
            usage = _reported_usage(record.reported)
        reported_cost = record.reported.get("cost") if record.reported else None
        if isinstance(reported_cost, int | float) and not isinstance(reported_cost, bool):
            return usage, Price(usd_to_nano(Decimal(str(reported_cost))), PRICED)
        provider = self._providers.get(record.provider)
        return usage, price_usage(usage, model, provider.price_id if provider else None)

    def _add_bodies(
        self, row: dict[str, Any], record: RequestRecord, request_json: Any, response: bytes
    ) -> None:
        request = b"" if record.omit_request else _searchable(record.request_body, request_json)
        response = b"" if record.omit_response else response
        redactor = self._redactor_for(record.organization_id) if self._redactor_for else None
        if redactor is not None:  # before anything is stored, in the row or in a body file
            request, response = redactor.redact_bytes(request), redactor.redact_bytes(response)
        row["storage_location"] = "clickhouse"
        if len(request) + len(response) > self._max_body:
            if record.client_request_id:  # its id may still change: written once it is settled
                row[DEFERRED_BODIES] = _body_document(request, response).decode()
            else:
                self._write_body_file(record.organization_id, record.request_id, request, response)
            row["storage_location"] = "file"
            request, response = request[:PREVIEW_BYTES], response[:PREVIEW_BYTES]
        row["request_body"] = request.decode("utf-8", "replace")
        row["response_body"] = response.decode("utf-8", "replace")

    def _write_body_file(
        self, organization_id: str, request_id: str, request: bytes, response: bytes
    ) -> None:
        self._write_document(organization_id, request_id, _body_document(request, response))

    def write_deferred_bodies(self, row: dict[str, Any]) -> None:
        """Write the body file of a row whose id was settled after it was built."""
        document = row.pop(DEFERRED_BODIES, None)
        if isinstance(document, str):
            with contextlib.suppress(ValueError):  # a row without UUIDs is refused by the store
                self._write_document(row["organization_id"], row["request_id"], document.encode())

    def _write_document(self, organization_id: str, request_id: str, document: bytes) -> None:
        # Ids name the file: only UUIDs (ValueError otherwise), so it stays under `body_dir`.
        path = body_path(self._body_dir, _uuid(organization_id), _uuid(request_id))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(zstandard.ZstdCompressor(level=3).compress(document))


def _body_document(request: bytes, response: bytes) -> bytes:
    return orjson.dumps(
        {
            "request_body": request.decode("utf-8", "replace"),
            "response_body": response.decode("utf-8", "replace"),
        }
    )


def body_path(body_dir: Path, organization_id: str, request_id: str) -> Path:
    """Where bodies too large for the row are kept; ids are UUIDs, so the path is safe."""
    return body_dir / organization_id / f"{request_id}.json.zst"


def read_body_file(body_dir: Path, organization_id: str, request_id: str) -> dict[str, str]:
    path = body_path(body_dir, organization_id, request_id)
    document = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
    loaded: dict[str, str] = orjson.loads(document)
    return loaded


def _searchable(body: bytes, parsed: Any) -> bytes:
    """JSON re-encoded with real UTF-8 (not `\\u00fc` escapes) so body search finds any text."""
    if parsed is None or b"\\u" not in body:
        return body
    return orjson.dumps(parsed)


def _body_user(request_json: Any) -> str:
    if isinstance(request_json, dict) and isinstance(request_json.get("user"), str):
        return str(request_json["user"])
    return ""


def _reported_model(reported: Mapping[str, object] | None) -> str:
    """The model a log message named when it carried no bodies to read it from."""
    model = reported.get("model") if reported else None
    return model if isinstance(model, str) else ""


def _uuid(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("not a UUID")
    return str(uuid.UUID(value))


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


def _reported_usage(reported: Mapping[str, object]) -> Usage:
    def count(key: str) -> int | None:
        value = reported.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return Usage(
        input_tokens=count("promptTokens"),
        output_tokens=count("completionTokens"),
        cache_read_tokens=count("promptCacheReadTokens") or 0,
        cache_write_tokens=count("promptCacheWriteTokens") or 0,
        reasoning_tokens=count("reasoningTokens") or 0,
        audio_input_tokens=count("promptAudioTokens") or 0,
        audio_output_tokens=count("completionAudioTokens") or 0,
    )
