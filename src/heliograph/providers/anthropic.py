"""Anthropic's Messages API.

Non-streamed usage is in `usage`; a stream splits it between `message_start` (input and cache
tokens) and the final `message_delta` (output tokens), which are merged here.
"""

from __future__ import annotations

from typing import Any

from heliograph.domain.usage import Usage
from heliograph.providers.base import Parsed, model_of, parse_body
from heliograph.providers.sse import as_int, iter_json_events


def parse(body: bytes, is_stream: bool) -> Parsed:
    return parse_body(body, is_stream, _parse_stream, _parse_document)


def _parse_document(document: dict[str, Any]) -> Parsed:
    return Parsed(model_of(document), _usage(document.get("usage")))


def _parse_stream(body: bytes) -> Parsed:
    model, merged = "", {}
    for event in iter_json_events(body):
        kind = event.get("type")
        if kind == "message_start" and isinstance(event.get("message"), dict):
            message = event["message"]
            model = message.get("model") if isinstance(message.get("model"), str) else model
            merged.update(_known(message.get("usage")))
        elif kind == "message_delta":
            merged.update(_known(event.get("usage")))
    return Parsed(model, _usage(merged) if merged else Usage())


def _known(usage: Any) -> dict[str, Any]:
    if not isinstance(usage, dict):
        return {}
    return {key: value for key, value in usage.items() if value is not None}


def _usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    return Usage(
        input_tokens=as_int(usage.get("input_tokens")),
        output_tokens=as_int(usage.get("output_tokens")),
        cache_read_tokens=as_int(usage.get("cache_read_input_tokens")) or 0,
        cache_write_tokens=as_int(usage.get("cache_creation_input_tokens")) or 0,
    )
