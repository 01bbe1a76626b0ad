"""Helicone's exported rows in Heliograph's shapes: a `request_response_rmt` row (as its SQL
console download, `clickhouse-client --format CSVWithNames` or `JSONEachRow` print it) becomes a
`request_response` row with its scores, and a `helicone_api_keys` row a key to import. Values come
as JSON values or as ClickHouse's text forms (`\\N`, `{'k':'v'}` maps); every text is cleaned and
every number bounded, so a row either maps completely or is refused with a reason. Pure: no I/O.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from heliograph.domain.access import KeyPermissions
from heliograph.domain.errors import InvalidInput
from heliograph.domain.json_values import EARLIEST, INT32_MAX, INT64_MAX, LATEST
from heliograph.domain.money import NANO_PER_USD
from heliograph.domain.pricing import MAX_COST_USD, PriceStatus
from heliograph.domain.redaction import Redactor
from heliograph.domain.request_row import RequestRow
from heliograph.domain.text import clean_text
from heliograph.domain.times import STORED_FORMAT
from heliograph.ingest.rows import clean_properties, column_text
from heliograph.state.bodies import body_document

# Without these a file is not a `request_response_rmt` export at all.
REQUEST_COLUMNS = ("request_id", "request_created_at", "status", "model", "provider")
KEY_COLUMNS = ("api_key_hash",)
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
PREVIEW_BYTES = 64 * 1024  # as ingest keeps in the row when the bodies go to a file
SESSION_PROPERTIES = ("Helicone-Session-Id", "Helicone-Session-Path", "Helicone-Session-Name")
# Helicone's `cost` is nano-dollars; more than any one request costs is stored unpriced, as
# ingest stores a cost it computes (`domain.pricing.priced`).
MAX_COST_NANO_USD = int(MAX_COST_USD * NANO_PER_USD)


class RefusedRow(InvalidInput):
    """The row cannot be imported; the message names the column and what is wrong."""


@dataclass(slots=True)
class ImportedRequest:
    """A mapped request: its row, the body document to keep in a file when the bodies are too
    large for the row, its scores, and the version Helicone gave it (`updated_at`)."""

    row: RequestRow
    body_file: bytes | None = None
    scores: dict[str, float] = field(default_factory=dict)
    version: str = ""

    @property
    def total_tokens(self) -> int:
        row = self.row
        return (
            (row["prompt_tokens"] or 0)
            + (row["completion_tokens"] or 0)
            + row["prompt_cache_read_tokens"]
            + row["prompt_cache_write_tokens"]
            + row["reasoning_tokens"]
        )


@dataclass(frozen=True, slots=True)
class ImportedKey:
    key_hash: str
    name: str
    permissions: KeyPermissions
    created_at: datetime


def request_from_helicone(
    source: Mapping[str, Any],
    organization_id: str,
    max_body_bytes: int,
    redactor: Redactor | None = None,
) -> ImportedRequest:
    """The Heliograph row for one Helicone row, under `organization_id`; `RefusedRow` if a value
    cannot be read."""
    properties = clean_properties(parse_map(source.get("properties"), "properties"))
    created_at = _time(source.get("request_created_at"), "request_created_at")
    target_url = _column(source.get("target_url"), "target_url")
    tokens = _tokens(source)
    cost = _int(source.get("cost"), "cost", 0, INT64_MAX) or 0
    credible = cost <= MAX_COST_NANO_USD
    cost = cost if credible else 0
    cache_reference = _uuid(
        _null(source.get("cache_reference_id")) or ZERO_UUID, "cache_reference_id"
    )
    model = _column(source.get("model"), "model")
    row: RequestRow = {
        "request_id": _uuid(source.get("request_id"), "request_id"),
        "organization_id": organization_id,
        "request_created_at": created_at,
        "response_created_at": _optional_time(
            source.get("response_created_at"), "response_created_at"
        ),
        "provider": _column(source.get("provider"), "provider"),
        "model": model,
        "request_model": model,
        "response_model": model,
        "model_override": "",
        "target_url": target_url,
        "request_path": column_text(_path(target_url), "request_path"),
        "method": "POST",
        "status": _required_int(source.get("status"), "status", -INT32_MAX, INT32_MAX),
        "latency": _int(source.get("latency"), "latency", 0, INT64_MAX) or 0,
        "time_to_first_token": _int(source.get("time_to_first_token"), "time_to_first_token"),
        "is_stream": False,
        "user_id": _column(source.get("user_id"), "user_id"),
        "properties": properties,
        "session_id": column_text(properties.get(SESSION_PROPERTIES[0]), "session_id"),
        "session_path": column_text(properties.get(SESSION_PROPERTIES[1]), "session_path"),
        "session_name": column_text(properties.get(SESSION_PROPERTIES[2]), "session_name"),
        **tokens,  # type: ignore[typeddict-item]
        "cost": cost,
        "pricing_status": (
            _pricing_status(cost, tokens, cache_reference != ZERO_UUID)
            if credible
            else PriceStatus.NO_USAGE
        ),
        "cache_enabled": _bool(source.get("cache_enabled"), "cache_enabled"),
        "request_body_omitted": False,
        "response_body_omitted": False,
        "storage_location": "clickhouse",
        "error": "",
        "attempts": 1,
    }
    if cache_reference != ZERO_UUID:
        row["cache_reference_id"] = cache_reference
    imported = ImportedRequest(row, scores=_scores(source), version=_text(source.get("updated_at")))
    _add_bodies(imported, source, max_body_bytes, redactor)
    return imported


def key_from_helicone(source: Mapping[str, Any]) -> ImportedKey | None:
    """The key a `helicone_api_keys` row holds; None for a deleted or temporary key, which is
    not imported."""
    if _bool(source.get("soft_delete"), "soft_delete") or _bool(source.get("temp_key"), "temp_key"):
        return None
    key_hash = _text(source.get("api_key_hash")).strip().lower()
    if len(key_hash) != 64 or any(c not in "0123456789abcdef" for c in key_hash):
        raise RefusedRow("api_key_hash must be 64 hexadecimal characters (SHA-256)")
    permissions = _text(_null(source.get("key_permissions"))).strip() or "rw"
    if permissions not in {p.value for p in KeyPermissions}:
        raise RefusedRow(f"key_permissions must be rw, r or w, not {permissions[:20]!r}")
    created = _optional_time(source.get("created_at"), "created_at")
    name = " ".join(_text(_null(source.get("api_key_name"))).split())[:200] or "imported"
    return ImportedKey(
        key_hash,
        name,
        KeyPermissions(permissions),
        datetime.strptime(created, STORED_FORMAT).replace(tzinfo=UTC) if created else _now(),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _tokens(source: Mapping[str, Any]) -> dict[str, int | None]:
    def count(name: str) -> int | None:
        return _int(source.get(name), name, 0, INT64_MAX)

    return {
        "prompt_tokens": count("prompt_tokens"),
        "completion_tokens": count("completion_tokens"),
        "prompt_cache_read_tokens": count("prompt_cache_read_tokens") or 0,
        "prompt_cache_write_tokens": count("prompt_cache_write_tokens") or 0,
        "reasoning_tokens": count("reasoning_tokens") or 0,
        "prompt_audio_tokens": count("prompt_audio_tokens") or 0,
        "completion_audio_tokens": count("completion_audio_tokens") or 0,
    }


def _pricing_status(cost: int, tokens: Mapping[str, int | None], cache_hit: bool) -> str:
    if cost:
        return PriceStatus.PRICED
    if cache_hit:
        return PriceStatus.CACHE_HIT
    return PriceStatus.UNKNOWN_MODEL if any(tokens.values()) else PriceStatus.NO_USAGE


def _scores(source: Mapping[str, Any]) -> dict[str, float]:
    scores = {}
    for name, value in parse_map(source.get("scores"), "scores").items():
        number = _int(value, f"scores[{name!r}]", -INT64_MAX, INT64_MAX)
        if number is not None:
            scores[_text(name)[:200]] = float(number)
    return scores


def _add_bodies(
    imported: ImportedRequest,
    source: Mapping[str, Any],
    max_body_bytes: int,
    redactor: Redactor | None,
) -> None:
    """The bodies in the row, or in a body file (a preview in the row) when they are larger
    than ingest keeps in a row; redacted first when the organization asked for it."""
    request, parsed = _body(source.get("request_body"))
    response, _ = _body(source.get("response_body"))
    if redactor is not None:
        request, response = redactor.redact_bytes(request), redactor.redact_bytes(response)
    row = imported.row
    row["is_stream"] = _is_stream(request, parsed)
    if len(request) + len(response) > max_body_bytes:
        imported.body_file = body_document(request, response)
        row["storage_location"] = "file"
        request, response = request[:PREVIEW_BYTES], response[:PREVIEW_BYTES]
    row["request_body"] = request.decode("utf-8", "replace")
    row["response_body"] = response.decode("utf-8", "replace")


# A body's JSON when it was parsed already (`_body`), else NOT_PARSED.
NOT_PARSED = object()


def _body(value: Any) -> tuple[bytes, Any]:
    """A body as stored: JSON text with real UTF-8 rather than `\\u` escapes, so body search
    finds any text (as ingest stores it); and its JSON, if reading it took parsing it."""
    value = _null(value)
    if value is None or value == "":
        return b"", NOT_PARSED
    if not isinstance(value, str):
        return orjson.dumps(value), value
    raw = clean_text(value).encode()
    if b"\\u" in raw:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw, None
        return orjson.dumps(parsed), parsed
    return raw, NOT_PARSED


def _is_stream(request: bytes, parsed: Any = NOT_PARSED) -> bool:
    """Whether the request asked for a stream; `parsed` is its JSON when known already (the
    bytes are parsed only when it is not, and only when they name `stream` at all)."""
    if b'"stream"' not in request:
        return False
    if parsed is NOT_PARSED:
        try:
            parsed = orjson.loads(request)
        except orjson.JSONDecodeError:
            return False
    return isinstance(parsed, dict) and parsed.get("stream") is True


def _path(url: str) -> str:
    try:
        return urlsplit(url).path
    except ValueError:
        return ""


# Values, as JSON gives them or as ClickHouse prints them in CSV.


def _null(value: Any) -> Any:
    """None for ClickHouse's NULL in text (`\\N`) as well as JSON's."""
    return None if value is None or value == "\\N" else value


def _column(value: Any, column: str) -> str:
    """A text column's value, cut to its cap as ingest stores every source's."""
    return column_text(_null(value), column)


def _text(value: Any) -> str:
    value = _null(value)
    return "" if value is None else clean_text(value if isinstance(value, str) else str(value))


def _uuid(value: Any, column: str) -> str:
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        raise RefusedRow(f"{column} must be a UUID, not {str(value)[:40]!r}") from None


def _int(value: Any, column: str, low: int = 0, high: int = INT64_MAX) -> int | None:
    """An integer (a JSON number, or digits as text: 64-bit integers come quoted in JSON);
    None for NULL or nothing."""
    value = _null(value)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RefusedRow(f"{column} must be a number")
    try:
        number = int(value)
    except (ValueError, TypeError, OverflowError):
        raise RefusedRow(f"{column} must be a whole number, not {str(value)[:40]!r}") from None
    if not low <= number <= high:
        raise RefusedRow(f"{column} must be between {low} and {high}")
    return number


def _required_int(value: Any, column: str, low: int, high: int) -> int:
    number = _int(value, column, low, high)
    if number is None:
        raise RefusedRow(f"{column} is missing")
    return number


def _bool(value: Any, column: str) -> bool:
    value = _null(value)
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "t", "1"):
        return True
    if text in ("false", "f", "0", ""):
        return False
    raise RefusedRow(f"{column} must be true or false, not {text[:20]!r}")


def _optional_time(value: Any, column: str) -> str | None:
    value = _null(value)
    return None if value is None or value == "" else _time(value, column)


def _time(value: Any, column: str) -> str:
    """A time as the engine stores it (`YYYY-MM-DD hh:mm:ss.fff`, UTC). ClickHouse prints
    `DateTime64(3)` without a zone (Helicone's servers run in UTC); ISO 8601 with a zone, and
    unix milliseconds, are read too."""
    value = _null(value)
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value / 1000, UTC)
        else:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except (ValueError, TypeError, OverflowError, OSError):
        raise RefusedRow(f"{column} must be a time, not {str(value)[:40]!r}") from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if not EARLIEST <= moment < LATEST:
        raise RefusedRow(f"{column} must be between 1970 and 2200")
    return moment.strftime(STORED_FORMAT)[:-3]


def parse_map(value: Any, column: str) -> dict[str, Any]:
    """A ClickHouse `Map` as JSON gives it (an object) or as its text form prints it
    (`{'key':'value','n':1}`, quotes escaped with backslashes); empty for NULL or nothing."""
    value = _null(value)
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise RefusedRow(f"{column} must be a map")
    try:
        return _MapText(value).parse()
    except (IndexError, ValueError):
        raise RefusedRow(f"{column} is not a map in ClickHouse's text form") from None


_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'", re.DOTALL)
_BARE = re.compile(r"[^,}:]*")
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"b": "\b", "f": "\f", "r": "\r", "n": "\n", "t": "\t", "0": "\0", "a": "\a", "v": "\v"}


class _MapText:
    """A reader of ClickHouse's text form of a map: keys and string values in single quotes
    (backslash escapes), numbers bare."""

    def __init__(self, text: str) -> None:
        self.text, self.at = text.strip(), 0

    def parse(self) -> dict[str, Any]:
        self._expect("{")
        found: dict[str, Any] = {}
        while self._peek() != "}":
            key = self._value()
            self._expect(":")
            found[key] = self._value()
            if self._peek() == ",":
                self.at += 1
        self._expect("}")
        if self.at != len(self.text):
            raise ValueError("text after the map")
        return found

    def _peek(self) -> str:
        while self.text[self.at] == " ":
            self.at += 1
        return self.text[self.at]

    def _expect(self, character: str) -> None:
        if self._peek() != character:
            raise ValueError(f"expected {character}")
        self.at += 1

    def _value(self) -> str:
        quoted = self._peek() == "'"
        match = (_QUOTED if quoted else _BARE).match(self.text, self.at)
        if match is None:
            raise ValueError("unterminated string")
        self.at = match.end()
        if not quoted:
            return match.group().strip()
        value = match.group(1)
        return _ESCAPED.sub(_unescape, value) if "\\" in value else value


def _unescape(match: re.Match[str]) -> str:
    return _ESCAPES.get(match.group(1), match.group(1))
