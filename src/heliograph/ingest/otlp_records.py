"""One LLM span as a `RequestRecord`: its id (stable, so a re-sent export is stored once), model,
provider, timing, status, usage, bodies and attribution (user, properties, and the session: the
trace as a tree of span names)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from heliograph.domain.json_values import EARLIEST, INT32_MAX, LATEST
from heliograph.domain.pricing import MAX_PROVIDER_CHARS
from heliograph.domain.record import (
    MAX_ATTRIBUTION_CHARS,
    MAX_PROPERTIES,
    Attribution,
    RequestRecord,
)
from heliograph.domain.text import cut_text
from heliograph.ingest.otlp_bodies import invocation_model, request_body, response_body
from heliograph.ingest.otlp_dialects import (
    ANY_MODEL,
    ASSOCIATION,
    HTTP_STATUS,
    MAPPED,
    MAX_KEY_CHARS,
    PROVIDER,
    PROVIDERS,
    REQUEST_MODEL,
    RESPONSE_MODEL,
    SESSION,
    TOKENS,
    TTFT_SECONDS,
    UNLISTED,
    USER,
    Attributes,
    as_text,
    cap,
    first_count,
    first_text,
    secret,
    whole_number,
)

MAX_PROPERTY_CHARS = 1_000
MAX_DEPTH = 64  # ancestors walked for a session path
PROPERTY_PREFIX = "otel."
# Fixed, so the same span always gets the same request id: a re-sent export is stored once.
SPAN_NAMESPACE = uuid.UUID("6f1c1d4e-2b1a-5c7e-9a43-0e8f6c2d7b15")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EARLIEST_NS, LATEST_NS = (
    (moment - EPOCH) // timedelta(microseconds=1) * 1000 for moment in (EARLIEST, LATEST)
)


class SpanRefused(ValueError):
    """A span that cannot be a request (its ids, times or counts are unusable): the answer
    counts it as rejected, and the export's other spans are kept."""


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent the export: every record is theirs."""

    organization_id: str
    key_id: str


@dataclass(frozen=True, slots=True)
class Resource:
    """What the spans of one resource share: its attributes, and those that may be properties
    (as `(otel.<key>, value)`), chosen once rather than once per span, as an export may hold
    thousands of both."""

    attributes: Attributes
    properties: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def read(cls, attributes: Attributes) -> Resource:
        return cls(attributes, _resource_properties(attributes))


@dataclass(frozen=True, slots=True)
class Known:
    """A span of the export as its descendants see it: its name and its parent."""

    name: str
    parent: bytes


def span_record(
    span: Span,
    attributes: Attributes,
    resource: Resource,
    known: Mapping[tuple[bytes, bytes], Known],
    sender: Sender,
) -> RequestRecord:
    if len(span.trace_id) != 16 or len(span.span_id) != 8:
        raise SpanRefused("a span needs a 16-byte trace id and an 8-byte span id")
    created_at = _moment(span.start_time_unix_nano)
    ended_at = max(_moment(span.end_time_unix_nano or span.start_time_unix_nano), created_at)
    request_model = first_text(attributes, REQUEST_MODEL) or invocation_model(attributes)
    model = first_text(attributes, (*RESPONSE_MODEL, *ANY_MODEL)) or request_model
    error = span.status.code == Status.STATUS_CODE_ERROR
    return RequestRecord(
        request_id=str(uuid.uuid5(SPAN_NAMESPACE, _span_key(sender, span))),
        organization_id=sender.organization_id,
        created_at=created_at,
        provider=_provider(attributes, resource.attributes),
        target_url=_target_url(attributes),
        path=cut_text(span.name, MAX_KEY_CHARS),
        method="POST",
        request_body=request_body(attributes, request_model or model),
        status=_status(attributes, error),
        response_body=response_body(attributes, model),
        response_created_at=ended_at,
        latency_ms=(ended_at - created_at) // timedelta(milliseconds=1),
        time_to_first_token_ms=_time_to_first_token(span, attributes),
        attribution=attribution(span, attributes, resource, known),
        api_key_id=sender.key_id,
        error=cut_text(span.status.message or "span status: error", 1000) if error else "",
        client_request_id=True,  # derived from the span, so a re-sent export repeats it
        reported={**usage_reported(attributes), "model": model},
    )


def _span_key(sender: Sender, span: Span) -> str:
    return f"{sender.organization_id}:{span.trace_id.hex()}:{span.span_id.hex()}"


def usage_reported(attributes: Attributes) -> dict[str, object]:
    """Usage in `costing.py`'s keys. Dialects count cached tokens inside the input and reasoning
    inside the output; Heliograph's columns keep them apart, as Helicone does."""
    counts = {key: first_count(attributes, names) for key, names in TOKENS.items()}
    if any(count is not None and count > INT32_MAX for count in counts.values()):
        # No call counts this many; priced, it would overflow the cost column at insert.
        raise SpanRefused(f"a span's token counts must be at most {INT32_MAX}")
    reported: dict[str, object] = {
        key: value
        for key, value in counts.items()
        if value is not None and key not in ("input", "output")
    }
    cached = (counts["promptCacheReadTokens"] or 0) + (counts["promptCacheWriteTokens"] or 0)
    if counts["input"] is not None:
        reported["promptTokens"] = max(counts["input"] - cached, 0)
    if counts["output"] is not None:
        reported["completionTokens"] = max(counts["output"] - (counts["reasoningTokens"] or 0), 0)
    return reported


