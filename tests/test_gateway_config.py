"""The gateway configuration file: the example an operator would write, and every refusal naming
the key path at fault."""

from __future__ import annotations

from decimal import Decimal

import pytest

from heliograph.domain.gateway_config import (
    DEFAULT_ROUTING,
    GatewayConfig,
    GatewayConfigError,
    Routing,
    Strategy,
    parse_gateway_config,
)

EXAMPLE = """
[[providers]]
name = "ollama"
base_url = "http://localhost:11434/v1/"
models = ["llama3.1:8b", "qwen2.5-coder:7b"]

[[providers]]
name = "vllm"
base_url = "https://vllm.internal.example:8000/v1"
api_key_env = "VLLM_API_KEY"
models = ["meta-llama/Llama-3.3-70B-Instruct"]

[providers.prices."meta-llama/Llama-3.3-70B-Instruct"]
input_per_mtok = "0.20"
output_per_mtok = 0.6
cache_read_per_mtok = 0

[[deployments]]
model = "gpt-4o"
provider = "azure-openai"
upstream_model = "gpt-4o-eastus"
api_base = "https://contoso-east.openai.azure.com"
api_version = "2024-10-21"
api_key_env = "AZURE_EAST_KEY"
weight = 3
rpm = 600
tpm = 150000

[[deployments]]
model = "gpt-4o"
provider = "azure"
upstream_model = "gpt-4o-westeu"
api_base = "https://contoso-west.openai.azure.com"
api_version = "2024-10-21"
api_key_env = "AZURE_WEST_KEY"

[[deployments]]
model = "local-llama"
provider = "ollama"
upstream_model = "llama3.1:8b"

[routing.GPT-4o]
strategy = "lowest-latency"
cooldown_s = 12.5
failures_to_cool_down = 2
"""


def test_the_example_parses_to_what_it_says() -> None:
    config = parse_gateway_config(EXAMPLE)
    ollama, vllm = config.providers
    assert (ollama.name, ollama.base_url, ollama.api_key_env) == (
        "ollama",
        "http://localhost:11434/v1",
        None,
    )
    assert ollama.models == ("llama3.1:8b", "qwen2.5-coder:7b")
    assert vllm.api_key_env == "VLLM_API_KEY"
    price = vllm.prices["meta-llama/Llama-3.3-70B-Instruct"]
    assert price.input_per_mtok == Decimal("0.20")
    assert price.output_per_mtok == Decimal("0.6")
    assert price.cache_read_per_mtok == Decimal(0)
    assert price.cache_write_per_mtok is None
    east, west, local = config.deployments
    assert (east.provider, east.upstream_model, east.weight, east.rpm, east.tpm) == (
        "azure",
        "gpt-4o-eastus",
        3,
        600,
        150_000,
    )
    assert (east.api_base, east.api_version) == (
        "https://contoso-east.openai.azure.com",
        "2024-10-21",
    )
    assert (west.weight, west.rpm, west.api_key_env) == (1, None, "AZURE_WEST_KEY")
    assert (local.provider, local.upstream_model) == ("ollama", "llama3.1:8b")
    assert config.provider_names == frozenset({"ollama", "vllm"})
    assert config.routing_for("gpt-4o") == Routing(Strategy.LOWEST_LATENCY, 12.5, 2)
    assert config.routing_for("local-llama") == DEFAULT_ROUTING


def test_an_empty_file_is_an_empty_configuration() -> None:
    assert parse_gateway_config("") == GatewayConfig()


def test_upstream_model_defaults_to_the_model() -> None:
    config = parse_gateway_config('[[deployments]]\nmodel = "gpt-4o"\nprovider = "openai"\n')
    assert config.deployments[0].upstream_model == "gpt-4o"
    assert config.deployments[0].weight == 1


def _provider(**fields: str) -> str:
    values = {"name": '"ollama"', "base_url": '"http://localhost:11434"', "models": '["m"]'}
    values.update(fields)
    return "[[providers]]\n" + "".join(f"{k} = {v}\n" for k, v in values.items() if v)


