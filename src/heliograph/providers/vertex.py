"""Google Vertex AI's answers, for usage: Gemini models answer in generateContent's shape,
Claude models (`rawPredict`) in Anthropic's Messages shape; the body says which."""

from __future__ import annotations

from heliograph.providers import anthropic, gemini
from heliograph.providers.base import Parsed


def parse(body: bytes, is_stream: bool) -> Parsed:
    if b'"usageMetadata"' in body or b'"candidates"' in body:
        return gemini.parse(body, is_stream)
    return anthropic.parse(body, is_stream)
