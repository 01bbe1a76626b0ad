"""Exact cost of a request from its usage, using the offline `genai-prices` snapshot.

Cost is kept as an integer number of nano-dollars (Helicone's `cost` column, USD x 1e9), computed
from Decimal prices so nothing is lost to floats. Unknown models are flagged, never priced at 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

import genai_prices

from heliograph.domain.usage import Usage

NANO_USD = Decimal(1_000_000_000)

PRICED = "priced"
UNKNOWN_MODEL = "unknown_model"
NO_USAGE = "no_usage"


@dataclass(frozen=True, slots=True)
class Price:
    cost_nano_usd: int
    status: str


def usd_to_nano(usd: Decimal) -> int:
    return int((usd * NANO_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def price_usage(usage: Usage, model: str, price_provider: str | None) -> Price:
    """Price `usage` of `model`; `price_provider` is the genai-prices provider id, if known."""
    if not usage.is_known:
        return Price(0, NO_USAGE)
    if not model:
        return Price(0, UNKNOWN_MODEL)
    total = _price(
        model,
        price_provider,
        (usage.input_tokens or 0) + usage.cache_read_tokens + usage.cache_write_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        (usage.output_tokens or 0) + usage.reasoning_tokens,
    )
    if total is None:
        return Price(0, UNKNOWN_MODEL)
    return Price(usd_to_nano(total), PRICED)


def _price(
    model: str,
    provider: str | None,
    input_tokens: int,
    cache_read: int,
    cache_write: int,
    output_tokens: int,
) -> Decimal | None:
    usage = genai_prices.Usage(
        input_tokens=input_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        output_tokens=output_tokens,
    )
    try:
        calculation = genai_prices.calc_price(usage, model_ref=model, provider_id=provider)
    except LookupError:
        return None
    return Decimal(calculation.total_price)
