"""OTLP trace exports (protobuf or JSON, gzip or not) turned into `RequestRecord`s: each LLM span,
in the OpenTelemetry GenAI, OpenLLMetry or OpenInference dialect, becomes one request with its
model, usage, timing, user, session (the trace as a tree) and properties. Pure: no I/O."""

from __future__ import annotations

import base64
import itertools
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from heliograph.domain.errors import InvalidInput
from heliograph.domain.record import Attribution, RequestRecord
from heliograph.domain.text import clean_text
from heliograph.ingest.log_message import EARLIEST, LATEST

PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_TYPE = "application/json"
MAX_DECOMPRESSED_BYTES = 32 * 1024 * 1024
MAX_RECORDS = 5_000  # LLM spans stored from one export; the rest are rejected
MAX_ATTRIBUTES = 4_096  # read per span and per resource
MAX_MESSAGES = 1_000  # prompt or completion messages rebuilt from attributes
MAX_PROPERTIES = 64
MAX_PROPERTY_CHARS = 1_000
MAX_KEY_CHARS = 200
MAX_DEPTH = 64  # ancestors walked for a session path
PROPERTY_PREFIX = "otel."
ASSOCIATION = "traceloop.association.properties."
# Fixed, so the same span always gets the same request id: a re-sent export is stored once.
SPAN_NAMESPACE = uuid.UUID("6f1c1d4e-2b1a-5c7e-9a43-0e8f6c2d7b15")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EARLIEST_NS, LATEST_NS = (
    (moment - EPOCH) // timedelta(microseconds=1) * 1000 for moment in (EARLIEST, LATEST)
)

REQUEST_MODEL = ("gen_ai.request.model", "llm.request.model", "llm.request.model_name")
RESPONSE_MODEL = ("gen_ai.response.model", "llm.response.model", "llm.response.model_name")
ANY_MODEL = ("llm.model_name", "embedding.model_name")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system", "llm.vendor")
USER = ("user.id", "gen_ai.user.id", "enduser.id", "llm.user", f"{ASSOCIATION}user_id")
SESSION = ("session.id", "gen_ai.conversation.id", f"{ASSOCIATION}session_id")
# Heliograph's usage keys (`providers/costing.py`) and the attributes that say each, first wins.
TOKENS = {
    "input": (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.usage.prompt_tokens",
        "llm.token_count.prompt",
    ),
    "output": (
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.usage.completion_tokens",
        "llm.token_count.completion",
    ),
    "promptCacheReadTokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "llm.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
    ),
    "promptCacheWriteTokens": (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "llm.usage.cache_creation_input_tokens",
        "llm.token_count.prompt_details.cache_write",
    ),
    "reasoningTokens": (
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.reasoning_tokens",
        "llm.usage.reasoning_tokens",
        "llm.token_count.completion_details.reasoning",
    ),
    "promptAudioTokens": ("llm.token_count.prompt_details.audio",),
    "completionAudioTokens": ("llm.token_count.completion_details.audio",),
}
TTFT_SECONDS = ("gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token")
HTTP_STATUS = ("http.response.status_code", "http.status_code")
MAPPED = frozenset(
    {*REQUEST_MODEL, *RESPONSE_MODEL, *ANY_MODEL, *PROVIDER, *USER, *SESSION, *TTFT_SECONDS}
    | {key for keys in TOKENS.values() for key in keys}
    | {"openinference.span.kind", "llm.invocation_parameters", "input.mime_type"}
    | {"output.mime_type", "llm.token_count.total", "llm.usage.total_tokens"}
)
# Bodies travel in these; they become the request and response bodies, never properties.
BODY_PREFIXES = (
    "gen_ai.prompt", "gen_ai.completion", "gen_ai.input.messages", "gen_ai.output.messages",
    "gen_ai.system_instructions", "gen_ai.tool.definitions", "llm.input_messages",
    "llm.output_messages", "llm.prompts", "llm.completions", "llm.tools", "llm.prompt_template",
    "input.value", "output.value", "traceloop.entity.input", "traceloop.entity.output",
)  # fmt: skip
# Never properties: bodies, SDK noise, a process's command line (it may hold secrets).
UNLISTED = (ASSOCIATION, *BODY_PREFIXES, "llm.headers", "telemetry.sdk.", "process.command")
SECRET_WORDS = ("authorization", "api_key", "api-key", "apikey", "secret", "password", "cookie")
# Spans of these kinds wrap LLM calls (and may sum their tokens): never requests themselves.
NOT_CALLS = frozenset({"chain", "agent", "tool", "retriever", "reranker", "guardrail", "workflow"})
NOT_CALLS |= {"task", "evaluator", "invoke_agent", "create_agent", "execute_tool"}
PROVIDERS = {
    "openai": "OPENAI", "anthropic": "ANTHROPIC", "gemini": "GOOGLE", "google": "GOOGLE",
    "gcp.gemini": "GOOGLE", "gcp.gen_ai": "GOOGLE", "gcp.vertex_ai": "GOOGLE",
    "vertex_ai": "GOOGLE", "vertexai": "GOOGLE", "groq": "GROQ", "together": "TOGETHER",
    "together_ai": "TOGETHER", "mistral_ai": "MISTRAL", "mistralai": "MISTRAL",
    "mistral": "MISTRAL", "deepseek": "DEEPSEEK", "x_ai": "X", "xai": "X",
    "openrouter": "OPENROUTER", "fireworks": "FIREWORKS", "perplexity": "PERPLEXITY",
    "cerebras": "CEREBRAS", "aws.bedrock": "BEDROCK", "azure.ai.openai": "AZURE",
    "az.ai.openai": "AZURE", "azure": "AZURE", "cohere": "COHERE",
}  # fmt: skip

