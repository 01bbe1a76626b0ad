"""Which providers serve a model, in the order the unified gateway tries them. Built once at
start from the bundled genai-prices snapshot and the gateway configuration file; `resolve` turns
a parsed `model` string into the (provider, upstream model) routes to try, with dict lookups.

Where a model's routes come from, first match wins:

1. `[[deployments]]` naming it (any case): those deployments, in file order, and nothing else;
   the operator who spread a model over deployments decides where it goes.
2. Its exact id (any case) in genai-prices or in a `[[providers]]` entry's `models`: every
   provider listing it, under that provider's spelling. Azure is never derived from genai-prices:
   it needs an endpoint, so it is reached through deployments only.
3. genai-prices' match rules of the model's maker (`gpt-4o-2024-08-06` is OpenAI's `gpt-4o`):
   the maker (and Vertex for Google's models), under the caller's spelling.

Routes are ordered: the model's maker (gpt-*/o* → openai, claude-* → anthropic, gemini-* →
gemini, grok-* → xai, mistral's names → mistral, deepseek-* → deepseek), then the operator's
providers in file order, then `PREFERENCE`. A candidate naming a provider keeps only that
provider's routes, and when none is known passes the model through to it unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from functools import lru_cache
from typing import Any, NamedTuple

from heliograph.domain.errors import InvalidInput
from heliograph.domain.gateway_config import (
    CustomProvider,
    Deployment,
    GatewayConfig,
    ModelPrice,
)
from heliograph.domain.model_strings import PROVIDERS, Candidate, ModelChoice, parse_model_string

# After the maker and the operator's own providers: first parties, clouds, hosts, aggregators.
PREFERENCE = (
    "openai",
    "anthropic",
    "gemini",
    "xai",
    "mistral",
    "deepseek",
    "vertex",
    "bedrock",
    "azure",
    "groq",
    "cerebras",
    "fireworks",
    "together",
    "perplexity",
    "openrouter",
)

# genai-prices provider id → the route prefixes that serve its models under the same ids.
PRICE_PROVIDERS: dict[str, tuple[str, ...]] = {
    "openai": ("openai",),
    "anthropic": ("anthropic",),
    "google": ("gemini", "vertex"),
    "aws": ("bedrock",),
    "groq": ("groq",),
    "together": ("together",),
    "mistral": ("mistral",),
    "deepseek": ("deepseek",),
    "x-ai": ("xai",),
    "openrouter": ("openrouter",),
    "fireworks": ("fireworks",),
    "perplexity": ("perplexity",),
    "cerebras": ("cerebras",),
}

# Who makes a model, by its name (lower-cased), and that maker's genai-prices provider id.
MAKERS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(r"gpt-|chatgpt-|o\d+(?:-|$)|text-embedding-|dall-e-|tts-|whisper-|codex-"),
        "openai",
        "openai",
    ),
    (re.compile(r"claude-"), "anthropic", "anthropic"),
    (re.compile(r"gemini-|gemma-"), "gemini", "google"),
    (re.compile(r"grok-"), "xai", "x-ai"),
    (
        re.compile(r"(?:open-)?(?:mistral|mixtral|codestral|devstral|magistral|ministral|pixtral)"),
        "mistral",
        "mistral",
    ),
    (re.compile(r"deepseek-"), "deepseek", "deepseek"),
)
# Google lists partner models (Claude on Vertex) under names neither Google API accepts.
GOOGLE_OWN = ("gemini-", "gemma-")
RULE_CACHE_SIZE = 4096


class UnknownModel(InvalidInput):
    """A model named without a provider that no provider is known to serve."""

    code = "unknown_model"


class NoRoute(InvalidInput):
    """Nothing is left to try: every route excluded, or a provider this gateway does not serve."""

    code = "no_route"


class Route(NamedTuple):
    provider: str  # route prefix
    model: str  # the name sent upstream
    deployment: Deployment | None = None  # set when a `[[deployments]]` entry chose it


class ModelRegistry:
    """Routes by model name; immutable once built. Build it with `build_model_registry`."""

    def __init__(
        self,
        native: dict[str, tuple[Route, ...]],
        deployed: dict[str, tuple[Route, ...]],
        makers_catalog: dict[str, Any],
        config: GatewayConfig,
        served: frozenset[str],
    ) -> None:
        self._native = native
        self._deployed = deployed
        self._makers_catalog = makers_catalog
        self._served = served
        self._custom = config.provider_names
        self._prices = {
            (provider.name, model): price
            for provider in config.providers
            for model, price in provider.prices.items()
        }
        self._by_rules = lru_cache(maxsize=RULE_CACHE_SIZE)(self._match_rules)

    def parse(self, text: str) -> ModelChoice:
        """`text` as a model string, the operator's providers recognised."""
        return parse_model_string(text, self._custom)

    def resolve(self, choice: ModelChoice) -> list[Route]:
        """Every candidate's routes, in order, without repeats or excluded providers."""
        routes: dict[Route, None] = {}
        for candidate in choice.candidates:
            for route in self._routes(candidate):
                if route.provider not in choice.excluded:
                    routes.setdefault(route)
        if not routes:
            excluded = ", ".join(sorted(choice.excluded))
            raise NoRoute(f"model: every provider of these models is excluded ({excluded})")
        return list(routes)

    def listing(self) -> dict[str, list[str]]:
        """Every model by name callers can use, with the providers serving it, in order:
        deployed models under their own names first, then every known model."""
        found: dict[str, list[str]] = {}
        for routes in (*self._deployed.values(), *self._native.values()):
            for route in routes:
                name = route.deployment.model if route.deployment else route.model
                providers = found.setdefault(name, [])
                if route.provider not in providers:
                    providers.append(route.provider)
        return found

    def is_deployed(self, model: str) -> bool:
        """Whether the configuration file spreads `model` over deployments."""
        return model.lower() in self._deployed

    def custom_price(self, provider: str, model: str) -> ModelPrice | None:
        """The price the configuration file gives `model` on the operator's `provider`."""
        return self._prices.get((provider, model))

    def _routes(self, candidate: Candidate) -> tuple[Route, ...]:
        key = candidate.model.lower()
        wanted = candidate.provider
        if wanted is None:
            known = self._deployed.get(key) or self._native.get(key)
            known = known or self._by_rules(candidate.model)
            if not known:
                raise UnknownModel(_unknown(candidate.model))
            return known
        if wanted not in self._served:
            raise NoRoute(f"model: provider {wanted!r} is not served by this gateway")
        for known in (self._deployed.get(key, ()), self._native.get(key, ())):
            on_provider = tuple(route for route in known if route.provider == wanted)
            if on_provider:
                return on_provider
        return (Route(wanted, candidate.model),)

    def _match_rules(self, model: str) -> tuple[Route, ...]:
        """The maker's routes when genai-prices' rules for the maker match `model`."""
        maker = _maker(model.lower())
        if maker is None:
            return ()
        prefix, price_id = maker
        catalog = self._makers_catalog.get(price_id)
        if catalog is None or catalog.find_model(model) is None:
            return ()
        prefixes = PRICE_PROVIDERS[price_id] if prefix == "gemini" else (prefix,)
        return tuple(Route(p, model) for p in prefixes if p in self._served)


