"""The built-in providers, keyed by the route prefix they are served under on the gateway.

Every origin can be overridden with `HELIOGRAPH_<PREFIX>_BASE_URL`; that is how deployments reach
regional endpoints and how tests reach a fake provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from heliograph.providers import anthropic, gemini, openai
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
)

# Providers reached through `/gateway` are recognised by origin, so their usage is still parsed.
GENERIC = Provider("CUSTOM", "gateway", "", openai.parse, None)


def build_registry(origin_overrides: Mapping[str, str]) -> dict[str, Provider]:
    """Providers by prefix, with origins replaced where `origin_overrides[prefix]` is set."""
    registry = {}
    for provider in BUILT_IN:
        origin = origin_overrides.get(provider.prefix, provider.origin).rstrip("/")
        registry[provider.prefix] = replace(provider, origin=origin)
    return registry


def provider_for_origin(registry: Mapping[str, Provider], origin: str) -> Provider:
    """The provider serving `origin` (for `/gateway` traffic), or the generic one."""
    for provider in registry.values():
        if provider.origin == origin:
            return provider
    return replace(GENERIC, origin=origin)