Attributes = dict[str, Any]


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


@dataclass(frozen=True, slots=True)
class _Sender:
    organization_id: str
    key_id: str


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
    """The export in `body`, gunzipped within `MAX_DECOMPRESSED_BYTES` when it says gzip."""
    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        body = gunzip(body, MAX_DECOMPRESSED_BYTES)
    elif encoding not in ("", "identity"):
        raise UnsupportedExport("Content-Encoding must be gzip or none")
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
    """`body` decompressed (every gzip member), or a 413 as soon as it passes `limit` bytes."""
    out: list[bytes] = []
    size = 0
    while body:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(body, limit - size + 1)
        except zlib.error:
            raise InvalidExport("the body is not valid gzip") from None
        size += len(chunk)
        if size > limit or inflater.unconsumed_tail:
            raise ExportTooLarge(f"the body decompresses to more than {limit} bytes")
        if not inflater.eof:
            raise InvalidExport("the gzip body is truncated")
        out.append(chunk)
        body = inflater.unused_data
    return b"".join(out)


def _hex_ids_as_base64(document: dict[str, Any]) -> dict[str, Any]:
    """OTLP/JSON writes trace and span ids in hex, where protobuf's JSON mapping wants base64."""
    for span in _json_spans(document):
        for item in (span, *_objects(span.get("links"))):
            for key in ("traceId", "spanId", "parentSpanId"):
                if key in item:
                    item[key] = _base64_id(item[key])
    return document


