"""A stored request row as an OpenTelemetry GenAI client span: its ids (a session is one trace),
name, timing, status and attributes (usage counted as the conventions count it, Heliograph's own
columns under `heliograph.*`), and a batch of rows as one `ExportTraceServiceRequest`."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from heliograph import __version__
from heliograph.domain.request_row import BODY_COLUMNS, RequestRow

log = logging.getLogger("heliograph.otlp")

RESPONSE_ID_SCAN = 4096  # how far into a response body its id is looked for
BODY_CHARS = 4096  # of each body, with HELIOGRAPH_OTLP_INCLUDE_BODIES: the queue stays bounded
# The provider's id of a response: OpenAI and Anthropic say `id` first, Gemini `responseId`.
RESPONSE_ID = re.compile(r'"(?:id|responseId)"\s*:\s*"([^"\\]{1,256})"')
RESOURCE = {"service.name": "heliograph", "service.version": __version__}
# The semantic conventions' names for the providers Heliograph knows under other names.
PROVIDER_NAMES = {
    "GOOGLE": "gcp.gemini",
    "MISTRAL": "mistral_ai",
    "X": "x_ai",
}


@dataclass(frozen=True, slots=True)
class Pending:
    """A stored row waiting to be exported: its columns without the bodies (the queue must stay
    small), the provider's response id, read from the body before it was let go, and the
    bodies' first `BODY_CHARS` when they are exported too."""

    row: Mapping[str, object]
    response_id: str
    bodies: tuple[str, str] = ("", "")


def pending(row: RequestRow, include_bodies: bool = False) -> Pending:
    columns = {name: value for name, value in row.items() if name not in BODY_COLUMNS}
    response = row.get("response_body") or ""
    if not include_bodies:
        return Pending(columns, response_id_of(response))
    request = row.get("request_body") or ""
    bodies = (request[:BODY_CHARS], response[:BODY_CHARS])
    return Pending(columns, response_id_of(response), bodies)


def response_id_of(body: str) -> str:
    match = RESPONSE_ID.search(body, 0, RESPONSE_ID_SCAN)
    return match.group(1) if match else ""


def operation_of(path: str) -> str:
    """The GenAI operation a request path names (`gen_ai.operation.name`)."""
    path = path.split("?", 1)[0].rstrip("/").lower()
    if path.endswith(("/chat/completions", "/messages", "/responses")):
        return "chat"
    if path.endswith("/completions"):
        return "text_completion"
    if path.endswith("/embeddings") or ":embedcontent" in path or ":batchembed" in path:
        return "embeddings"
    if ":generatecontent" in path or ":streamgeneratecontent" in path:
        return "generate_content"
    last = path.rsplit("/", 1)[-1]
    return last or "chat"


def trace_id_of(row: Mapping[str, object]) -> bytes:
    """The request id's bytes, or, for a request in a session, an id every request of that
    session shares, so a session is one trace."""
    session, organization = row.get("session_id"), row.get("organization_id")
    if session:
        return _digest(f"{organization}|{session}")[:16]
    request_id = str(row.get("request_id", ""))
    try:
        return uuid.UUID(request_id).bytes
    except ValueError:
        return _digest(request_id)[:16]


