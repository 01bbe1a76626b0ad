"""AWS Bedrock's answers, for usage: Converse's `usage` (camel case), InvokeModel's model-native
body (Anthropic's, for Claude), and both streams in AWS's binary event-stream framing, whose
frames are decoded here (ConverseStream's `metadata` event carries the usage; InvokeModel's
`chunk` events carry the model's own stream events)."""

from __future__ import annotations

from typing import Any

import orjson

from heliograph.domain.usage import Usage
from heliograph.providers import anthropic
from heliograph.providers.aws_event_stream import (
    CorruptEventStream,
    EventStreamDecoder,
    invoke_stream_payloads,
)
from heliograph.providers.base import Parsed, parse_body
from heliograph.providers.sse import as_int


def parse(body: bytes, is_stream: bool) -> Parsed:
    return parse_body(body, is_stream, _parse_stream, _parse_document)


def _parse_document(document: dict[str, Any]) -> Parsed:
    usage = document.get("usage")
    if isinstance(usage, dict) and "inputTokens" in usage:
        return Parsed("", converse_usage(usage))
    return anthropic.parse(orjson.dumps(document), False)  # a Claude InvokeModel answer


def _parse_stream(body: bytes) -> Parsed:
    if body.startswith(b"data:") or body.startswith(b"event:"):
        return anthropic.parse(body, True)  # already SSE (a stream the gateway translated)
    try:
        messages = EventStreamDecoder().feed(body)
    except CorruptEventStream as broken:
        messages = broken.decoded
    for message in messages:
        if message.event_type == "metadata" and isinstance(message.payload.get("usage"), dict):
            return Parsed("", converse_usage(message.payload["usage"]))
    documents, _ = invoke_stream_payloads(body)
    if documents:
        events = b"".join(b"data: " + document + b"\n\n" for document in documents)
        return anthropic.parse(events, True)
    return Parsed()


def converse_usage(usage: dict[str, Any]) -> Usage:
    """Converse's counts, whose `inputTokens` leaves out cache reads and writes."""
    return Usage(
        input_tokens=as_int(usage.get("inputTokens")),
        output_tokens=as_int(usage.get("outputTokens")),
        cache_read_tokens=as_int(usage.get("cacheReadInputTokens")) or 0,
        cache_write_tokens=as_int(usage.get("cacheWriteInputTokens")) or 0,
    )
