"""The model registry: which providers a model string reaches, in which order, from genai-prices
and the configuration file."""

from __future__ import annotations

from decimal import Decimal

import pytest

from heliograph.domain.errors import InvalidInput
from heliograph.domain.gateway_config import parse_gateway_config
from heliograph.domain.model_strings import ModelStringError
from heliograph.providers.model_registry import (
    ModelRegistry,
    NoRoute,
    Route,
    UnknownModel,
    build_model_registry,
)

CONFIG = """
[[providers]]
name = "ollama"
base_url = "http://localhost:11434/v1"
models = ["llama3.1:8b"]

[[providers]]
name = "vllm"
base_url = "https://vllm.internal.example/v1"
api_key_env = "VLLM_API_KEY"
models = ["Llama-3.3-70B", "gpt-4o"]
prices."Llama-3.3-70B" = { input_per_mtok = "0.1", output_per_mtok = "0.3" }

[[deployments]]
model = "gpt-4o-mini"
provider = "azure"
upstream_model = "mini-east"
api_base = "https://east.openai.azure.com"
weight = 2

[[deployments]]
model = "gpt-4o-mini"
provider = "azure"
upstream_model = "mini-west"
api_base = "https://west.openai.azure.com"

[[deployments]]
model = "house-model"
provider = "openai"
upstream_model = "gpt-4.1"
"""


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return build_model_registry(parse_gateway_config(CONFIG))


@pytest.fixture(scope="module")
def plain() -> ModelRegistry:
    return build_model_registry()


def _pairs(registry: ModelRegistry, text: str) -> list[tuple[str, str]]:
    return [(route.provider, route.model) for route in registry.resolve(registry.parse(text))]


def test_the_maker_comes_first(plain: ModelRegistry) -> None:
    assert _pairs(plain, "gpt-4o")[0] == ("openai", "gpt-4o")
    assert _pairs(plain, "claude-3-5-sonnet")[0] == ("anthropic", "claude-3-5-sonnet")
    gemini = _pairs(plain, "gemini-2.5-flash")
    assert gemini[:2] == [("gemini", "gemini-2.5-flash"), ("vertex", "gemini-2.5-flash")]
    assert _pairs(plain, "deepseek-chat")[0] == ("deepseek", "deepseek-chat")


def test_exact_names_ignore_case_and_go_out_in_the_providers_spelling(
    plain: ModelRegistry,
) -> None:
    assert _pairs(plain, "GPT-4o")[0] == ("openai", "gpt-4o")
    together = _pairs(plain, "META-LLAMA/llama-3.3-70b-instruct-turbo")
    assert together == [("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo")]


def test_a_maker_rule_keeps_the_callers_spelling(plain: ModelRegistry) -> None:
    # Not an exact id anywhere: genai-prices' rules for OpenAI and Anthropic recognise them.
    assert _pairs(plain, "gpt-4o-2024-08-06") == [("openai", "gpt-4o-2024-08-06")]
    assert _pairs(plain, "claude-sonnet-4-20250514") == [("anthropic", "claude-sonnet-4-20250514")]


def test_a_model_holding_a_slash_is_not_split(plain: ModelRegistry) -> None:
    assert _pairs(plain, "openai/gpt-4o") == [("openrouter", "openai/gpt-4o")]


def test_azure_is_reached_only_through_deployments(plain: ModelRegistry) -> None:
    assert "azure" not in {provider for provider, _ in _pairs(plain, "o3-mini")}


def test_deployments_replace_every_other_route(registry: ModelRegistry) -> None:
    routes = registry.resolve(registry.parse("gpt-4o-mini"))
    assert [(r.provider, r.model) for r in routes] == [
        ("azure", "mini-east"),
        ("azure", "mini-west"),
    ]
    assert routes[0].deployment is not None
    assert routes[0].deployment.weight == 2
    assert routes[1].deployment is not None
    assert routes[1].deployment.api_base == "https://west.openai.azure.com"
    assert _pairs(registry, "HOUSE-MODEL") == [("openai", "gpt-4.1")]


