"""Google's Generative Language API (Gemini): generateContent and streamGenerateContent.

Usage is in `usageMetadata`; a stream (SSE with `alt=sse`, or a JSON array without it) carries it
on its last chunks, so the last one seen wins.
"""

from __future__ import annotations

from typing import Any

from heliograph.domain.usage import Usage
from heliograph.providers.base import Parsed
from heliograph.providers.sse import as_int, iter_json_events, load_json


def parse(body: bytes, is_stream: bool) -> Parsed:
    chunks = _chunks(body, is_stream)
    model, metadata = "", None
    for chunk in chunks:
        version = chunk.get("modelVersion")
        model = version if isinstance(version, str) else model
        if isinstance(chunk.get("usageMetadata"), dict):
            metadata = chunk["usageMetadata"]
    return Parsed(model, _usage(metadata))


def _chunks(body: bytes, is_stream: bool) -> list[dict[str, Any]]:
    stripped = body.lstrip()
    if is_stream and not stripped.startswith((b"[", b"{")):
        return list(iter_json_events(body))
    document = load_json(body)
    if isinstance(document, list):
        return [item for item in document if isinstance(item, dict)]
    return [document] if isinstance(document, dict) else []


def _usage(metadata: Any) -> Usage:
    if not isinstance(metadata, dict):
        return Usage()
    prompt = as_int(metadata.get("promptTokenCount"))
    cached = as_int(metadata.get("cachedContentTokenCount")) or 0
    candidates = as_int(metadata.get("candidatesTokenCount"))
    thoughts = as_int(metadata.get("thoughtsTokenCount")) or 0
    if prompt is not None and candidates is None:
        candidates = 0
    return Usage(
        input_tokens=None if prompt is None else max(prompt - cached, 0),
        output_tokens=candidates,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
    )