def _json_spans(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for resource_spans in _objects(document.get("resourceSpans")):
        for scope_spans in _objects(resource_spans.get("scopeSpans")):
            yield from _objects(scope_spans.get("spans"))


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


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


@dataclass(frozen=True, slots=True)
class _Known:
    """A span of the export as its descendants see it: its name and its parent."""

    name: str
    parent: bytes


def records_from_export(
    export: ExportTraceServiceRequest, organization_id: str, key_id: str
) -> Converted:
    sender = _Sender(organization_id, key_id)
    converted = Converted()
    calls: list[tuple[Span, Attributes, Attributes]] = []
    known: dict[tuple[bytes, bytes], _Known] = {}
    for resource_spans in export.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = _attributes(span.attributes)
                known[span.trace_id, span.span_id] = _Known(span.name, span.parent_span_id)
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
        except InvalidExport as error:
            converted.reject(str(error))
    return converted


def _wrappers(
    calls: list[Span], known: Mapping[tuple[bytes, bytes], _Known]
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


def is_llm_span(attributes: Attributes) -> bool:
    """A call to a model: OpenInference says LLM or EMBEDDING, or (no wrapper kind said) it
    names a model or counts tokens."""
    kinds = ("openinference.span.kind", "traceloop.span.kind", "gen_ai.operation.name")
    said = {str(attributes.get(key, "")).lower() for key in kinds} - {""}
    if said & {"llm", "embedding"}:
        return True
    if said & NOT_CALLS:
        return False
    usage = (key for keys in TOKENS.values() for key in keys)
    return any(key in attributes for key in (*REQUEST_MODEL, *RESPONSE_MODEL, *ANY_MODEL, *usage))


def span_record(
    span: Span,
    attributes: Attributes,
    resource: Attributes,
    known: Mapping[tuple[bytes, bytes], _Known],
    sender: _Sender,
) -> RequestRecord:
    if len(span.trace_id) != 16 or len(span.span_id) != 8:
        raise InvalidExport("a span needs a 16-byte trace id and an 8-byte span id")
    created_at = _moment(span.start_time_unix_nano)
    ended_at = max(_moment(span.end_time_unix_nano or span.start_time_unix_nano), created_at)
    request_model = _first_text(attributes, REQUEST_MODEL) or _invocation_model(attributes)
    model = _first_text(attributes, (*RESPONSE_MODEL, *ANY_MODEL)) or request_model
    error = span.status.code == Status.STATUS_CODE_ERROR
    return RequestRecord(
        request_id=str(uuid.uuid5(SPAN_NAMESPACE, _span_key(sender, span))),
        organization_id=sender.organization_id,
        created_at=created_at,
        provider=_provider(attributes, resource),
        target_url=_target_url(attributes),
        path=_cap(clean_text(span.name), MAX_KEY_CHARS),
        method="POST",
        request_body=request_body(attributes, request_model or model),
        status=_status(attributes, error),
        response_body=response_body(attributes, model),
        response_created_at=ended_at,
        latency_ms=(ended_at - created_at) // timedelta(milliseconds=1),
        time_to_first_token_ms=_time_to_first_token(span, attributes),
        attribution=attribution(span, attributes, resource, known),
        api_key_id=sender.key_id,
        error=_cap(clean_text(span.status.message or "span status: error"), 1000) if error else "",
        client_request_id=True,  # derived from the span, so a re-sent export repeats it
        reported={**usage_reported(attributes), "model": model},
    )


def _span_key(sender: _Sender, span: Span) -> str:
    return f"{sender.organization_id}:{span.trace_id.hex()}:{span.span_id.hex()}"


def usage_reported(attributes: Attributes) -> dict[str, object]:
    """Usage in `costing.py`'s keys. Dialects count cached tokens inside the input and reasoning
    inside the output; Heliograph's columns keep them apart, as Helicone does."""
    counts = {key: _first_count(attributes, names) for key, names in TOKENS.items()}
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
    resource: Attributes,
    known: Mapping[tuple[bytes, bytes], _Known],
) -> Attribution:
    """User, session and properties; the session is the trace unless a session id is given,
    and the path is the chain of span names from the top of the trace down to this span."""
    helicone = _helicone_association(attributes)
    names, top = _ancestry(span, known)
    session_name = (
        helicone.get("Helicone-Session-Name")
        or _first_text(attributes, ("traceloop.workflow.name",))
        or (top.name if top is not None and not top.parent else "")
        or _service_name(resource)
    )
    return Attribution(
        user_id=helicone.get("Helicone-User-Id") or _first_text(attributes, USER, resource),
        properties=properties(attributes, resource),
        session_id=(
            helicone.get("Helicone-Session-Id")
            or _first_text(attributes, SESSION, resource)
            or span.trace_id.hex()
        ),
        session_path=_cap(helicone.get("Helicone-Session-Path") or "/" + "/".join(names), 1000),
        session_name=_cap(session_name, MAX_KEY_CHARS),
    )


def _service_name(resource: Attributes) -> str:
    name = _first_text(resource, ("service.name",))
    return "" if name.startswith("unknown_service") else name  # the SDK's stand-in for none


def _ancestry(
    span: Span, known: Mapping[tuple[bytes, bytes], _Known]
) -> tuple[list[str], _Known | None]:
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
    return _cap(clean_text(name).replace("/", "_").strip(), 100) or "span"


def _helicone_association(attributes: Attributes) -> dict[str, str]:
    """Helicone's own names sent as OpenLLMetry association properties (`Helicone-User-Id` ...)."""
    return {
        key[len(ASSOCIATION) :]: _cap(_as_text(value), MAX_PROPERTY_CHARS)
        for key, value in attributes.items()
        if key.startswith(f"{ASSOCIATION}Helicone-")
        and not key.startswith(f"{ASSOCIATION}Helicone-Property-")
    }


def properties(attributes: Attributes, resource: Attributes) -> dict[str, str]:
    """Association properties under their own names, then every other span and resource
    attribute under `otel.<key>`, at most `MAX_PROPERTIES`; bodies are never properties."""
    chosen: dict[str, str] = {}
    for key, value in _property_items(attributes, resource):
        if len(chosen) >= MAX_PROPERTIES:
            break
        name = _cap(clean_text(key), MAX_KEY_CHARS)
        chosen.setdefault(name, _cap(_as_text(value), MAX_PROPERTY_CHARS))
    return chosen


def _property_items(attributes: Attributes, resource: Attributes) -> Iterator[tuple[str, Any]]:
    for key, value in attributes.items():
        if key.startswith(f"{ASSOCIATION}Helicone-Property-"):
            yield key[len(f"{ASSOCIATION}Helicone-Property-") :], value
        elif key.startswith(ASSOCIATION) and key not in MAPPED and "Helicone-" not in key:
            yield key[len(ASSOCIATION) :], value
    for source in (attributes, resource):
        for key, value in source.items():
            if key not in MAPPED and not key.startswith(UNLISTED) and not _secret(key):
                yield PROPERTY_PREFIX + key, value


def _secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


# Bodies: what the span says was sent and answered, as OpenAI-shaped JSON the dashboard shows.


def request_body(attributes: Attributes, model: str) -> bytes:
    sent = attributes.get("input.value")
    if isinstance(_json(sent), dict):  # OpenInference keeps the request itself, as sent
        return str(sent).encode()
    body: dict[str, Any] = {"model": model} if model else {}
    body.update(_json_object(attributes.get("llm.invocation_parameters")) or {})
    messages = (
        _indexed_messages(attributes, "gen_ai.prompt", "")
        or _indexed_messages(attributes, "llm.input_messages", "message.")
        or _semconv_messages(attributes.get("gen_ai.input.messages"))
        or _text_message("user", attributes.get("input.value"))
    )
    if messages:
        body["messages"] = messages
    return orjson.dumps(body) if messages else b""


def response_body(attributes: Attributes, model: str) -> bytes:
    answered = attributes.get("output.value")
    if isinstance(_json(answered), dict):
        return str(answered).encode()
    messages = (
        _indexed_messages(attributes, "gen_ai.completion", "")
        or _indexed_messages(attributes, "llm.output_messages", "message.")
        or _semconv_messages(attributes.get("gen_ai.output.messages"))
        or _text_message("assistant", attributes.get("output.value"))
    )
    if not messages:
        return b""
    choices = [
        {"index": index, "message": message, "finish_reason": message.pop("finish_reason", None)}
        for index, message in enumerate(messages)
    ]
    return orjson.dumps({"object": "chat.completion", "model": model, "choices": choices})


def _indexed_messages(attributes: Attributes, prefix: str, inner: str) -> list[dict[str, Any]]:
    """Messages from `prefix.N.{inner}role`, `.content` (or content parts) and `.tool_calls.M.*`."""
    indexed = _indexed(attributes, prefix + ".")
    return [
        _message({key.removeprefix(inner): value for key, value in fields.items()})
        for _, fields in sorted(indexed.items())
    ]


def _indexed(attributes: Attributes, start: str) -> dict[int, Attributes]:
    """`start.N.rest` keys grouped by N (below `MAX_MESSAGES`), each as {rest: value}."""
    indexed: dict[int, Attributes] = {}
    for key, value in attributes.items():
        if key.startswith(start):
            index, _, rest = key[len(start) :].partition(".")
            if _small_number(index) and int(index) < MAX_MESSAGES and rest:
                indexed.setdefault(int(index), {})[rest] = value
    return indexed


def _message(fields: Attributes) -> dict[str, Any]:
    content = fields.get("content")
    if content is None:  # OpenInference's parts: contents.N.message_content.text
        parts = sorted(_indexed(fields, "contents.").items())
        content = "\n".join(
            _as_text(part["message_content.text"])
            for _, part in parts
            if "message_content.text" in part
        )
    message: dict[str, Any] = {
        "role": _as_text(fields.get("role") or "user"),
        "content": _as_text(content),
    }
    calls = sorted(_indexed(fields, "tool_calls.").items())
    if calls:  # OpenLLMetry: tool_calls.N.name; OpenInference: tool_calls.N.tool_call.function.name
        message["tool_calls"] = [_tool_call(call) for _, call in calls]
    if fields.get("finish_reason"):
        message["finish_reason"] = _as_text(fields["finish_reason"])
    return message


def _tool_call(call: Attributes) -> dict[str, Any]:
    def get(name: str) -> str:
        return _as_text(call.get(name) or call.get(f"tool_call.{name}") or "")

    return {
        "id": get("id"),
        "type": "function",
        "function": {
            "name": get("name") or get("function.name"),
            "arguments": get("arguments") or get("function.arguments"),
        },
    }


def _semconv_messages(value: Any) -> list[dict[str, Any]]:
    """The GenAI convention's `[{role, parts: [{type: text, content}]}]` JSON."""
    listed = _json(value)
    if not isinstance(listed, list):
        return []
    messages = []
    for item in listed[:MAX_MESSAGES]:
        if isinstance(item, dict):
            texts = [
                _as_text(part.get("content"))
                for part in _objects(item.get("parts"))
                if part.get("type") == "text"
            ]
            message = {"role": _as_text(item.get("role") or "user"), "content": "\n".join(texts)}
            if item.get("finish_reason"):
                message["finish_reason"] = _as_text(item["finish_reason"])
            messages.append(message)
    return messages


def _text_message(role: str, value: Any) -> list[dict[str, Any]]:
    return [{"role": role, "content": _as_text(value)}] if isinstance(value, str) and value else []


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None


def _json_object(value: Any) -> dict[str, Any] | None:
    parsed = _json(value)
    try:
        return _clean_json(parsed) if isinstance(parsed, dict) else None
    except RecursionError:  # orjson takes 1,024 levels, more than Python recurses
        return None


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(key)): _clean_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean_json(item) for item in value]
    return value