def span_id_of(row: Mapping[str, object]) -> bytes:
    return _digest(str(row.get("request_id", "")))[:8]


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def export_request(items: list[Pending]) -> tuple[ExportTraceServiceRequest, int]:
    """One request holding the spans of `items`, and how many rows made no span. Spans are
    filled in place (`add()`): building messages and copying them in costs twice as much."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    _set_attributes(resource_spans.resource.attributes, RESOURCE)
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name, scope_spans.scope.version = "heliograph", __version__
    unmade = 0
    for item in items:
        try:
            fill_span(scope_spans.spans.add(), item)
        except Exception as error:  # one odd row must not cost the batch
            del scope_spans.spans[-1]
            unmade += 1
            log.warning("request %s makes no span: %s", item.row.get("request_id"), error)
    return request, unmade


def fill_span(span: Span, item: Pending) -> None:
    row = item.row
    model = str(row.get("request_model") or row.get("model") or "")
    operation = operation_of(str(row.get("request_path", "")))
    status = _int(row.get("status")) or 0
    failed = status >= 400 or status < 0
    span.trace_id, span.span_id = trace_id_of(row), span_id_of(row)
    span.name = f"{operation} {model}".strip()
    span.kind = Span.SpanKind.SPAN_KIND_CLIENT
    span.start_time_unix_nano = _unix_ns(str(row["request_created_at"]))
    latency_ms = max(_int(row.get("latency")) or 0, 0)
    span.end_time_unix_nano = span.start_time_unix_nano + latency_ms * 1_000_000
    if failed:
        span.status.code = Status.StatusCode.STATUS_CODE_ERROR
        span.status.message = str(row.get("error") or "")[:1024]
    _set_attributes(span.attributes, _attributes(item, operation, model, status, failed))


def _attributes(
    item: Pending, operation: str, model: str, status: int, failed: bool
) -> dict[str, object]:
    row = item.row
    provider = str(row.get("provider", ""))
    provider_name = PROVIDER_NAMES.get(provider, provider.lower())
    values: dict[str, object] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider_name,
        "gen_ai.system": provider_name,  # the name before semantic conventions 1.37
        "gen_ai.request.model": model,
        "gen_ai.response.model": row.get("response_model") or row.get("model"),
        "gen_ai.response.id": item.response_id,
        **_usage(row),
        "error.type": _error_type(status) if failed else None,
        "server.address": _host(str(row.get("target_url", ""))),
        "heliograph.request_id": row.get("request_id"),
        "heliograph.organization_id": row.get("organization_id"),
        "heliograph.status": status,
        "heliograph.cost_usd": (_int(row.get("cost")) or 0) / 1e9,
        "heliograph.pricing_status": row.get("pricing_status"),
        "heliograph.time_to_first_token_ms": row.get("time_to_first_token"),
        "heliograph.stream": row.get("is_stream"),
        "user.id": row.get("user_id"),
        "session.id": row.get("session_id"),
        "heliograph.session.path": row.get("session_path"),
        "heliograph.session.name": row.get("session_name"),
        # As stored: redacted when the organization asked, empty when the caller omitted them.
        "heliograph.request.body": item.bodies[0],
        "heliograph.response.body": item.bodies[1],
    }
    properties = row.get("properties")
    if isinstance(properties, Mapping):
        for key, value in properties.items():
            values[f"heliograph.property.{key}"] = value
    return values


def _set_attributes(target: Any, values: Mapping[str, object]) -> None:
    """Add each value that is set to `target` (a repeated `KeyValue` field), typed as it is."""
    add = target.add
    for key, value in values.items():
        if value is None or value == "":
            continue
        slot = add(key=key).value
        if isinstance(value, bool):
            slot.bool_value = value
        elif isinstance(value, int):
            slot.int_value = value
        elif isinstance(value, float):
            slot.double_value = value
        else:
            slot.string_value = str(value)


def _usage(row: Mapping[str, object]) -> dict[str, object]:
    """Token counts as the conventions count them: input with cached tokens, output with
    reasoning tokens (Heliograph's columns keep each kind apart)."""
    prompt, completion = _int(row.get("prompt_tokens")), _int(row.get("completion_tokens"))
    cache_read = _int(row.get("prompt_cache_read_tokens")) or 0
    cache_write = _int(row.get("prompt_cache_write_tokens")) or 0
    reasoning = _int(row.get("reasoning_tokens")) or 0
    usage: dict[str, object] = {}
    if prompt is not None:
        usage["gen_ai.usage.input_tokens"] = prompt + cache_read + cache_write
        usage["gen_ai.usage.cache_read.input_tokens"] = cache_read
        usage["gen_ai.usage.cache_creation.input_tokens"] = cache_write
    if completion is not None:
        usage["gen_ai.usage.output_tokens"] = completion + reasoning
        usage["heliograph.usage.reasoning_tokens"] = reasoning
    if prompt is not None or completion is not None:
        total = (prompt or 0) + cache_read + cache_write + (completion or 0) + reasoning
        usage["heliograph.usage.total_tokens"] = total
    return usage


def _error_type(status: int) -> str:
    return "cancelled" if status == -3 else str(status)


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _unix_ns(stored: str) -> int:
    """A stored time (`YYYY-MM-DD hh:mm:ss.fff`, UTC) in nanoseconds since the epoch; parsed
    with `fromisoformat`, a tenth of `strptime`'s cost."""
    moment = datetime.fromisoformat(stored).replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000) * 1_000_000


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
