"""OTLP trace exports (protobuf or JSON, gzip or not) turned into `RequestRecord`s: the body decoded
within its caps, resource and scope spans walked for the LLM spans (in the GenAI, OpenLLMetry or
OpenInference dialect: `otlp_dialects.py`), each made a record (`otlp_records.py`), and the
collector's answer counting any refused. Pure: no I/O."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from heliograph.domain.errors import InvalidInput
from heliograph.domain.record import RequestRecord
from heliograph.ingest.otlp_dialects import Attributes, is_llm_span, objects, read_attributes
from heliograph.ingest.otlp_records import (
    MAX_DEPTH,
    Known,
    Resource,
    Sender,
    SpanRefused,
    span_record,
)

PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_TYPE = "application/json"
MAX_DECOMPRESSED_BYTES = 32 * 1024 * 1024
# JSON costs ~20x protobuf's CPU to read (`json_format.ParseDict`): held to the API's body cap.
MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_GZIP_MEMBERS = 64  # exporters send one; thousands of empty ones are only work
GZIP_READ_BYTES = 64 * 1024  # compressed input fed per step, so a member's end is found cheaply
MAX_RECORDS = 5_000  # LLM spans stored from one export; the rest are rejected


class InvalidExport(InvalidInput):
    """The body is not an OTLP trace export; the text says why."""


class ExportTooLarge(InvalidExport):
    status = 413
    code = "too_large"


class UnsupportedExport(InvalidExport):
    status = 415
    code = "unsupported_media_type"


@dataclass(slots=True)
class Converted:
    """What one export became: its records, and the LLM spans refused (with the first reason)."""

    records: list[RequestRecord] = field(default_factory=list)
    rejected: int = 0
    error: str = ""

    def reject(self, reason: str) -> None:
        self.rejected += 1
        self.error = self.error or reason


# Decoding


def media_type(content_type: str) -> str:
    """The media type of a `Content-Type` header, or a 415 for one OTLP does not use."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in PROTOBUF_TYPES and media != JSON_TYPE:
        raise UnsupportedExport(
            "Content-Type must be application/x-protobuf or application/json (OTLP/HTTP)"
        )
    return media


def decode_export(body: bytes, media: str, content_encoding: str) -> ExportTraceServiceRequest:
    """The export in `body`, gunzipped when it says gzip; at most `MAX_JSON_BYTES` of JSON or
    `MAX_DECOMPRESSED_BYTES` of protobuf."""
    encoding = content_encoding.strip().lower()
    limit = MAX_JSON_BYTES if media == JSON_TYPE else MAX_DECOMPRESSED_BYTES
    if encoding == "gzip":
        body = gunzip(body, limit)
    elif encoding not in ("", "identity"):
        raise UnsupportedExport("Content-Encoding must be gzip or none")
    if len(body) > limit:
        raise ExportTooLarge(f"an OTLP {_format(media)} export may hold at most {limit} bytes")
    export = ExportTraceServiceRequest()
    if media != JSON_TYPE:
        try:
            export.ParseFromString(body)
        except (DecodeError, RecursionError) as error:
            raise InvalidExport(f"the body is not an OTLP protobuf trace export: {error}") from None
        return export
    try:
        document = orjson.loads(body)
        if not isinstance(document, dict):
            raise InvalidExport("the body must be a JSON object with resourceSpans")
        json_format.ParseDict(_hex_ids_as_base64(document), export, ignore_unknown_fields=True)
    except (orjson.JSONDecodeError, json_format.ParseError, RecursionError) as error:
        raise InvalidExport(f"the body is not an OTLP JSON trace export: {error}") from None
    return export


