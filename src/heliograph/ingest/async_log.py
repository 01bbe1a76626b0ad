"""Helicone's async-log body (`providerRequest`, `providerResponse`, `timing`), as Helicone's
manual loggers and LiteLLM's `helicone` callback send it to `/{oai,anthropic,googleapis,custom}
/v1/log`, turned into a `RequestRecord` whose bodies ingest reads like a proxied request's.

`Helicone-*` options come from `providerRequest.meta` and, winning over it, the log request's
own headers (helicone-helpers sends them there). Every string is cleaned and every value checked:
a malformed body is an `InvalidAsyncLog` (a 400) that names the field. `load_body` reads the raw
body; both are CPU work on a large log, for a worker thread."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson

from heliograph.domain.errors import InvalidInput
from heliograph.domain.json_values import (
    EARLIEST,
    INT32_MAX,
    LATEST,
    MAX_JSON_DEPTH,
    clean_json,
    is_number,
    nested_deeper_than,
)
from heliograph.domain.pricing import MAX_COST_USD, MAX_MODEL_CHARS
from heliograph.domain.record import (
    MAX_PROPERTIES,
    MAX_PROPERTY_NAME_CHARS,
    MAX_URL_CHARS,
    Attribution,
    RequestRecord,
)
from heliograph.domain.text import clean_text, cut_text

# The route's first segment names the provider whose parser reads the bodies.
ROUTE_PROVIDERS = {
    "oai": "OPENAI",
    "anthropic": "ANTHROPIC",
    "googleapis": "GOOGLE",
    "custom": "CUSTOM",
}
MAX_META_VALUE_CHARS = 8192
PROPERTY_PREFIX = "helicone-property-"
# Session headers are columns of their own and, as in Helicone, properties too.
SESSION_PROPERTIES = {
    "helicone-session-id": "Helicone-Session-Id",
    "helicone-session-path": "Helicone-Session-Path",
    "helicone-session-name": "Helicone-Session-Name",
}
# A bare epoch below this (2100-01-01) is in seconds, at or above it in milliseconds (Helicone's).
SECONDS_UNTIL = 4_102_444_800


class InvalidAsyncLog(InvalidInput):
    """The body is not in Helicone's async-log shape; the text names the field."""


def load_body(raw: bytes) -> Any:
    """The JSON document of a log's body, read by orjson; what orjson refuses is read again by
    Python's reader, which takes all Python's `json.dumps` writes (an escaped lone surrogate,
    cleaned later; NaN, refused or dropped by the checks), as FastAPI's reading of it did."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        refusal = str(error)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # bytes that are not UTF-8 are a ValueError too
        raise InvalidAsyncLog(f"the body is not JSON: {refusal[:200]}") from None


def record_from_async_log(
    document: Any,
    headers: Iterable[tuple[str, str]],
    provider: str,
    organization_id: str,
    key_id: str,
    now: datetime,
) -> RequestRecord:
    """The record of one async log sent by a key of `organization_id` on `provider`'s route."""
    request = _object(document, "the body", required=True)
    if nested_deeper_than(request, MAX_JSON_DEPTH):
        raise InvalidAsyncLog(f"the body is nested more than {MAX_JSON_DEPTH} levels deep")
    provider_request = _object(request.get("providerRequest"), "providerRequest", required=True)
    response = _object(request.get("providerResponse"), "providerResponse", required=True)
    request_json = _object(provider_request.get("json"), "providerRequest.json", required=True)
    url = _url(provider_request.get("url"))
    options = _options(_object(provider_request.get("meta"), "providerRequest.meta"), headers)
    start, end, ttft = _timing(request.get("timing"), now)
    chosen_id = _valid_uuid(options.get("helicone-request-id", ""))
    is_stream = request_json.get("stream") is True or _streams_in_url(provider, url)
    response_body, is_stream = _response_body(response, is_stream)
    return RequestRecord(
        request_id=chosen_id or str(uuid.uuid4()),
        organization_id=organization_id,
        created_at=start,
        provider=provider,
        target_url=url,
        path=_path(url),
        method="POST",
        request_body=orjson.dumps(clean_json(request_json)),
        status=_status(response.get("status")),
        response_body=response_body,
        response_created_at=end,
        latency_ms=round((end - start) / timedelta(milliseconds=1)),
        time_to_first_token_ms=ttft,
        is_stream=is_stream,
        attribution=_attribution(options),
        api_key_id=key_id,
        client_request_id=chosen_id is not None,
        reported=_reported(request_json, response),
    )