def _invocation_model(attributes: Attributes) -> str:
    parameters = _json_object(attributes.get("llm.invocation_parameters")) or {}
    model = parameters.get("model")
    return _cap(model, MAX_KEY_CHARS) if isinstance(model, str) else ""


# Attribute values


def _attributes(values: Iterable[KeyValue]) -> Attributes:
    """Key-value pairs as Python values (strings cleaned), the first `MAX_ATTRIBUTES` only."""
    attributes: Attributes = {}
    for pair in itertools.islice(values, MAX_ATTRIBUTES):
        attributes.setdefault(clean_text(pair.key), _value(pair.value))
    return attributes


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return clean_text(value.string_value)
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {clean_text(kv.key): _value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return None if kind is None else getattr(value, kind)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return "" if value is None else str(value)


def _first_text(attributes: Attributes, keys: tuple[str, ...], *more: Attributes) -> str:
    for source in (attributes, *more):
        for key in keys:
            value = source.get(key)
            if value is not None and value != "":
                return _cap(_as_text(value), MAX_KEY_CHARS)
    return ""


def _first_count(attributes: Attributes, keys: tuple[str, ...]) -> int | None:
    for key in keys:
        count = _count(attributes.get(key))
        if count is not None:
            return count
    return None


def _count(value: Any) -> int | None:
    """A token count: a non-negative whole number, sent as an int, a whole double or digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _small_number(value):
        value = int(value)
    return value if isinstance(value, int) and 0 <= value < 2**63 else None


def _small_number(text: str) -> bool:
    """ASCII digits only (`"²".isdigit()` is true too), few enough for an int64."""
    return text.isascii() and text.isdigit() and len(text) < 19


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def _moment(nanos: int) -> datetime:
    if not EARLIEST_NS <= nanos < LATEST_NS:  # checked first: a later one overflows datetime
        raise InvalidExport("a span's start and end times must be between 1970 and 2200")
    return EPOCH + timedelta(microseconds=nanos // 1000)


def _status(attributes: Attributes, error: bool) -> int:
    for key in HTTP_STATUS:
        code = _count(attributes.get(key))
        if code is not None and 100 <= code <= 599:
            return code
    return 500 if error else 200


def _time_to_first_token(span: Span, attributes: Attributes) -> int | None:
    for key in TTFT_SECONDS:
        seconds = attributes.get(key)
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
            return min(int(seconds * 1000), 2**31 - 1)
    start = span.start_time_unix_nano
    for event in span.events:  # OpenInference marks the first streamed token with an event
        if "first token" in event.name.lower() and event.time_unix_nano >= start:
            return min(int(event.time_unix_nano - start) // 1_000_000, 2**31 - 1)
    return None


def _provider(attributes: Attributes, resource: Attributes) -> str:
    named = _first_text(attributes, PROVIDER, resource).lower()
    if not named:
        return "CUSTOM"
    return PROVIDERS.get(named) or _cap(named.upper(), 64)


def _target_url(attributes: Attributes) -> str:
    address = _first_text(attributes, ("server.address",))
    if not address:
        return _first_text(attributes, ("url.full",))
    port = _count(attributes.get("server.port"))
    return f"https://{address}" + (f":{port}" if port and port != 443 else "")