def gunzip(body: bytes, limit: int) -> bytes:
    """`body` decompressed (every gzip member, at most `MAX_GZIP_MEMBERS`), or a 413 as soon as
    it passes `limit` bytes. The input is walked by offset: copying the rest of the body after
    each member (`unused_data`) would cost quadratic time for many small members."""
    view = memoryview(body)
    out: list[bytes] = []
    size = offset = members = 0
    while offset < len(view):
        members += 1
        if members > MAX_GZIP_MEMBERS:
            raise InvalidExport(f"the gzip body has more than {MAX_GZIP_MEMBERS} members")
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while not inflater.eof:
            if offset >= len(view):
                raise InvalidExport("the gzip body is truncated")
            piece = view[offset : offset + GZIP_READ_BYTES]
            offset += len(piece)
            try:
                chunk = inflater.decompress(piece, limit - size + 1)
            except zlib.error:
                raise InvalidExport("the body is not valid gzip") from None
            size += len(chunk)
            if size > limit or inflater.unconsumed_tail:
                raise ExportTooLarge(f"the body decompresses to more than {limit} bytes")
            out.append(chunk)
        offset -= len(inflater.unused_data)  # at most one piece: the next member's start
    return b"".join(out)


def _format(media: str) -> str:
    return "JSON" if media == JSON_TYPE else "protobuf"


def _hex_ids_as_base64(document: dict[str, Any]) -> dict[str, Any]:
    """OTLP/JSON writes trace and span ids in hex, where protobuf's JSON mapping wants base64."""
    for span in _json_spans(document):
        for item in (span, *objects(span.get("links"))):
            for key in ("traceId", "spanId", "parentSpanId"):
                if key in item:
                    item[key] = _base64_id(item[key])
    return document


def _json_spans(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for resource_spans in objects(document.get("resourceSpans")):
        for scope_spans in objects(resource_spans.get("scopeSpans")):
            yield from objects(scope_spans.get("spans"))


def _base64_id(value: Any) -> Any:
    if isinstance(value, str) and len(value) in (16, 32):
        try:
            return base64.b64encode(bytes.fromhex(value)).decode()
        except ValueError:
            return value  # not hex: left for the parser (base64, or refused)
    return value


def encode_response(converted: Converted, media: str) -> bytes:
    """The collector's answer: empty, or a partial success counting the refused spans."""
    response = ExportTraceServiceResponse()
    if converted.rejected:
        response.partial_success.rejected_spans = converted.rejected
        response.partial_success.error_message = converted.error
    if media == JSON_TYPE:
        return str(json_format.MessageToJson(response, indent=None)).encode()
    return bytes(response.SerializeToString())


# Spans to records


def records_from_export(
    export: ExportTraceServiceRequest, organization_id: str, key_id: str
) -> Converted:
    """The export's LLM spans as records of `organization_id`: spans that wrap another call are
    skipped, and a span that cannot be a request is counted as rejected."""
    sender = Sender(organization_id, key_id)
    converted = Converted()
    calls: list[tuple[Span, Attributes, Resource]] = []
    known: dict[tuple[bytes, bytes], Known] = {}
    for resource_spans in export.resource_spans:
        resource = Resource.read(read_attributes(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = read_attributes(span.attributes)
                known[span.trace_id, span.span_id] = Known(span.name, span.parent_span_id)
                if is_llm_span(attributes):
                    calls.append((span, attributes, resource))
    wrappers = _wrappers([span for span, _, _ in calls], known)
    for span, attributes, resource in calls:
        if (span.trace_id, span.span_id) in wrappers:
            continue  # a framework's span around the real call: its tokens would count twice
        if len(converted.records) >= MAX_RECORDS:
            converted.reject(f"at most {MAX_RECORDS} LLM spans are taken from one export")
            continue
        try:
            converted.records.append(span_record(span, attributes, resource, known, sender))
        except SpanRefused as error:
            converted.reject(str(error))
        except (ValueError, ArithmeticError):
            # A value no check foresaw: this span is refused, never the whole export.
            converted.reject("a span holds a value that cannot be stored")
    return converted


def _wrappers(
    calls: list[Span], known: Mapping[tuple[bytes, bytes], Known]
) -> set[tuple[bytes, bytes]]:
    """The ancestors of every call: an LLM span among them wraps another call."""
    ancestors: set[tuple[bytes, bytes]] = set()
    for span in calls:
        parent, depth = span.parent_span_id, 0
        while parent and depth < MAX_DEPTH and (span.trace_id, parent) not in ancestors:
            ancestors.add((span.trace_id, parent))
            above = known.get((span.trace_id, parent))
            parent, depth = (above.parent if above else b""), depth + 1
    return ancestors
