"""How the unified API reaches each provider: its origin, the dialect it speaks, the header its
key goes in and the operator's key from the environment. Built once at start from the built-in
providers, the gateway configuration file's own providers and deployments, and the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from heliograph.domain.gateway_config import CustomProvider, Deployment, GatewayConfig
from heliograph.providers import openai
from heliograph.providers.base import Provider
from heliograph.translation.dialects import (
    ANTHROPIC_VERSION,
    AnthropicMessages,
    AzureChat,
    BedrockConverse,
    Dialect,
    GeminiGenerate,
    OpenAIChat,
    VertexChat,
)

DEFAULT_AZURE_API_VERSION = "2024-10-21"

# The operator's key for each built-in provider, by environment variable (the first set wins).
ENV_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "azure": ("AZURE_OPENAI_API_KEY", "AZURE_API_KEY"),
    "groq": ("GROQ_API_KEY",),
    "together": ("TOGETHER_API_KEY",),
    "mistral": ("MISTRAL_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "fireworks": ("FIREWORKS_API_KEY",),
    "perplexity": ("PERPLEXITY_API_KEY",),
    "cerebras": ("CEREBRAS_API_KEY",),
}
# Where each OpenAI-compatible provider serves `/chat/completions`, below its origin.
OPENAI_PATHS = {
    "openai": "/v1",
    "groq": "/openai/v1",
    "together": "/v1",
    "mistral": "/v1",
    "deepseek": "",
    "xai": "/v1",
    "openrouter": "/api/v1",
    "fireworks": "/inference/v1",
    "perplexity": "",
    "cerebras": "/v1",
}
KEY_HEADERS = {"anthropic": "x-api-key", "gemini": "x-goog-api-key", "azure": "api-key"}
CLOUD_AUTH = {"bedrock": "aws", "vertex": "google"}


@dataclass(frozen=True, slots=True)
class Upstream:
    """One provider as the unified API calls it. `key_header` None: it wants no key."""

    provider: Provider
    origin: str
    dialect: Dialect
    key_header: str | None = "Authorization"
    env_key: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    # "key": a key in `key_header`; "aws": SigV4-signed; "google": a service account's token.
    auth: str = "key"

    def key_headers(self, secret: str | None) -> list[tuple[str, str]]:
        """The headers every call sends: content type, the provider's own, and its key."""
        headers = [("Content-Type", "application/json"), ("Accept-Encoding", "identity")]
        headers.extend(self.headers)
        if self.key_header is not None and secret:
            value = f"Bearer {secret}" if self.key_header == "Authorization" else secret
            headers.append((self.key_header, value))
        return headers


def build_upstreams(
    providers: Mapping[str, Provider], config: GatewayConfig, environ: Mapping[str, str]
) -> dict[str, Upstream]:
    """Every provider the unified API can call, by route prefix; one whose origin is unknown
    (Azure without HELIOGRAPH_AZURE_BASE_URL) is left out, so only its deployments reach it."""
    upstreams: dict[str, Upstream] = {}
    for prefix, provider in providers.items():
        dialect = _dialect(prefix, provider, environ)
        if dialect is None or not provider.origin:
            continue
        upstreams[prefix] = Upstream(
            provider,
            provider.origin,
            dialect,
            KEY_HEADERS.get(prefix, "Authorization"),
            _env_key(environ, ENV_KEYS.get(prefix, ())),
            (("anthropic-version", ANTHROPIC_VERSION),) if prefix == "anthropic" else (),
            CLOUD_AUTH.get(prefix, "key"),
        )
    for custom in config.providers:
        upstreams[custom.name] = custom_upstream(custom, environ)
    return upstreams


def custom_upstream(custom: CustomProvider, environ: Mapping[str, str]) -> Upstream:
    """An operator's OpenAI-compatible server: logged under its upper-cased name."""
    origin, _, _ = _split_base(custom.base_url)
    provider = Provider(custom.logged_name, custom.name, origin, openai.parse, None)
    prefix = custom.base_url[len(origin) :]
    key_env = custom.api_key_env
    return Upstream(
        provider,
        origin,
        OpenAIChat(prefix=prefix, name=custom.name),
        "Authorization" if key_env else None,
        environ.get(key_env) if key_env else None,
    )


def for_deployment(
    upstream: Upstream | None,
    deployment: Deployment,
    providers: Mapping[str, Provider],
    environ: Mapping[str, str],
) -> Upstream | None:
    """`upstream` as `deployment` overrides it: its own endpoint, API version and key."""
    if deployment.provider == "azure":
        base = providers["azure"]
        origin = (deployment.api_base or base.origin).rstrip("/")
        if not origin:
            return None
        version = deployment.api_version or DEFAULT_AZURE_API_VERSION
        return Upstream(
            replace(base, origin=origin),
            origin,
            AzureChat(version),
            "api-key",
            _deployment_key(deployment, environ, ENV_KEYS["azure"]),
        )
    if upstream is None:
        return None
    changes: dict[str, object] = {}
    if deployment.api_base:
        origin, _, _ = _split_base(deployment.api_base)
        changes["origin"] = origin
        changes["provider"] = replace(upstream.provider, origin=origin)
        if isinstance(upstream.dialect, OpenAIChat):
            path = deployment.api_base.rstrip("/")[len(origin) :]
            changes["dialect"] = replace(upstream.dialect, prefix=path)
    if deployment.api_key_env:
        changes["env_key"] = environ.get(deployment.api_key_env)
    return replace(upstream, **changes)  # type: ignore[arg-type]


def _dialect(prefix: str, provider: Provider, environ: Mapping[str, str]) -> Dialect | None:
    if prefix in OPENAI_PATHS:
        return OpenAIChat(OPENAI_PATHS[prefix], provider.injects_stream_usage, prefix)
    if prefix == "anthropic":
        return AnthropicMessages()
    if prefix == "gemini":
        return GeminiGenerate()
    if prefix == "azure":
        return AzureChat(environ.get("AZURE_OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION)
    if prefix == "bedrock":
        return BedrockConverse()
    if prefix == "vertex":  # the project is the caller's service account's: set per call
        return VertexChat("", "")
    return None


def _env_key(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if environ.get(name):
            return environ[name]
    return None


def _deployment_key(
    deployment: Deployment, environ: Mapping[str, str], fallback: tuple[str, ...]
) -> str | None:
    if deployment.api_key_env:
        return environ.get(deployment.api_key_env)
    return _env_key(environ, fallback)


def _split_base(base_url: str) -> tuple[str, str, str]:
    """`scheme://host[:port]` of a base URL (validated when the configuration was read)."""
    scheme, _, rest = base_url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host}", slash, path
