"""The wire form of captured records, from a gateway process to the ingest process.

JSON lines, one record each, bodies base64-encoded because they are raw bytes (possibly
compressed). Encoding is cheap on purpose: the gateway does it, and parsing waits for ingest.
A record whose text cannot be written as JSON (a lone surrogate) is sent `cleaned`. The document
is flat (the `Attribution`'s fields beside the record's), as it has always been, so records
spooled by an older gateway process still decode.
"""

from __future__ import annotations

import base64
from dataclasses import fields, replace
from datetime import datetime
from operator import attrgetter
from typing import Any

import orjson

from heliograph.domain.errors import InvalidInput
from heliograph.domain.record import ATTRIBUTION_FIELDS, Attribution, RequestRecord
from heliograph.domain.text import clean_text

BYTES_FIELDS = ("request_body", "response_body", "provider_request_body", "provider_response_body")
TIME_FIELDS = ("created_at", "response_created_at")
RECORD_FIELDS = tuple(spec.name for spec in fields(RequestRecord) if spec.name != "attribution")
FLAT_FIELDS = RECORD_FIELDS + ATTRIBUTION_FIELDS
FIELD_NAMES = frozenset(FLAT_FIELDS)
_record_values = attrgetter(*RECORD_FIELDS)
_attribution_values = attrgetter(*ATTRIBUTION_FIELDS)


class InvalidBatch(InvalidInput):
    """A shipped batch that cannot be decoded; the message says where."""


def encode_records(records: list[RequestRecord]) -> bytes:
    return b"\n".join(encode_record(record) for record in records)


def encode_record(record: RequestRecord) -> bytes:
    """One line; raises `orjson.JSONEncodeError` (a `TypeError`) when the record holds text JSON
    cannot carry (lone surrogates), a number too large or a value of no JSON type."""
    return orjson.dumps(_to_dict(record))


def cleaned(record: RequestRecord) -> RequestRecord:
    """`record` with every string in it made valid UTF-8 (`clean_text`), property names included."""
    changes = {
        name: _clean(getattr(record, name)) for name in RECORD_FIELDS if name not in BYTES_FIELDS
    }
    attribution = record.attribution
    changes["attribution"] = replace(
        attribution, **{name: _clean(getattr(attribution, name)) for name in ATTRIBUTION_FIELDS}
    )
    return replace(record, **changes)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {_clean(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def flat(record: RequestRecord) -> dict[str, Any]:
    """The record's fields and its attribution's side by side, as the wire (and quarantine)
    have always laid them out; bodies still bytes."""
    # One C-level read of each side (`attrgetter`): the gateway encodes every record it ships.
    values = _record_values(record) + _attribution_values(record.attribution)
    return dict(zip(FLAT_FIELDS, values, strict=True))


def _to_dict(record: RequestRecord) -> dict[str, Any]:
    document = flat(record)
    for name in BYTES_FIELDS:
        document[name] = base64.b64encode(document[name]).decode()
    return document


def decode_records(data: bytes) -> list[RequestRecord]:
    records = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(_from_dict(orjson.loads(line)))
        except (orjson.JSONDecodeError, TypeError, ValueError, KeyError) as error:
            raise InvalidBatch(f"record {number}: {error}") from None
    return records


def _from_dict(document: Any) -> RequestRecord:
    if not isinstance(document, dict) or not set(document) <= FIELD_NAMES:
        raise ValueError("not a record object")
    for name in BYTES_FIELDS:
        document[name] = base64.b64decode(document.get(name, ""), validate=True)
    for name in TIME_FIELDS:
        if document.get(name) is not None:
            document[name] = datetime.fromisoformat(document[name])
    attribution = {name: document.pop(name) for name in ATTRIBUTION_FIELDS if name in document}
    return RequestRecord(**document, attribution=Attribution(**attribution))