def _object(value: Any, where: str, *, required: bool = False) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise InvalidAsyncLog(f"{where} must be an object")
    return value


def _url(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_URL_CHARS:
        raise InvalidAsyncLog(f"providerRequest.url must be a string of at most {MAX_URL_CHARS}")
    return clean_text(value)


def _path(url: str) -> str:
    """The path (and query) of a URL, or the whole value when it is not one
    (`custom-model-nopath`): the path is where a Gemini request names its model."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket, say: kept as it came
        return url
    if not parts.scheme or not parts.netloc:
        return url
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _streams_in_url(provider: str, url: str) -> bool:
    return provider == "GOOGLE" and (":streamGenerateContent" in url or "alt=sse" in url)


def _options(meta: dict[str, Any], headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Every `Helicone-*` option, lower-cased: the meta's, then the log request's headers."""
    options: dict[str, str] = {}
    for name, value in meta.items():
        lower = str(name).lower()
        text = _meta_value(name, value) if lower.startswith("helicone-") else None
        if text is not None:
            options[clean_text(lower)] = text
    for name, value in headers:
        lower = name.lower()
        if lower.startswith("helicone-"):
            options[lower] = clean_text(value)
    options.pop("helicone-auth", None)  # the key is the Authorization header's, never stored
    return options


def _meta_value(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"  # as JavaScript spells them
    if is_number(value):
        return str(value)
    if not isinstance(value, str) or len(value) > MAX_META_VALUE_CHARS:
        where = f"providerRequest.meta[{clean_text(str(name))[:100]!r}]"
        raise InvalidAsyncLog(f"{where} must be a string of at most {MAX_META_VALUE_CHARS}")
    return clean_text(value)


def _attribution(options: Mapping[str, str]) -> Attribution:
    properties: dict[str, str] = {}
    custom = 0
    for name, value in options.items():
        if name.startswith(PROPERTY_PREFIX):
            custom += 1
            key = name[len(PROPERTY_PREFIX) :]
            if custom > MAX_PROPERTIES or not 0 < len(key) <= MAX_PROPERTY_NAME_CHARS:
                raise InvalidAsyncLog(
                    f"at most {MAX_PROPERTIES} Helicone-Property-* values, each name of 1 to"
                    f" {MAX_PROPERTY_NAME_CHARS} characters"
                )
            properties[key] = value  # lower-cased, as Helicone keeps custom keys
        elif name in SESSION_PROPERTIES:
            properties[SESSION_PROPERTIES[name]] = value
    get = options.get
    return Attribution(
        user_id=get("helicone-user-id", ""),
        properties=properties,
        session_id=get("helicone-session-id", ""),
        session_path=get("helicone-session-path", ""),
        session_name=get("helicone-session-name", ""),
        omit_request=get("helicone-omit-request", "").strip().lower() == "true",
        omit_response=get("helicone-omit-response", "").strip().lower() == "true",
        model_override=get("helicone-model-override", ""),
    )


def _valid_uuid(value: str) -> str | None:
    """A caller-chosen id; anything but a UUID is replaced by a fresh one, as Helicone does."""
    try:
        return str(uuid.UUID(value.strip())) if value else None
    except ValueError:
        return None


def _timing(timing: Any, now: datetime) -> tuple[datetime, datetime, int | None]:
    """Start, end and time to first token (ms); without `timing`, both times are now."""
    if timing is None:
        return now, now, None
    timing = _object(timing, "timing")
    start = _moment(timing.get("startTime"), "timing.startTime")
    end = _moment(timing.get("endTime"), "timing.endTime")
    if end < start:
        raise InvalidAsyncLog("timing.endTime must not be before timing.startTime")
    ttft = timing.get("timeToFirstToken")
    if ttft is None:
        return start, end, None
    if not is_number(ttft) or not 0 <= ttft <= INT32_MAX:
        raise InvalidAsyncLog(f"timing.timeToFirstToken must be milliseconds, 0 to {INT32_MAX}")
    return start, end, round(ttft)


def _moment(value: Any, where: str) -> datetime:
    """`{seconds, milliseconds}`, epoch seconds or milliseconds (a number or digits), or an
    ISO 8601 time."""
    shape = f"{where} must be {{seconds, milliseconds}}, an epoch or an ISO 8601 time"
    try:
        if isinstance(value, dict):
            seconds, milliseconds = value.get("seconds"), value.get("milliseconds", 0)
            if not is_number(seconds) or not is_number(milliseconds):
                raise InvalidAsyncLog(f"{where} needs numeric seconds and milliseconds")
            moment = datetime.fromtimestamp(seconds + milliseconds / 1000, UTC)
        elif is_number(value) or (isinstance(value, str) and value.isdigit()):
            epoch = float(value)
            moment = datetime.fromtimestamp(epoch if epoch < SECONDS_UNTIL else epoch / 1000, UTC)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(clean_text(value))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        else:
            raise InvalidAsyncLog(shape)
    except (ValueError, OverflowError, OSError):
        raise InvalidAsyncLog(shape) from None
    if not EARLIEST <= moment < LATEST:
        raise InvalidAsyncLog(f"{where} must be between 1970 and 2200")
    return moment


def _status(value: Any) -> int:
    if not is_number(value) or not -INT32_MAX <= value <= INT32_MAX or value != int(value):
        raise InvalidAsyncLog("providerResponse.status must be an integer (an HTTP status)")
    return int(value)


def _response_body(response: dict[str, Any], is_stream: bool) -> tuple[bytes, bool]:
    """The response as the provider would have sent it, and whether it is a stream:
    `textBody` when given (a stream's chunks as server-sent events), else `json` (whose
    `streamed_data` list, Helicone's older stream shape, becomes events)."""
    text, document = response.get("textBody"), response.get("json")
    if text is not None and not isinstance(text, str):
        raise InvalidAsyncLog("providerResponse.textBody must be a string")
    if document is not None and not isinstance(document, dict | list):
        raise InvalidAsyncLog("providerResponse.json must be an object")
    _object(response.get("headers"), "providerResponse.headers")
    if text:
        text = clean_text(text)
        return (_as_events(text) if is_stream else text).encode(), is_stream
    if document is None:
        raise InvalidAsyncLog("providerResponse needs json or textBody")
    chunks = document.get("streamed_data") if isinstance(document, dict) else None
    if isinstance(chunks, list):
        return b"".join(b"data: " + orjson.dumps(clean_json(c)) + b"\n\n" for c in chunks), True
    return orjson.dumps(clean_json(document)), is_stream


def _as_events(text: str) -> str:
    """Chunks logged one JSON object a line (helicone-helpers' stream builder) as the
    server-sent events the provider sent; text already in events, or not JSON, is kept."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or any(line.startswith(("data:", "event:")) for line in lines):
        return text
    if not all(line.lstrip().startswith(("{", "[")) for line in lines):
        return text  # told apart by its first character: parsing each line here would be waste
    return "".join(f"data: {line}\n\n" for line in lines)


def _reported(request_json: dict[str, Any], response: dict[str, Any]) -> dict[str, object]:
    """Model, usage and cost in the forms Helicone documents for custom models, standing in
    where the provider's parser finds none in the bodies."""
    document = response.get("json")
    document = document if isinstance(document, dict) else {}
    reported: dict[str, object] = {}
    model = document.get("model") or request_json.get("model")
    if isinstance(model, str):  # cut as every stored model is (`ingest/rows.py`)
        reported["model"] = cut_text(model, MAX_MODEL_CHARS)
    prompt, completion = _documented_usage(document)
    if prompt is not None:
        reported["promptTokens"] = prompt
    if completion is not None:
        reported["completionTokens"] = completion
    cost = response.get("cost")
    if cost is not None:
        if not is_number(cost) or not 0 <= cost <= MAX_COST_USD:
            raise InvalidAsyncLog(f"providerResponse.cost must be dollars, 0 to {MAX_COST_USD}")
        reported["cost"] = cost
    return reported


def _documented_usage(document: dict[str, Any]) -> tuple[int | None, int | None]:
    """Prompt and completion tokens from `usage` (OpenAI or Anthropic names), `usageMetadata`
    (Google's) or top-level `prompt_token_count` / `generation_token_count`."""
    usage = document.get("usage")
    metadata = document.get("usageMetadata")
    pairs = (
        (usage, "prompt_tokens", "completion_tokens"),
        (usage, "input_tokens", "output_tokens"),
        (metadata, "promptTokenCount", "candidatesTokenCount"),
        (document, "prompt_token_count", "generation_token_count"),
    )
    for source, prompt_key, completion_key in pairs:
        if isinstance(source, dict):
            prompt, completion = _count(source.get(prompt_key)), _count(source.get(completion_key))
            if prompt is not None or completion is not None:
                return prompt, completion
    return None, None


def _count(value: Any) -> int | None:
    if is_number(value) and 0 <= value <= INT32_MAX and value == int(value):
        return int(value)
    return None
