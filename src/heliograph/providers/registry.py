"""The built-in providers, keyed by the route prefix they are served under on the gateway.

Every origin can be overridden with `HELIOGRAPH_<PREFIX>_BASE_URL`; that is how deployments reach
regional endpoints and how tests reach a fake provider.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from heliograph.providers import anthropic, bedrock, gemini, openai, vertex
from heliograph.providers.base import Provider

BUILT_IN: tuple[Provider, ...] = (
    Provider("OPENAI", "openai", "https://api.openai.com", openai.parse, "openai", True),
    Provider("ANTHROPIC", "anthropic", "https://api.anthropic.com", anthropic.parse, "anthropic"),
    Provider(
        "GOOGLE",
        "gemini",
        "https://generativelanguage.googleapis.com",
        gemini.parse,
        "google",
        stream_in_path=(":streamGenerateContent",),
    ),
    Provider("GROQ", "groq", "https://api.groq.com", openai.parse, "groq", True),
    Provider("TOGETHER", "together", "https://api.together.xyz", openai.parse, "together", True),
    # Mistral reports usage on its last chunk unasked and rejects unknown body fields.
    Provider("MISTRAL", "mistral", "https://api.mistral.ai", openai.parse, "mistral"),
    Provider("DEEPSEEK", "deepseek", "https://api.deepseek.com", openai.parse, "deepseek", True),
    Provider("X", "xai", "https://api.x.ai", openai.parse, "x-ai", True),
    Provider("OPENROUTER", "openrouter", "https://openrouter.ai", openai.parse, "openrouter", True),
    Provider("FIREWORKS", "fireworks", "https://api.fireworks.ai", openai.parse, "fireworks", True),
    Provider("PERPLEXITY", "perplexity", "https://api.perplexity.ai", openai.parse, "perplexity"),
    Provider("CEREBRAS", "cerebras", "https://api.cerebras.ai", openai.parse, "cerebras", True),
    # Azure OpenAI has no one origin: each resource has its own, named per request by
    # `Helicone-OpenAI-Api-Base` (checked by `gateway/targets.py`) or once by
    # HELIOGRAPH_AZURE_BASE_URL. Paths are Azure's own (`/openai/deployments/{name}/...`).
    Provider("AZURE", "azure", "", openai.parse, "azure", True),
    # AWS Bedrock: the origin is the region's runtime endpoint (HELIOGRAPH_BEDROCK_BASE_URL, or
    # `AWS_REGION`'s); the gateway signs every call itself with SigV4.
    Provider(
        "BEDROCK",
        "bedrock",
        "",
        bedrock.parse,
        "aws",
        stream_in_path=("/converse-stream", "/invoke-with-response-stream"),
    ),
    # Google Vertex AI: the origin is `VERTEX_LOCATION`'s endpoint (HELIOGRAPH_VERTEX_BASE_URL
    # overrides it); Gemini models answer in Gemini's shape, Claude models in Anthropic's.
    Provider(
        "VERTEX",
        "vertex",
        "",
        vertex.parse,
        "google",
        stream_in_path=(":streamGenerateContent", ":streamRawPredict"),
    ),
)

# Providers reached through `/gateway` are recognised by origin, so their usage is still parsed.
GENERIC = Provider("CUSTOM", "gateway", "", openai.parse, None)


def build_registry(
    origin_overrides: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> dict[str, Provider]:
    """Providers by prefix, with origins replaced where `origin_overrides[prefix]` is set; the
    regional clouds' default origins come from `environ` (`AWS_REGION`, `VERTEX_LOCATION`)."""
    regional = _regional_origins(environ or {})
    registry = {}
    for provider in BUILT_IN:
        default = provider.origin or regional.get(provider.prefix, "")
        origin = origin_overrides.get(provider.prefix, default).rstrip("/")
        registry[provider.prefix] = replace(provider, origin=origin)
    return registry


def provider_for_origin(registry: Mapping[str, Provider], origin: str) -> Provider:
    """The provider serving `origin` (for `/gateway` traffic), or the generic one."""
    for provider in registry.values():
        if provider.origin == origin:
            return provider
    return replace(GENERIC, origin=origin)


def _regional_origins(environ: Mapping[str, str]) -> dict[str, str]:
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    location = environ.get("VERTEX_LOCATION") or "us-central1"
    vertex_host = (
        "https://aiplatform.googleapis.com"
        if location == "global"
        else f"https://{location}-aiplatform.googleapis.com"
    )
    return {
        "bedrock": f"https://bedrock-runtime.{region}.amazonaws.com",
        "vertex": vertex_host if re.fullmatch(r"[a-z0-9-]{1,63}", location) else "",
    }