def test_the_operators_providers_come_after_the_maker(registry: ModelRegistry) -> None:
    assert _pairs(registry, "gpt-4o")[:2] == [("openai", "gpt-4o"), ("vllm", "gpt-4o")]
    assert _pairs(registry, "llama3.1:8b") == [("ollama", "llama3.1:8b")]
    assert _pairs(registry, "llama-3.3-70b")[0] == ("vllm", "Llama-3.3-70B")


def test_a_named_provider_keeps_only_its_routes(registry: ModelRegistry) -> None:
    assert _pairs(registry, "gpt-4o/vllm") == [("vllm", "gpt-4o")]
    assert _pairs(registry, "gpt-4o-mini/azure") == [("azure", "mini-east"), ("azure", "mini-west")]
    # No route known there: the model passes through under the caller's spelling.
    assert _pairs(registry, "my-finetune/OpenAI") == [("openai", "my-finetune")]
    assert _pairs(registry, "gpt-4o-mini/openai") == [("openai", "gpt-4o-mini")]
    assert _pairs(registry, "anything/ollama") == [("ollama", "anything")]


def test_candidates_in_order_without_repeats_or_exclusions(registry: ModelRegistry) -> None:
    pairs = _pairs(registry, "gpt-4o, claude-3-5-sonnet/anthropic, gpt-4o/openai, !vllm")
    assert pairs[0] == ("openai", "gpt-4o")
    assert ("vllm", "gpt-4o") not in pairs
    assert pairs.count(("openai", "gpt-4o")) == 1
    assert pairs[-1] == ("anthropic", "claude-3-5-sonnet")


def test_everything_excluded_is_refused(registry: ModelRegistry) -> None:
    with pytest.raises(NoRoute, match=r"every provider of these models is excluded \(ollama\)"):
        registry.resolve(registry.parse("llama3.1:8b,!ollama"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no-such-model", "'no-such-model' is not a model this gateway knows"),
        ("gpt-4o,no-such-model", "'no-such-model' is not a model"),
        ("acme/thing/nowhere", "('nowhere' is not a provider name)"),
        ("claude-imaginary-99", "'claude-imaginary-99' is not a model"),
    ],
)
def test_unknown_models_are_named(plain: ModelRegistry, text: str, message: str) -> None:
    with pytest.raises(UnknownModel) as raised:
        plain.resolve(plain.parse(text))
    assert message in str(raised.value)
    assert raised.value.code == "unknown_model"
    assert raised.value.status == 400
    assert isinstance(raised.value, InvalidInput)


def test_only_served_providers_are_routed_to() -> None:
    narrow = build_model_registry(served={"openai", "vertex"})
    assert _pairs(narrow, "gemini-2.5-flash,gpt-4o") == [
        ("vertex", "gemini-2.5-flash"),
        ("openai", "gpt-4o"),
    ]
    with pytest.raises(NoRoute, match="provider 'gemini' is not served by this gateway"):
        narrow.resolve(narrow.parse("gemini-2.5-flash/google-ai-studio"))
    with pytest.raises(UnknownModel, match="'grok-3' is not a model"):
        narrow.resolve(narrow.parse("grok-3"))


def test_custom_names_only_parse_with_the_registry_that_knows_them(
    registry: ModelRegistry, plain: ModelRegistry
) -> None:
    assert registry.parse("m/ollama").candidates[0].provider == "ollama"
    assert plain.parse("m/ollama").candidates[0].provider is None
    with pytest.raises(ModelStringError, match="'!ollama' excludes 'ollama'"):
        plain.parse("gpt-4o,!ollama")


def test_custom_prices(registry: ModelRegistry) -> None:
    price = registry.custom_price("vllm", "Llama-3.3-70B")
    assert price is not None
    assert (price.input_per_mtok, price.output_per_mtok) == (Decimal("0.1"), Decimal("0.3"))
    assert registry.custom_price("vllm", "gpt-4o") is None
    assert registry.custom_price("ollama", "Llama-3.3-70B") is None


def test_routes_are_tuples(plain: ModelRegistry) -> None:
    route = plain.resolve(plain.parse("gpt-4o/openai"))[0]
    provider, model, deployment = route
    assert route == Route("openai", "gpt-4o")
    assert (provider, model, deployment) == ("openai", "gpt-4o", None)
