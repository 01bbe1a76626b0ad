"""What one record cost: the model it is billed as, its usage and its price, decided here once
for the stored row (ingest) and for the `cents` charge of a rate limit (gateway). The caller
passes the organization's price overrides; nothing here reads them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from heliograph.domain.pricing import (
    MAX_MODEL_CHARS,
    Price,
    PriceOverride,
    find_override,
    price_usage,
    price_with_override,
    priced,
)
from heliograph.domain.record import RequestRecord
from heliograph.domain.text import cut_text
from heliograph.domain.usage import Usage
from heliograph.providers import openai
from heliograph.providers.base import Parsed, Provider, request_model
from heliograph.providers.encoding import decode_body
from heliograph.providers.sse import load_json


@dataclass(frozen=True, slots=True)
class Cost:
    parsed: Parsed  # what the response says
    request_model: str  # the model the request named
    model: str  # the model billed: the override, the response's, the request's or a reported one
    usage: Usage
    price: Price


def record_cost(
    record: RequestRecord,
    provider: Provider | None,
    overrides: Sequence[PriceOverride] = (),
) -> Cost:
    """The cost of a record from its raw bytes."""
    response_body = decode_body(record.response_body, record.response_encoding)
    request_json = load_json(record.request_body) if record.request_body else None
    return cost_of(record, provider, response_body, request_json, overrides)


def cost_of(
    record: RequestRecord,
    provider: Provider | None,
    response_body: bytes,
    request_json: Any,
    overrides: Sequence[PriceOverride] = (),
) -> Cost:
    """The cost of a record whose response is decoded and request parsed already. Usage and cost
    a log message reported stand in for what its bodies do not say; a cost it reported wins over
    any price, then the organization's `overrides`, then genai-prices. The model is cut to
    `MAX_MODEL_CHARS`, so it is priced under the name it is stored under."""
    parsed = _parse_record(record, provider, response_body)
    from_request = request_model(record.path, request_json)
    named = (
        record.attribution.model_override
        or parsed.model
        or from_request
        or _reported_model(record.reported)
    )
    model = cut_text(named, MAX_MODEL_CHARS)
    usage = parsed.usage
    if not usage.is_known and record.reported:
        usage = _reported_usage(record.reported)
    reported_cost = record.reported.get("cost") if record.reported else None
    if isinstance(reported_cost, int | float) and not isinstance(reported_cost, bool):
        price = priced(Decimal(str(reported_cost)))  # an absurd one is unpriced, as computed
    else:
        price = price_of(usage, record.provider, model, provider, overrides)
    return Cost(parsed, from_request, model, usage, price)


def price_of(
    usage: Usage,
    provider_name: str,
    model: str,
    provider: Provider | None,
    overrides: Sequence[PriceOverride] = (),
) -> Price:
    """`usage` of `model` at the organization's override for it, else at genai-prices'."""
    override = find_override(overrides, provider_name, model) if overrides else None
    if override is not None:
        return price_with_override(usage, override)
    return price_usage(usage, model, provider.price_id if provider else None)


def _parse_record(record: RequestRecord, provider: Provider | None, response_body: bytes) -> Parsed:
    """Usage as the provider reported it: from its own answer when the unified API translated
    it (exact, whatever the translation kept), else from the response as stored."""
    if record.provider_response_body:
        parsed = _parse(provider, record.provider_response_body, record.is_stream)
        if parsed.model:
            return parsed
        # Converse never names its model; the answer the client got does.
        client = _parse(None, response_body, record.is_stream)
        return Parsed(client.model, parsed.usage)
    if record.translated:  # OpenAI's shape: a cache replay, or a provider speaking it
        return _parse(None, response_body, record.is_stream)
    return _parse(provider, response_body, record.is_stream)


def _parse(provider: Provider | None, response_body: bytes, is_stream: bool) -> Parsed:
    if not response_body:
        return Parsed()
    parse = provider.parse if provider else openai.parse
    return parse(response_body, is_stream)


def _reported_model(reported: Mapping[str, object] | None) -> str:
    """The model a log message named when it carried no bodies to read it from."""
    model = reported.get("model") if reported else None
    return model if isinstance(model, str) else ""


def _reported_usage(reported: Mapping[str, object]) -> Usage:
    def count(key: str) -> int | None:
        value = reported.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return Usage(
        input_tokens=count("promptTokens"),
        output_tokens=count("completionTokens"),
        cache_read_tokens=count("promptCacheReadTokens") or 0,
        cache_write_tokens=count("promptCacheWriteTokens") or 0,
        reasoning_tokens=count("reasoningTokens") or 0,
        audio_input_tokens=count("promptAudioTokens") or 0,
        audio_output_tokens=count("completionAudioTokens") or 0,
    )