def _deployment(**fields: str) -> str:
    values = {"model": '"gpt-4o"', "provider": '"openai"'}
    values.update(fields)
    return "[[deployments]]\n" + "".join(f"{k} = {v}\n" for k, v in values.items() if v)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[providers]\n", "not valid TOML"),
        ("providers = 1", "providers: must be an array of tables"),
        ("provider = []", "provider: unknown key (known: providers, deployments, routing)"),
        (_provider(colour='"red"'), "providers[0].colour: unknown key"),
        (_provider(name=""), "providers[0].name: missing"),
        (_provider(name="1"), "providers[0].name: must be a string"),
        (_provider(name='"Ollama"'), "providers[0].name: 'Ollama' must be 1 to 32 lower-case"),
        (_provider(name='"my_server"'), "providers[0].name: 'my_server' must be"),
        (_provider(name='"-x"'), "providers[0].name: '-x' must be"),
        (_provider(name='"openai"'), "providers[0].name: 'openai' is already a route prefix"),
        (_provider(name='"google"'), "providers[0].name: 'google' is already a route prefix"),
        (_provider(name='"gateway"'), "providers[0].name: 'gateway' is already a route prefix"),
        (_provider() + _provider(), "providers[1].name: 'ollama' is given twice"),
        (_provider(base_url=""), "providers[0].base_url: missing"),
        (_provider(base_url='"ftp://host"'), "providers[0].base_url: 'ftp://host' is not an http"),
        (_provider(base_url='"localhost:11434"'), "providers[0].base_url: 'localhost:11434' is"),
        (_provider(base_url='"http://"'), "providers[0].base_url: 'http://' is not an http"),
        (_provider(base_url='"http://h:99999"'), "providers[0].base_url: 'http://h:99999' is not"),
        (_provider(base_url='"http://[::1"'), "providers[0].base_url: 'http://[::1' is not an"),
        (
            _provider(base_url='"https://u:p@h/v1"'),
            "providers[0].base_url: 'https://u:p@h/v1' must",
        ),
        (
            _provider(base_url='"https://h/v1?x=1"'),
            "providers[0].base_url: 'https://h/v1?x=1' must",
        ),
        (_provider(base_url='"https://h/v1#f"'), "providers[0].base_url: 'https://h/v1#f' must be"),
        (_provider(base_url='"http://h/\\u0000"'), "providers[0].base_url: must be 1 to 256 print"),
        (_provider(api_key_env='"MY-KEY"'), "providers[0].api_key_env: 'MY-KEY' is not an env"),
        (_provider(api_key_env="true"), "providers[0].api_key_env: must be a string"),
        (_provider(models=""), "providers[0].models: missing"),
        (_provider(models="[]"), "providers[0].models: must be a non-empty list"),
        (_provider(models='"m"'), "providers[0].models: must be a non-empty list"),
        (_provider(models="[1]"), "providers[0].models[0]: must be a string"),
        (_provider(models='["a", "a"]'), "providers[0].models[1]: 'a' is given twice"),
        (_provider(models='["a,b"]'), "providers[0].models[0]: 'a,b' holds ','"),
        (_provider(models='["a\\nb"]'), "providers[0].models[0]: 'a\\nb' holds the unprintable"),
        (_provider(prices="1"), "providers[0].prices: must be a table"),
        (_provider(prices="{ x = 1 }"), "providers[0].prices.x: 'x' is not in this provider's"),
        (_provider(prices="{ m = 1 }"), "providers[0].prices.m: must be a table"),
        (
            _provider(prices="{ m = { input_per_mtok = 1 } }"),
            "providers[0].prices.m.output_per_mtok: missing",
        ),
        (
            _provider(prices="{ m = { input_per_mtok = 1, output_per_mtok = 1, cache = 1 } }"),
            "providers[0].prices.m.cache: unknown key",
        ),
        (
            _provider(prices='{ m = { input_per_mtok = "cheap", output_per_mtok = 1 } }'),
            "providers[0].prices.m.input_per_mtok: 'cheap' is not a decimal number",
        ),
        (
            _provider(prices="{ m = { input_per_mtok = -1, output_per_mtok = 1 } }"),
            "providers[0].prices.m.input_per_mtok: must be between 0 and 100000 USD",
        ),
        (
            _provider(prices="{ m = { input_per_mtok = nan, output_per_mtok = 1 } }"),
            "providers[0].prices.m.input_per_mtok: must be between 0",
        ),
        (
            _provider(prices="{ m = { input_per_mtok = true, output_per_mtok = 1 } }"),
            "providers[0].prices.m.input_per_mtok: must be a number or decimal text",
        ),
        (
            _provider(prices='{ "a.b" = 1 }', models='["m"]'),
            "providers[0].prices.\"a.b\": 'a.b' is not in",
        ),
        ("[[deployments]]\n", "deployments[0].model: missing"),
        (_deployment(provider=""), "deployments[0].provider: missing"),
        (_deployment(provider='"nope"'), "deployments[0].provider: 'nope' is neither a built-in"),
        (_deployment(model='"a,b"'), "deployments[0].model: 'a,b' holds ','"),
        (_deployment(upstream_model="1"), "deployments[0].upstream_model: must be a string"),
        (_deployment(weight="0"), "deployments[0].weight: must be between 1 and 1000"),
        (_deployment(weight="1.5"), "deployments[0].weight: must be a whole number"),
        (_deployment(weight="true"), "deployments[0].weight: must be a whole number"),
        (_deployment(rpm="0"), "deployments[0].rpm: must be between 1 and"),
        (_deployment(tpm='"10"'), "deployments[0].tpm: must be a whole number"),
        (_deployment(region='"eu"'), "deployments[0].region: unknown key"),
        (_deployment(provider='"azure"'), "deployments[0]: an Azure deployment needs api_base"),
        (_deployment(api_version='"2024-10-21"'), "deployments[0].api_version: only Azure"),
        (_deployment(api_base='"not a url"'), "deployments[0].api_base: 'not a url' is not"),
        (_deployment(api_key_env='"1KEY"'), "deployments[0].api_key_env: '1KEY' is not"),
        ("routing = 1", "routing: must be a table"),
        ("[routing.gpt-4o]\n", "routing.gpt-4o: no [[deployments]] entry has model 'gpt-4o'"),
        (_deployment() + "[routing]\ngpt-4o = 1\n", "routing.gpt-4o: must be a table"),
        (
            _deployment() + '[routing."gpt-4o"]\nstrategy = "fastest"\n',
            "routing.gpt-4o.strategy: 'fastest' is not one of 'weighted', 'lowest-latency', "
            "'lowest-cost'",
        ),
        (
            _deployment() + "[routing.gpt-4o]\ncooldown_s = -1\n",
            "routing.gpt-4o.cooldown_s: must be between 0 and 86400 seconds",
        ),
        (
            _deployment() + '[routing.gpt-4o]\ncooldown_s = "30"\n',
            "routing.gpt-4o.cooldown_s: must be a number of seconds",
        ),
        (
            _deployment() + "[routing.gpt-4o]\nfailures_to_cool_down = 0\n",
            "routing.gpt-4o.failures_to_cool_down: must be between 1 and 1000",
        ),
        (
            _deployment() + "[routing.gpt-4o]\nretries = 3\n",
            "routing.gpt-4o.retries: unknown key (known: strategy, cooldown_s, "
            "failures_to_cool_down)",
        ),
        (
            _deployment() + "[routing.gpt-4o]\n[routing.GPT-4O]\n",
            "routing.GPT-4O: 'GPT-4O' is routed twice",
        ),
    ],
)
def test_refusals_name_the_key_path(text: str, message: str) -> None:
    with pytest.raises(GatewayConfigError) as raised:
        parse_gateway_config(text)
    assert str(raised.value).startswith(message), str(raised.value)


def test_a_custom_provider_can_take_deployments() -> None:
    config = parse_gateway_config(_provider() + _deployment(provider='"Ollama"'))
    assert config.deployments[0].provider == "ollama"