def build_model_registry(
    config: GatewayConfig | None = None, served: Collection[str] = PROVIDERS
) -> ModelRegistry:
    """The registry of genai-prices' models and `config`'s, routing only to the built-in
    providers in `served` (those the gateway can call) and the operator's own."""
    from genai_prices import data_snapshot

    config = config or GatewayConfig()
    reachable = frozenset(served) | config.provider_names
    snapshot = {provider.id: provider for provider in data_snapshot.get_snapshot().providers}
    found: dict[str, list[Route]] = {}
    for price_id, prefixes in PRICE_PROVIDERS.items():
        if price_id in snapshot:
            _add_priced(found, snapshot[price_id], prefixes, reachable)
    for provider in config.providers:
        _add_custom(found, provider)
    native = {key: _ordered(key, routes, config.providers) for key, routes in found.items()}
    makers_catalog = {price_id: snapshot[price_id] for _, _, price_id in MAKERS}
    deployed = _deployments(config.deployments, reachable)
    return ModelRegistry(native, deployed, makers_catalog, config, reachable)


def _add_priced(
    found: dict[str, list[Route]], catalog: Any, prefixes: tuple[str, ...], served: frozenset[str]
) -> None:
    for model in catalog.models:
        model_id: str = model.id
        if catalog.id == "google" and not model_id.lower().startswith(GOOGLE_OWN):
            continue
        routes = found.setdefault(model_id.lower(), [])
        routes.extend(Route(prefix, model_id) for prefix in prefixes if prefix in served)


def _add_custom(found: dict[str, list[Route]], provider: CustomProvider) -> None:
    for model in provider.models:
        found.setdefault(model.lower(), []).append(Route(provider.name, model))


def _ordered(
    key: str, routes: Iterable[Route], custom: tuple[CustomProvider, ...]
) -> tuple[Route, ...]:
    maker = _maker(key)
    rank = {name: i for i, name in enumerate([p.name for p in custom] + list(PREFERENCE))}
    if maker is not None:
        rank[maker[0]] = -1
    unique = dict.fromkeys(routes)
    return tuple(sorted(unique, key=lambda route: rank.get(route.provider, len(rank))))


def _deployments(
    deployments: Iterable[Deployment], served: frozenset[str]
) -> dict[str, tuple[Route, ...]]:
    routes: dict[str, list[Route]] = {}
    for deployment in deployments:
        if deployment.provider in served:
            route = Route(deployment.provider, deployment.upstream_model, deployment)
            routes.setdefault(deployment.model.lower(), []).append(route)
    return {key: tuple(value) for key, value in routes.items()}


def _maker(lowered: str) -> tuple[str, str] | None:
    for pattern, prefix, price_id in MAKERS:
        if pattern.match(lowered):
            return prefix, price_id
    return None


def _unknown(model: str) -> str:
    message = f"model: {model!r} is not a model this gateway knows; name its provider as "
    message += f"'{model}/<provider>'"
    if "/" in model:
        last = model.rpartition("/")[2]
        message += f" ({last!r} is not a provider name)"
    return message
