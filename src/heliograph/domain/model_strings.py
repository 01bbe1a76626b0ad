"""The `model` string of the unified gateway: which models to try, in which order, on which
providers, and which providers never to use. Pure text rules; the model registry
(`providers/model_registry.py`) turns a parsed choice into upstream calls.

Grammar (whitespace around entries is ignored, provider names are case-insensitive)::

    choice    := entry ("," entry)*
    entry     := exclusion | candidate
    exclusion := "!" provider             never use this provider, for any candidate
    candidate := model | model "/" provider

`gpt-4o-mini` lets the registry pick the providers; `gpt-4o-mini/openai` names one;
`claude-sonnet-4,gpt-4o/azure,!anthropic` tries Claude anywhere but Anthropic, then GPT-4o on
Azure. Model names may hold "/" themselves (`meta-llama/Llama-3.3-70B/together`): only the text
after the last "/" is read as a provider, and only when it is a provider name or an alias of one,
so `openai/gpt-4o` is a model (OpenRouter's name for it). Helicone's own provider names
(`google-ai-studio`, `azure-openai`, `x-ai`, ...) are accepted as aliases; its third part
(`model/azure/<deployment id>`) and `:online` suffix are not read, so such text is one model name.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from heliograph.domain.errors import InvalidInput

# The gateway's route prefixes of the providers it calls itself, in no particular order.
PROVIDERS: frozenset[str] = frozenset(
    {
        "openai",
        "anthropic",
        "gemini",
        "azure",
        "bedrock",
        "vertex",
        "groq",
        "together",
        "mistral",
        "deepseek",
        "xai",
        "openrouter",
        "fireworks",
        "perplexity",
        "cerebras",
    }
)

# Other names callers use for them: Helicone's AI gateway and proxy, genai-prices' provider ids
# and the vendors' own spellings.
ALIASES: dict[str, str] = {
    "google-ai-studio": "gemini",  # Helicone AI gateway
    "google": "gemini",  # Helicone's logged provider, genai-prices
    "googleai": "gemini",
    "azure-openai": "azure",  # Helicone AI gateway, earlier name
    "aws": "bedrock",  # genai-prices
    "aws-bedrock": "bedrock",
    "amazon-bedrock": "bedrock",
    "google-vertex": "vertex",
    "vertex-ai": "vertex",
    "vertexai": "vertex",
    "x-ai": "xai",  # genai-prices
    "x": "xai",  # Helicone proxy (`x.helicone.ai`) and its logged provider
    "grok": "xai",
    "mistralai": "mistral",  # Helicone AI gateway, earlier name
    "together-ai": "together",
    "togetherai": "together",
    "fireworks-ai": "fireworks",
}

MAX_CANDIDATES = 10
MAX_EXCLUSIONS = len(PROVIDERS)
MAX_MODEL_CHARS = 256
# Beyond this the text cannot be valid; refused before it is split.
MAX_TEXT_CHARS = (MAX_CANDIDATES + MAX_EXCLUSIONS) * (MAX_MODEL_CHARS + 2)


class ModelStringError(InvalidInput):
    """The `model` string does not follow the grammar or its caps; the message says where."""

    code = "invalid_model"


@dataclass(frozen=True, slots=True)
class Candidate:
    model: str
    provider: str | None  # a route prefix (aliases resolved), or None: the registry picks


@dataclass(frozen=True, slots=True)
class ModelChoice:
    candidates: tuple[Candidate, ...]  # in the order to try them
    excluded: frozenset[str]  # route prefixes never to use


def provider_name(name: str, custom: Collection[str] = ()) -> str | None:
    """The route prefix `name` stands for (a provider, an alias or one of `custom`), or None."""
    lowered = name.lower()
    if lowered in PROVIDERS or lowered in custom:
        return lowered
    return ALIASES.get(lowered)


def parse_model_string(text: str, custom_providers: Collection[str] = ()) -> ModelChoice:
    """The candidates and exclusions `text` asks for. `custom_providers` are the operator's own
    providers' names (lower-case), recognised like the built-in ones."""
    if len(text) > MAX_TEXT_CHARS:
        raise ModelStringError(f"model: longer than {MAX_TEXT_CHARS} characters")
    _refuse_invisible(text)
    candidates: list[Candidate] = []
    excluded: set[str] = set()
    for position, raw in enumerate(text.split(","), start=1):
        entry = raw.strip()
        if not entry:
            raise ModelStringError(f"model: entry {position} is empty")
        if entry.startswith("!"):
            excluded.add(_exclusion(entry, custom_providers))
        else:
            candidates.append(_candidate(entry, custom_providers))
    if not candidates:
        raise ModelStringError("model: names no model, only exclusions")
    if len(candidates) > MAX_CANDIDATES:
        raise ModelStringError(f"model: {len(candidates)} models, at most {MAX_CANDIDATES}")
    return ModelChoice(tuple(candidates), frozenset(excluded))


def model_name_problem(name: str) -> str | None:
    """Why `name` cannot be one model of a model string (for configured names), or None."""
    if not name or name != name.strip():
        return "is empty or has surrounding spaces"
    if len(name) > MAX_MODEL_CHARS:
        return f"is longer than {MAX_MODEL_CHARS} characters"
    if not name.isprintable():
        return f"holds {_first_invisible(name)}"
    if "," in name or name.startswith("!"):
        return "holds ',' or starts with '!', which model strings use as separators"
    return None


def _exclusion(entry: str, custom: Collection[str]) -> str:
    name = entry[1:].strip()
    provider = provider_name(name, custom)
    if provider is None:
        raise ModelStringError(f"model: {entry!r} excludes {name!r}, which is not a provider")
    return provider


def _candidate(entry: str, custom: Collection[str]) -> Candidate:
    if "/" not in entry:
        model, provider = entry, None
    else:
        if "" in entry.split("/"):
            raise ModelStringError(f"model: {entry!r} has an empty part before or after a '/'")
        head, _, last = entry.rpartition("/")
        provider = provider_name(last, custom)
        model = entry if provider is None else head
    if len(model) > MAX_MODEL_CHARS:
        raise ModelStringError(
            f"model: {entry[:32]!r}... is longer than {MAX_MODEL_CHARS} characters"
        )
    return Candidate(model, provider)


def _refuse_invisible(text: str) -> None:
    # `isprintable` is false for control, format (bidi, zero-width), surrogate, private-use and
    # unassigned characters and for every space but " ": none belongs in a model name.
    if not text.isprintable():
        raise ModelStringError(f"model: holds {_first_invisible(text)}")


def _first_invisible(text: str) -> str:
    position, char = next((i, c) for i, c in enumerate(text) if not c.isprintable())
    return f"the unprintable character U+{ord(char):04X} at position {position}"