def attribution(
    span: Span,
    attributes: Attributes,
    resource: Resource,
    known: Mapping[tuple[bytes, bytes], Known],
) -> Attribution:
    """User, session and properties; the session is the trace unless a session id is given,
    and the path is the chain of span names from the top of the trace down to this span."""
    helicone = _helicone_association(attributes)
    names, top = _ancestry(span, known)
    session_name = (
        helicone.get("Helicone-Session-Name")
        or first_text(attributes, ("traceloop.workflow.name",))
        or (top.name if top is not None and not top.parent else "")
        or _service_name(resource.attributes)
    )
    return Attribution(
        user_id=helicone.get("Helicone-User-Id")
        or first_text(attributes, USER, resource.attributes),
        properties=properties(attributes, resource),
        session_id=(
            helicone.get("Helicone-Session-Id")
            or first_text(attributes, SESSION, resource.attributes)
            or span.trace_id.hex()
        ),
        session_path=cap(
            helicone.get("Helicone-Session-Path") or "/" + "/".join(names), MAX_ATTRIBUTION_CHARS
        ),
        session_name=cap(session_name, MAX_KEY_CHARS),
    )


def _service_name(resource: Attributes) -> str:
    name = first_text(resource, ("service.name",))
    return "" if name.startswith("unknown_service") else name  # the SDK's stand-in for none


def _ancestry(
    span: Span, known: Mapping[tuple[bytes, bytes], Known]
) -> tuple[list[str], Known | None]:
    """The names from the topmost span of this export's trace down to `span`, and that top."""
    names = [_segment(span.name)]
    parent, top, seen = span.parent_span_id, None, {span.span_id}
    while parent and parent not in seen and len(names) < MAX_DEPTH:
        seen.add(parent)
        top = known.get((span.trace_id, parent))
        if top is None:
            break
        names.append(_segment(top.name))
        parent = top.parent
    return names[::-1], top


def _segment(name: str) -> str:
    # A slash would split one span into two levels of the session tree.
    return cut_text(name, 100).replace("/", "_").strip() or "span"


def _helicone_association(attributes: Attributes) -> dict[str, str]:
    """Helicone's own names sent as OpenLLMetry association properties (`Helicone-User-Id` ...)."""
    return {
        key[len(ASSOCIATION) :]: cap(as_text(value), MAX_PROPERTY_CHARS)
        for key, value in attributes.items()
        if key.startswith(f"{ASSOCIATION}Helicone-")
        and not key.startswith(f"{ASSOCIATION}Helicone-Property-")
    }


