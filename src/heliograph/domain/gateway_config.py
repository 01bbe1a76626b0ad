"""The gateway configuration file (TOML, named by `HELIOGRAPH_CONFIG`): the operator's own
OpenAI-compatible providers, deployments that spread one model over several upstreams, and how
each such model is routed. Parsed and validated once at start; every refusal names its key path.
Unknown keys are refused, so a misspelt one never silently does nothing.

Example::

    [[providers]]                      # Ollama on this machine: no key
    name = "ollama"
    base_url = "http://localhost:11434/v1"
    models = ["llama3.1:8b", "qwen2.5-coder:7b"]

    [[providers]]                      # vLLM with a key and its own prices
    name = "vllm"
    base_url = "https://vllm.internal.example:8000/v1"
    api_key_env = "VLLM_API_KEY"
    models = ["meta-llama/Llama-3.3-70B-Instruct"]
    prices."meta-llama/Llama-3.3-70B-Instruct" = { input_per_mtok = "0.20", output_per_mtok = 0.6 }

    [[deployments]]                    # callers say "gpt-4o": two Azure regions share it
    model = "gpt-4o"
    provider = "azure"
    upstream_model = "gpt-4o-eastus"   # the Azure deployment name
    api_base = "https://contoso-east.openai.azure.com"
    api_version = "2024-10-21"
    api_key_env = "AZURE_EAST_KEY"
    weight = 3
    rpm = 600

    [[deployments]]
    model = "gpt-4o"
    provider = "azure"
    upstream_model = "gpt-4o-westeu"
    api_base = "https://contoso-west.openai.azure.com"
    api_version = "2024-10-21"
    api_key_env = "AZURE_WEST_KEY"

    [routing.gpt-4o]
    strategy = "weighted"              # or "lowest-latency", "lowest-cost"
    cooldown_s = 30
    failures_to_cool_down = 3
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

from heliograph.domain.model_strings import ALIASES, PROVIDERS, model_name_problem, provider_name
from heliograph.domain.pricing import PriceOverride

# First path segments the gateway serves itself (`gateway/app.py`, `gateway/async_log.py`).
RESERVED_PREFIXES = frozenset(
    {"gateway", "v1", "oai", "googleapis", "custom", "metrics", "healthz", "healthcheck"}
)
PROVIDER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
MAX_TEXT_CHARS = 256
MAX_MODELS = 1000
MAX_PRICE_PER_MTOK = Decimal(100_000)
MAX_WEIGHT = 1000
MAX_LIMIT = 1_000_000_000
MAX_COOLDOWN_S = 86_400.0
MAX_FAILURES = 1000

T = TypeVar("T")


class GatewayConfigError(ValueError):
    """The configuration file is refused; the message starts with the key path at fault."""


class Strategy(StrEnum):
    WEIGHTED = "weighted"
    LOWEST_LATENCY = "lowest-latency"
    LOWEST_COST = "lowest-cost"


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None


@dataclass(frozen=True, slots=True)
class CustomProvider:
    """An OpenAI-compatible server of the operator's, served under `/{name}/...`."""

    name: str
    base_url: str  # origin plus optional path prefix, without a trailing "/"
    models: tuple[str, ...]
    api_key_env: str | None = None  # None: a local server that wants no key
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)

    @property
    def logged_name(self) -> str:
        """The name its requests are logged under, upper-cased as Helicone's providers are."""
        return self.name.upper().replace("-", "_")


@dataclass(frozen=True, slots=True)
class Deployment:
    """One upstream serving the model callers name `model`."""

    model: str
    provider: str  # a route prefix: built-in (aliases resolved) or a custom provider's name
    upstream_model: str  # the name sent upstream (for Azure, the deployment's name)
    weight: int = 1
    rpm: int | None = None
    tpm: int | None = None
    api_base: str | None = None
    api_version: str | None = None
    api_key_env: str | None = None


