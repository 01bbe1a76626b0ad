"""OpenAI and OpenAI-shaped APIs: chat completions, the Responses API and embeddings.

Usage lives in `usage` (chat, embeddings) or `response.usage` (Responses API streams). Stored
input excludes cached tokens and output excludes reasoning tokens, as Helicone stores them.
"""

from __future__ import annotations

from typing import Any

from heliograph.domain.usage import Usage
from heliograph.providers.base import Parsed, model_of, parse_body
from heliograph.providers.sse import as_int, dig, iter_json_events


def parse(body: bytes, is_stream: bool) -> Parsed:
    return parse_body(body, is_stream, _parse_stream, _parse_document)


def _parse_document(document: dict[str, Any]) -> Parsed:
    return Parsed(model_of(document), usage_from(document.get("usage")))


def _parse_stream(body: bytes) -> Parsed:
    model, usage = "", None
    for event in iter_json_events(body):
        response = event.get("response")
        if isinstance(response, dict):  # Responses API: response.created ... response.completed
            model = model_of(response) or model
            if isinstance(response.get("usage"), dict):
                usage = response["usage"]
            continue
        model = model_of(event) or model
        if isinstance(event.get("usage"), dict):
            usage = event["usage"]
    return Parsed(model, usage_from(usage))


def usage_from(usage: Any) -> Usage:
    """Normalise an OpenAI `usage` object (chat, Responses or embeddings shape)."""
    if not isinstance(usage, dict):
        return Usage()
    if "input_tokens" in usage:  # Responses API
        prompt = as_int(usage.get("input_tokens"))
        completion = as_int(usage.get("output_tokens"))
        cached = as_int(dig(usage, "input_tokens_details", "cached_tokens")) or 0
        written = as_int(dig(usage, "input_tokens_details", "cache_creation_tokens")) or 0
        reasoning = as_int(dig(usage, "output_tokens_details", "reasoning_tokens")) or 0
        audio_in = audio_out = 0
    else:
        prompt = as_int(usage.get("prompt_tokens"))
        completion = as_int(usage.get("completion_tokens"))
        if completion is None and prompt is not None:  # embeddings report prompt tokens only
            completion = 0
        cached = as_int(dig(usage, "prompt_tokens_details", "cached_tokens")) or 0
        # Not OpenAI's own: the unified API's translations report cache writes here.
        written = as_int(dig(usage, "prompt_tokens_details", "cache_creation_tokens")) or 0
        audio_in = as_int(dig(usage, "prompt_tokens_details", "audio_tokens")) or 0
        reasoning = as_int(dig(usage, "completion_tokens_details", "reasoning_tokens")) or 0
        audio_out = as_int(dig(usage, "completion_tokens_details", "audio_tokens")) or 0
    return Usage(
        input_tokens=None if prompt is None else max(prompt - cached - written, 0),
        output_tokens=None if completion is None else max(completion - reasoning, 0),
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
        audio_input_tokens=audio_in,
        audio_output_tokens=audio_out,
    )
