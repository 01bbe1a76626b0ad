"""What the OpenTelemetry GenAI, OpenLLMetry and OpenInference dialects call things: the attribute
names a model call's span carries (model, provider, user, session, tokens, bodies), which spans
are model calls, and the readers of OTLP attribute values all three share."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from heliograph.domain.text import clean_text

MAX_ATTRIBUTES = 4_096  # read per span and per resource
MAX_KEY_CHARS = 200
ASSOCIATION = "traceloop.association.properties."

REQUEST_MODEL = ("gen_ai.request.model", "llm.request.model", "llm.request.model_name")
RESPONSE_MODEL = ("gen_ai.response.model", "llm.response.model", "llm.response.model_name")
ANY_MODEL = ("llm.model_name", "embedding.model_name")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system", "llm.vendor")
USER = ("user.id", "gen_ai.user.id", "enduser.id", "llm.user", f"{ASSOCIATION}user_id")
SESSION = ("session.id", "gen_ai.conversation.id", f"{ASSOCIATION}session_id")
# Heliograph's usage keys (`providers/costing.py`) and the attributes that say each, first wins.
TOKENS = {
    "input": (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.usage.prompt_tokens",
        "llm.token_count.prompt",
    ),
    "output": (
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.usage.completion_tokens",
        "llm.token_count.completion",
    ),
    "promptCacheReadTokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "llm.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
    ),
    "promptCacheWriteTokens": (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "llm.usage.cache_creation_input_tokens",
        "llm.token_count.prompt_details.cache_write",
    ),
    "reasoningTokens": (
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.reasoning_tokens",
        "llm.usage.reasoning_tokens",
        "llm.token_count.completion_details.reasoning",
    ),
    "promptAudioTokens": ("llm.token_count.prompt_details.audio",),
    "completionAudioTokens": ("llm.token_count.completion_details.audio",),
}
TTFT_SECONDS = ("gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token")
HTTP_STATUS = ("http.response.status_code", "http.status_code")
MAPPED = frozenset(
    {*REQUEST_MODEL, *RESPONSE_MODEL, *ANY_MODEL, *PROVIDER, *USER, *SESSION, *TTFT_SECONDS}
    | {key for keys in TOKENS.values() for key in keys}
    | {"openinference.span.kind", "llm.invocation_parameters", "input.mime_type"}
    | {"output.mime_type", "llm.token_count.total", "llm.usage.total_tokens"}
)
# Bodies travel in these; they become the request and response bodies, never properties.
BODY_PREFIXES = (
    "gen_ai.prompt", "gen_ai.completion", "gen_ai.input.messages", "gen_ai.output.messages",
    "gen_ai.system_instructions", "gen_ai.tool.definitions", "llm.input_messages",
    "llm.output_messages", "llm.prompts", "llm.completions", "llm.tools", "llm.prompt_template",
    "input.value", "output.value", "traceloop.entity.input", "traceloop.entity.output",
)  # fmt: skip
# Never properties: bodies, SDK noise, a process's command line (it may hold secrets).
UNLISTED = (ASSOCIATION, *BODY_PREFIXES, "llm.headers", "telemetry.sdk.", "process.command")
# Attributes are kept by default; a name holding one of these words may carry a credential and
# is dropped (as is a value that starts like an Authorization header).
SECRET_WORDS = (
    "authorization", "authentication", "bearer", "cookie", "password", "passwd", "secret",
    "credential", "private_key", "private-key", "api_key", "api-key", "api.key", "apikey", "token",
)  # fmt: skip
# ... except "token" in a count's name: usage (mapped before this) and limits like max_tokens.
TOKEN_COUNT_WORDS = ("usage.", "token_count", "tokens")
CREDENTIAL_VALUE = re.compile(r"(?i)(bearer|basic)\s+[\w.~+/=-]{12,}\s*")
# Spans of these kinds wrap LLM calls (and may sum their tokens): never requests themselves.
NOT_CALLS = frozenset({"chain", "agent", "tool", "retriever", "reranker", "guardrail", "workflow"})
NOT_CALLS |= {"task", "evaluator", "invoke_agent", "create_agent", "execute_tool"}
PROVIDERS = {
    "openai": "OPENAI", "anthropic": "ANTHROPIC", "gemini": "GOOGLE", "google": "GOOGLE",
    "gcp.gemini": "GOOGLE", "gcp.gen_ai": "GOOGLE", "gcp.vertex_ai": "GOOGLE",
    "vertex_ai": "GOOGLE", "vertexai": "GOOGLE", "groq": "GROQ", "together": "TOGETHER",
    "together_ai": "TOGETHER", "mistral_ai": "MISTRAL", "mistralai": "MISTRAL",
    "mistral": "MISTRAL", "deepseek": "DEEPSEEK", "x_ai": "X", "xai": "X",
    "openrouter": "OPENROUTER", "fireworks": "FIREWORKS", "perplexity": "PERPLEXITY",
    "cerebras": "CEREBRAS", "aws.bedrock": "BEDROCK", "azure.ai.openai": "AZURE",
    "az.ai.openai": "AZURE", "azure": "AZURE", "cohere": "COHERE",
}  # fmt: skip

Attributes = dict[str, Any]


def is_llm_span(attributes: Attributes) -> bool:
    """A call to a model: OpenInference says LLM or EMBEDDING, or (no wrapper kind said) it
    names a model or counts tokens."""
    kinds = ("openinference.span.kind", "traceloop.span.kind", "gen_ai.operation.name")
    said = {str(attributes.get(key, "")).lower() for key in kinds} - {""}
    if said & {"llm", "embedding"}:
        return True
    if said & NOT_CALLS:
        return False
    usage = (key for keys in TOKENS.values() for key in keys)
    return any(key in attributes for key in (*REQUEST_MODEL, *RESPONSE_MODEL, *ANY_MODEL, *usage))


# Attribute values


def read_attributes(values: Iterable[KeyValue]) -> Attributes:
    """Key-value pairs as Python values (strings cleaned), the first `MAX_ATTRIBUTES` only."""
    attributes: Attributes = {}
    for pair in itertools.islice(values, MAX_ATTRIBUTES):
        attributes.setdefault(clean_text(pair.key), _value(pair.value))
    return attributes


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return clean_text(value.string_value)
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {clean_text(kv.key): _value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return None if kind is None else getattr(value, kind)


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return "" if value is None else str(value)


def first_text(attributes: Attributes, keys: tuple[str, ...], *more: Attributes) -> str:
    for source in (attributes, *more):
        for key in keys:
            value = source.get(key)
            if value is not None and value != "":
                return cap(as_text(value), MAX_KEY_CHARS)
    return ""


def first_count(attributes: Attributes, keys: tuple[str, ...]) -> int | None:
    for key in keys:
        count = whole_number(attributes.get(key))
        if count is not None:
            return count
    return None


def secret(key: str, value: Any = None) -> bool:
    """Whether an attribute may hold a credential: its name says so (`SECRET_WORDS`), or its
    value reads like an Authorization header."""
    lowered = key.lower()
    words = [word for word in SECRET_WORDS if word in lowered]
    if words == ["token"] and any(word in lowered for word in TOKEN_COUNT_WORDS):
        words = []
    if words:
        return True
    return isinstance(value, str) and CREDENTIAL_VALUE.fullmatch(value[:4096]) is not None


def whole_number(value: Any) -> int | None:
    """A token count: a non-negative whole number, sent as an int, a whole double or digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and small_number(value):
        value = int(value)
    return value if isinstance(value, int) and 0 <= value < 2**63 else None


def small_number(text: str) -> bool:
    """ASCII digits only (`"²".isdigit()` is true too), few enough for an int64."""
    return text.isascii() and text.isdigit() and len(text) < 19


def cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def objects(value: Any) -> Iterator[dict[str, Any]]:
    """The objects of a JSON list (anything else holds none)."""
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))