def properties(attributes: Attributes, resource: Resource) -> dict[str, str]:
    """Association properties under their own names, then every other span and resource
    attribute under `otel.<key>`, at most `MAX_PROPERTIES`; bodies are never properties."""
    chosen: dict[str, str] = {}
    for key, value in _property_items(attributes, resource):
        if len(chosen) >= MAX_PROPERTIES:
            break
        chosen.setdefault(cut_text(key, MAX_KEY_CHARS), cap(as_text(value), MAX_PROPERTY_CHARS))
    return chosen


def _resource_properties(resource: Attributes) -> tuple[tuple[str, Any], ...]:
    """The resource attributes a span may take as properties, names cut as stored: the first
    `MAX_PROPERTIES` distinct ones, as no span can take more of them."""
    chosen: dict[str, Any] = {}
    for key, value in resource.items():
        if len(chosen) >= MAX_PROPERTIES:
            break
        if _listed(key, value):
            chosen.setdefault(cut_text(PROPERTY_PREFIX + key, MAX_KEY_CHARS), value)
    return tuple(chosen.items())


def _listed(key: str, value: Any) -> bool:
    """An attribute kept as an `otel.` property: not read into a column, not one a dialect
    leaves out, and not one that may hold a secret."""
    return key not in MAPPED and not key.startswith(UNLISTED) and not secret(key, value)


def _property_items(attributes: Attributes, resource: Resource) -> Iterator[tuple[str, Any]]:
    """Helicone's named properties as sent; any other attribute unless it may hold a secret."""
    for key, value in attributes.items():
        if key.startswith(f"{ASSOCIATION}Helicone-Property-"):
            yield key[len(f"{ASSOCIATION}Helicone-Property-") :], value
        elif (
            key.startswith(ASSOCIATION)
            and key not in MAPPED
            and "Helicone-" not in key
            and not secret(key, value)
        ):
            yield key[len(ASSOCIATION) :], value
    for key, value in attributes.items():
        if _listed(key, value):
            yield PROPERTY_PREFIX + key, value
    yield from resource.properties


def _moment(nanos: int) -> datetime:
    if not EARLIEST_NS <= nanos < LATEST_NS:  # checked first: a later one overflows datetime
        raise SpanRefused("a span's start and end times must be between 1970 and 2200")
    return EPOCH + timedelta(microseconds=nanos // 1000)


def _status(attributes: Attributes, error: bool) -> int:
    for key in HTTP_STATUS:
        code = whole_number(attributes.get(key))
        if code is not None and 100 <= code <= 599:
            return code
    return 500 if error else 200


def _time_to_first_token(span: Span, attributes: Attributes) -> int | None:
    for key in TTFT_SECONDS:
        seconds = attributes.get(key)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            continue
        if math.isfinite(seconds) and seconds >= 0:  # Infinity and NaN are doubles too
            return min(int(seconds * 1000), INT32_MAX)
    start = span.start_time_unix_nano
    for event in span.events:  # OpenInference marks the first streamed token with an event
        if "first token" in event.name.lower() and event.time_unix_nano >= start:
            return min(int(event.time_unix_nano - start) // 1_000_000, INT32_MAX)
    return None


def _provider(attributes: Attributes, resource: Attributes) -> str:
    named = first_text(attributes, PROVIDER, resource).lower()
    if not named:
        return "CUSTOM"
    return PROVIDERS.get(named) or cap(named.upper(), MAX_PROVIDER_CHARS)


def _target_url(attributes: Attributes) -> str:
    address = first_text(attributes, ("server.address",))
    if not address:
        return first_text(attributes, ("url.full",))
    port = whole_number(attributes.get("server.port"))
    return f"https://{address}" + (f":{port}" if port and port != 443 else "")