@dataclass(frozen=True, slots=True)
class Routing:
    """How the deployments of one model are ordered and rested after failures."""

    strategy: Strategy = Strategy.WEIGHTED
    cooldown_s: float = 30.0
    failures_to_cool_down: int = 3


DEFAULT_ROUTING = Routing()


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    providers: tuple[CustomProvider, ...] = ()
    deployments: tuple[Deployment, ...] = ()
    routing: Mapping[str, Routing] = field(default_factory=dict)  # by lower-cased model

    @property
    def provider_names(self) -> frozenset[str]:
        return frozenset(provider.name for provider in self.providers)

    def routing_for(self, model: str) -> Routing:
        return self.routing.get(model.lower(), DEFAULT_ROUTING)


def operator_prices(config: GatewayConfig) -> list[PriceOverride]:
    """The file's prices as price overrides, which requests of its providers are priced at
    (after the organization's own overrides, which win)."""
    return [
        PriceOverride(
            provider.logged_name,
            model.lower(),
            price.input_per_mtok,
            price.output_per_mtok,
            price.cache_read_per_mtok,
            price.cache_write_per_mtok,
        )
        for provider in config.providers
        for model, price in provider.prices.items()
    ]


def parse_gateway_config(text: str) -> GatewayConfig:
    """The configuration `text` describes, or `GatewayConfigError` naming the first fault."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise GatewayConfigError(f"not valid TOML: {error}") from None
    _only_keys(document, ("providers", "deployments", "routing"), "")
    providers = tuple(_provider(table, path) for path, table in _array(document, "providers", ""))
    _refuse_repeats([p.name for p in providers], "providers", "name")
    custom = frozenset(p.name for p in providers)
    deployments = tuple(
        _deployment(table, path, custom) for path, table in _array(document, "deployments", "")
    )
    routing = _routing(document.get("routing", {}), {d.model.lower() for d in deployments})
    return GatewayConfig(providers, deployments, routing)


# --- [[providers]] ---


def _provider(table: dict[str, Any], path: str) -> CustomProvider:
    _only_keys(table, ("name", "base_url", "api_key_env", "models", "prices"), path)
    name = _provider_name(_required(table, "name", path), _join(path, "name"))
    models = _models(_required(table, "models", path), _join(path, "models"))
    prices = _prices(table.get("prices", {}), _join(path, "prices"), models)
    return CustomProvider(
        name=name,
        base_url=_base_url(_required(table, "base_url", path), _join(path, "base_url")),
        models=models,
        api_key_env=_optional(table, "api_key_env", path, _env_name),
        prices=prices,
    )


def _provider_name(value: object, path: str) -> str:
    name = _text(value, path)
    if not PROVIDER_NAME.fullmatch(name):
        raise GatewayConfigError(
            f"{path}: {name!r} must be 1 to 32 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    if name in PROVIDERS or name in ALIASES or name in RESERVED_PREFIXES:
        raise GatewayConfigError(f"{path}: {name!r} is already a route prefix of the gateway")
    return name


def _models(value: object, path: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise GatewayConfigError(f"{path}: must be a non-empty list of model names")
    if len(value) > MAX_MODELS:
        raise GatewayConfigError(f"{path}: {len(value)} models, at most {MAX_MODELS}")
    models = tuple(_model_name(item, f"{path}[{i}]") for i, item in enumerate(value))
    _refuse_repeats(list(models), path, None)
    return models


def _prices(value: object, path: str, models: tuple[str, ...]) -> dict[str, ModelPrice]:
    table = _table(value, path)
    prices = {}
    for model, entry in table.items():
        entry_path = _join(path, model)
        if model not in models:
            raise GatewayConfigError(f"{entry_path}: {model!r} is not in this provider's models")
        prices[model] = _price(_table(entry, entry_path), entry_path)
    return prices


def _price(table: dict[str, Any], path: str) -> ModelPrice:
    optional = ("cache_read_per_mtok", "cache_write_per_mtok")
    _only_keys(table, ("input_per_mtok", "output_per_mtok", *optional), path)
    return ModelPrice(
        _decimal(_required(table, "input_per_mtok", path), _join(path, "input_per_mtok")),
        _decimal(_required(table, "output_per_mtok", path), _join(path, "output_per_mtok")),
        *(_optional(table, key, path, _decimal) for key in optional),
    )


# --- [[deployments]] ---


def _deployment(table: dict[str, Any], path: str, custom: frozenset[str]) -> Deployment:
    keys = ("model", "provider", "upstream_model", "weight", "rpm", "tpm")
    _only_keys(table, (*keys, "api_base", "api_version", "api_key_env"), path)
    model = _model_name(_required(table, "model", path), _join(path, "model"))
    provider = _deployment_provider(_required(table, "provider", path), _join(path, "provider"))
    if provider not in PROVIDERS and provider not in custom:
        raise GatewayConfigError(
            f"{_join(path, 'provider')}: {provider!r} is neither a built-in provider nor one "
            "of [[providers]]"
        )
    api_base = _optional(table, "api_base", path, _base_url)
    api_version = _optional(table, "api_version", path, _text)
    _check_azure(provider, api_base, api_version, path)
    weight = _optional(table, "weight", path, _bounded_int(1, MAX_WEIGHT))
    return Deployment(
        model=model,
        provider=provider,
        upstream_model=_optional(table, "upstream_model", path, _model_name) or model,
        weight=1 if weight is None else weight,
        rpm=_optional(table, "rpm", path, _bounded_int(1, MAX_LIMIT)),
        tpm=_optional(table, "tpm", path, _bounded_int(1, MAX_LIMIT)),
        api_base=api_base,
        api_version=api_version,
        api_key_env=_optional(table, "api_key_env", path, _env_name),
    )


def _deployment_provider(value: object, path: str) -> str:
    name = _text(value, path)
    # Custom names are lower-case route prefixes; built-in ones may be spelt as aliases.
    return provider_name(name) or name.lower()


def _check_azure(provider: str, api_base: str | None, api_version: str | None, path: str) -> None:
    if provider == "azure" and api_base is None:
        raise GatewayConfigError(f"{path}: an Azure deployment needs api_base (its endpoint)")
    if provider != "azure" and api_version is not None:
        raise GatewayConfigError(f"{_join(path, 'api_version')}: only Azure deployments take it")


# --- [routing.<model>] ---


def _routing(value: object, deployed: set[str]) -> dict[str, Routing]:
    routing = {}
    for model, entry in _table(value, "routing").items():
        path = _join("routing", model)
        if model.lower() not in deployed:
            raise GatewayConfigError(f"{path}: no [[deployments]] entry has model {model!r}")
        if model.lower() in routing:
            raise GatewayConfigError(f"{path}: {model!r} is routed twice (names ignore case)")
        routing[model.lower()] = _model_routing(_table(entry, path), path)
    return routing


def _model_routing(table: dict[str, Any], path: str) -> Routing:
    _only_keys(table, ("strategy", "cooldown_s", "failures_to_cool_down"), path)
    strategy = _optional(table, "strategy", path, _strategy)
    cooldown_s = _optional(table, "cooldown_s", path, _seconds)
    failures = _optional(table, "failures_to_cool_down", path, _bounded_int(1, MAX_FAILURES))
    return Routing(
        strategy=strategy or DEFAULT_ROUTING.strategy,
        cooldown_s=DEFAULT_ROUTING.cooldown_s if cooldown_s is None else cooldown_s,
        failures_to_cool_down=failures or DEFAULT_ROUTING.failures_to_cool_down,
    )


def _strategy(value: object, path: str) -> Strategy:
    text = _text(value, path)
    try:
        return Strategy(text)
    except ValueError:
        choices = ", ".join(repr(s.value) for s in Strategy)
        raise GatewayConfigError(f"{path}: {text!r} is not one of {choices}") from None


def _seconds(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GatewayConfigError(f"{path}: must be a number of seconds")
    if not 0 <= value <= MAX_COOLDOWN_S:
        raise GatewayConfigError(f"{path}: must be between 0 and {MAX_COOLDOWN_S:g} seconds")
    return float(value)


# --- values ---


def _model_name(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise GatewayConfigError(f"{path}: must be a string")
    problem = model_name_problem(value)
    if problem is not None:
        raise GatewayConfigError(f"{path}: {value[:64]!r} {problem}")
    return value


def _base_url(value: object, path: str) -> str:
    url = _text(value, path)
    try:
        parts = urlsplit(url)
        has_host = parts.scheme in ("http", "https") and bool(parts.hostname)
        has_host = has_host and (parts.port is None or parts.port > 0)
    except ValueError:  # a bad port or IPv6 literal
        has_host = False
    if not has_host:
        raise GatewayConfigError(f"{path}: {url!r} is not an http:// or https:// URL with a host")
    if "@" in parts.netloc or parts.query or parts.fragment or url.endswith(("?", "#")):
        raise GatewayConfigError(
            f"{path}: {url!r} must be an origin and optional path, without credentials, "
            "query or fragment"
        )
    return url.rstrip("/")


def _env_name(value: object, path: str) -> str:
    name = _text(value, path)
    if not ENV_NAME.fullmatch(name):
        raise GatewayConfigError(f"{path}: {name!r} is not an environment variable name")
    return name


def _decimal(value: object, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise GatewayConfigError(f"{path}: must be a number or decimal text")
    try:
        number = Decimal(str(value).strip())  # str() of a float is its shortest exact spelling
    except InvalidOperation:
        raise GatewayConfigError(f"{path}: {value!r} is not a decimal number") from None
    if not number.is_finite() or not 0 <= number <= MAX_PRICE_PER_MTOK:
        raise GatewayConfigError(f"{path}: must be between 0 and {MAX_PRICE_PER_MTOK} USD")
    return number


def _bounded_int(low: int, high: int) -> Callable[[object, str], int]:
    def parse(value: object, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise GatewayConfigError(f"{path}: must be a whole number")
        if not low <= value <= high:
            raise GatewayConfigError(f"{path}: must be between {low} and {high}")
        return value

    return parse


def _text(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise GatewayConfigError(f"{path}: must be a string")
    if not value or len(value) > MAX_TEXT_CHARS or not value.isprintable():
        raise GatewayConfigError(f"{path}: must be 1 to {MAX_TEXT_CHARS} printable characters")
    return value


# --- structure ---


def _array(document: dict[str, Any], key: str, path: str) -> list[tuple[str, dict[str, Any]]]:
    """The tables of the array of tables `key`, each with its key path."""
    here = _join(path, key)
    value = document.get(key, [])
    if not isinstance(value, list):
        raise GatewayConfigError(f"{here}: must be an array of tables ([[{key}]])")
    return [(f"{here}[{i}]", _table(item, f"{here}[{i}]")) for i, item in enumerate(value)]


def _table(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GatewayConfigError(f"{path}: must be a table")
    return value


def _only_keys(table: dict[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in table:
        if key not in allowed:
            known = ", ".join(allowed)
            raise GatewayConfigError(f"{_join(path, key)}: unknown key (known: {known})")


def _required(table: dict[str, Any], key: str, path: str) -> object:
    if key not in table:
        raise GatewayConfigError(f"{_join(path, key)}: missing")
    return table[key]


def _optional(
    table: dict[str, Any], key: str, path: str, parse: Callable[[object, str], T]
) -> T | None:
    return parse(table[key], _join(path, key)) if key in table else None


def _refuse_repeats(values: list[str], path: str, key: str | None) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            where = f"{path}[{i}]" + (f".{key}" if key else "")
            raise GatewayConfigError(f"{where}: {value!r} is given twice")
        seen.add(value)


def _join(path: str, key: str) -> str:
    part = key if BARE_KEY.fullmatch(key) else '"' + key.replace('"', '\\"') + '"'
    return f"{path}.{part}" if path else part
