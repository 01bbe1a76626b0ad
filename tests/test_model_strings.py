"""The unified gateway's `model` string: candidates, providers, aliases, exclusions and caps."""

from __future__ import annotations

import pytest

from heliograph.domain.errors import InvalidInput
from heliograph.domain.model_strings import (
    MAX_CANDIDATES,
    MAX_MODEL_CHARS,
    PROVIDERS,
    Candidate,
    ModelStringError,
    model_name_problem,
    parse_model_string,
    provider_name,
)


@pytest.mark.parametrize(
    ("text", "candidates"),
    [
        ("gpt-4o-mini", [("gpt-4o-mini", None)]),
        ("gpt-4o-mini/openai", [("gpt-4o-mini", "openai")]),
        ("  gpt-4o-mini/openai  ", [("gpt-4o-mini", "openai")]),
        ("claude-sonnet-4/ANTHROPIC", [("claude-sonnet-4", "anthropic")]),
        # The model's own "/" stays in the model; only a provider name after the last is split.
        ("meta-llama/Llama-3.3-70B/together", [("meta-llama/Llama-3.3-70B", "together")]),
        ("meta-llama/Llama-3.3-70B", [("meta-llama/Llama-3.3-70B", None)]),
        ("openai/gpt-4o", [("openai/gpt-4o", None)]),
        ("openai/gpt-4o/openrouter", [("openai/gpt-4o", "openrouter")]),
        ("gpt-4o-mini/azure/abc123", [("gpt-4o-mini/azure/abc123", None)]),
        ("gpt-4o, claude-sonnet-4/anthropic", [("gpt-4o", None), ("claude-sonnet-4", "anthropic")]),
        ("llama3.1:8b", [("llama3.1:8b", None)]),
        ("modèle-ünïcode", [("modèle-ünïcode", None)]),
    ],
)
def test_candidates_in_order(text: str, candidates: list[tuple[str, str | None]]) -> None:
    choice = parse_model_string(text)
    assert choice.candidates == tuple(Candidate(m, p) for m, p in candidates)
    assert choice.excluded == frozenset()


@pytest.mark.parametrize(
    ("alias", "provider"),
    [
        ("google-ai-studio", "gemini"),
        ("google", "gemini"),
        ("azure-openai", "azure"),
        ("x-ai", "xai"),
        ("X", "xai"),
        ("grok", "xai"),
        ("aws", "bedrock"),
        ("vertex-ai", "vertex"),
        ("mistralai", "mistral"),
        ("together-ai", "together"),
    ],
)
def test_aliases_resolve_to_route_prefixes(alias: str, provider: str) -> None:
    choice = parse_model_string(f"some-model/{alias},!{alias}")
    assert choice.candidates == (Candidate("some-model", provider),)
    assert choice.excluded == frozenset({provider})
    assert provider in PROVIDERS


def test_exclusions_apply_to_the_whole_choice() -> None:
    choice = parse_model_string("gpt-4o-mini,!azure, claude-sonnet-4 ,! Anthropic")
    assert [c.model for c in choice.candidates] == ["gpt-4o-mini", "claude-sonnet-4"]
    assert choice.excluded == frozenset({"azure", "anthropic"})


def test_custom_providers_are_recognised_only_when_given() -> None:
    assert parse_model_string("llama3.1:8b/ollama").candidates == (
        Candidate("llama3.1:8b/ollama", None),
    )
    choice = parse_model_string("llama3.1:8b/ollama,!vllm", custom_providers={"ollama", "vllm"})
    assert choice.candidates == (Candidate("llama3.1:8b", "ollama"),)
    assert choice.excluded == frozenset({"vllm"})
    assert provider_name("Ollama", {"ollama"}) == "ollama"
    assert provider_name("ollama") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "entry 1 is empty"),
        ("gpt-4o,,claude", "entry 2 is empty"),
        ("gpt-4o, ", "entry 2 is empty"),
        ("gpt-4o/", "empty part before or after a '/'"),
        ("/openai", "empty part before or after a '/'"),
        ("meta-llama//together", "empty part before or after a '/'"),
        ("!azure", "names no model, only exclusions"),
        ("gpt-4o,!nope", "'!nope' excludes 'nope', which is not a provider"),
        ("gpt-4o,!", "excludes '', which is not a provider"),
        ("gpt\x00-4o", "U+0000 at position 3"),
        ("gpt-4o\n", "U+000A at position 6"),
        ("gpt-4o\x7f", "U+007F"),
        ("gpt\u202e-4o", "U+202E"),  # right-to-left override
        ("gpt\u200b-4o", "U+200B"),  # zero-width space
        ("gpt\ud800", "U+D800"),  # lone surrogate, as JSON can carry one
        ("gpt\u00a04o", "U+00A0"),  # no-break space
    ],
)
def test_bad_strings_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ModelStringError, match=r"^model: ") as raised:
        parse_model_string(text)
    assert message in str(raised.value)
    assert raised.value.code == "invalid_model"
    assert raised.value.status == 400
    assert isinstance(raised.value, InvalidInput)


def test_at_most_ten_candidates() -> None:
    ten = ",".join(f"m{i}" for i in range(MAX_CANDIDATES))
    assert len(parse_model_string(ten + ",!azure").candidates) == MAX_CANDIDATES
    with pytest.raises(ModelStringError, match="11 models, at most 10"):
        parse_model_string(ten + ",m10")


def test_model_names_are_capped() -> None:
    longest = "m" * MAX_MODEL_CHARS
    assert parse_model_string(f"{longest}/openai").candidates == (Candidate(longest, "openai"),)
    with pytest.raises(ModelStringError, match="longer than 256 characters"):
        parse_model_string(longest + "m")


def test_huge_text_is_refused_before_splitting() -> None:
    with pytest.raises(ModelStringError, match="model: longer than"):
        parse_model_string("a," * 100_000)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("gpt-4o", None),
        ("meta-llama/Llama-3.3-70B", None),
        ("", "is empty"),
        (" gpt-4o", "surrounding spaces"),
        ("a,b", "holds ','"),
        ("!a", "starts with '!'"),
        ("a\tb", "U+0009"),
        ("m" * 257, "longer than 256"),
    ],
)
def test_model_name_problem(name: str, problem: str | None) -> None:
    found = model_name_problem(name)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
