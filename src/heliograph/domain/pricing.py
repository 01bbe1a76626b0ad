"""Exact cost of a request from its usage, using the offline `genai-prices` snapshot.

Cost is kept as an integer number of nano-dollars (Helicone's `cost` column, USD x 1e9), computed
from Decimal prices so nothing is lost to floats. Unknown models are flagged, never priced at 0.

`genai_prices.calc_price` takes about 200 us a call, too slow for every logged request. Below a
model's first price tier cost is linear in each kind of token, so the per-token rates are learnt
once per model, provider and hour from `calc_price` itself and applied with exact Decimal sums;
usage that reaches a tier goes through `calc_price` whole. An organization's own price for a
model (`PriceOverride`) replaces the snapshot's for that organization's rows. A cost no single
request can run up (`MAX_COST_USD`) says the usage counts are not real: it is stored unpriced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from functools import lru_cache

from heliograph.domain.money import NANO_PER_USD
from heliograph.domain.usage import Usage

NANO_USD = Decimal(NANO_PER_USD)
# No single request costs more. Above it (usage near int64 reaches 1e22 nano-USD, past the UInt64
# column) the counts are not believable: the row keeps them, unpriced, rather than a cost that
# cannot be stored or that would swamp (or overflow) every sum it is part of.
MAX_COST_USD = Decimal(1_000_000)
MAX_MODEL_CHARS = 256  # a model name, as stored and as a price override names it
MAX_PROVIDER_CHARS = 64
PROBE_TOKENS = 1000


class PriceStatus(StrEnum):
    """A row's `pricing_status`: whether its cost is known, and why not."""

    PRICED = "priced"
    UNKNOWN_MODEL = "unknown_model"
    NO_USAGE = "no_usage"
    CACHE_HIT = "cache_hit"  # a replayed response: nothing spent (set by ingest)


@dataclass(frozen=True, slots=True)
class Price:
    cost_nano_usd: int
    status: PriceStatus


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """Counts as genai-prices takes them: `input` includes cache reads and writes."""

    input: int
    cache_read: int
    cache_write: int
    output: int


@dataclass(frozen=True, slots=True)
class LinearRates:
    """USD per token of each kind, valid while every count stays below `valid_below`."""

    fixed: Decimal
    uncached_input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    valid_below: int

    def total(self, counts: TokenCounts) -> Decimal:
        uncached = counts.input - counts.cache_read - counts.cache_write
        return (
            self.fixed
            + uncached * self.uncached_input
            + counts.cache_read * self.cache_read
            + counts.cache_write * self.cache_write
            + counts.output * self.output
        )


def usd_to_nano(usd: Decimal) -> int:
    return int((usd * NANO_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def priced(usd: Decimal) -> Price:
    """The price of a request that cost `usd`; a cost that is not a real one (negative, not a
    number, above `MAX_COST_USD`) is `NO_USAGE` at 0: its usage cannot be what was spent."""
    if not usd.is_finite() or not 0 <= usd <= MAX_COST_USD:
        return Price(0, PriceStatus.NO_USAGE)
    return Price(usd_to_nano(usd), PriceStatus.PRICED)


def price_usage(usage: Usage, model: str, price_provider: str | None) -> Price:
    """Price `usage` of `model`; `price_provider` is the genai-prices provider id, if known."""
    if not usage.is_known or not _credible(usage):
        return Price(0, PriceStatus.NO_USAGE)
    if not model:
        return Price(0, PriceStatus.UNKNOWN_MODEL)
    total = price_counts(token_counts(usage), model, price_provider)
    if total is None:
        return Price(0, PriceStatus.UNKNOWN_MODEL)
    return priced(total)


def price_counts(counts: TokenCounts, model: str, provider: str | None) -> Decimal | None:
    """USD for `counts`, or None when genai-prices does not know the model."""
    hour = datetime.now(UTC).strftime("%Y-%m-%d %H")  # prices may change on a date
    rates = linear_rates(model, provider, hour)
    if rates is not None and max(counts.input, counts.output) < rates.valid_below:
        return rates.total(counts)
    return calc_price(counts, model, provider)


def calc_price(counts: TokenCounts, model: str, provider: str | None) -> Decimal | None:
    # Imported on first use: genai-prices brings pydantic, which a gateway process that never
    # prices a request (no `cents` rate limit) should not carry.
    import genai_prices

    usage = genai_prices.Usage(
        input_tokens=counts.input,
        cache_read_tokens=counts.cache_read,
        cache_write_tokens=counts.cache_write,
        output_tokens=counts.output,
    )
    try:
        calculation = genai_prices.calc_price(usage, model_ref=model, provider_id=provider)
    except LookupError:
        return None
    return Decimal(calculation.total_price)


@lru_cache(maxsize=2048)
def linear_rates(model: str, provider: str | None, hour: str) -> LinearRates | None:
    """Per-token rates learnt from `calc_price`; None for unknown models (the slow path says so)."""
    from genai_prices import data_snapshot
    from genai_prices.types import TieredPrices

    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider, None)
    except LookupError:
        return None
    prices = info.get_prices(datetime.now(UTC))
    tier_starts = [
        tier.start
        for value in vars(prices).values()
        if isinstance(value, TieredPrices)
        for tier in value.tiers
    ]
    valid_below = min(tier_starts, default=10**12)
    if valid_below <= PROBE_TOKENS:
        return None
    n = PROBE_TOKENS

    def probe(**kinds: int) -> Decimal:
        counts = TokenCounts(
            **{"input": 0, "cache_read": 0, "cache_write": 0, "output": 0, **kinds}
        )
        return calc_price(counts, model, provider) or Decimal(0)

    fixed = probe()
    return LinearRates(
        fixed=fixed,
        uncached_input=(probe(input=n) - fixed) / n,
        cache_read=(probe(input=n, cache_read=n) - fixed) / n,
        cache_write=(probe(input=n, cache_write=n) - fixed) / n,
        output=(probe(output=n) - fixed) / n,
        valid_below=valid_below,
    )


MTOK = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """An organization's own price for a model, in USD per million tokens of each kind and USD per
    request. `provider` "" matches any provider; `model` is lower case and may end in `*` (a
    prefix). A missing cache rate charges cache tokens as input tokens."""

    provider: str
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    per_request: Decimal = Decimal(0)

    def matches(self, provider: str, model: str) -> bool:
        return self.matches_normalised(provider.upper(), model.lower())

    def matches_normalised(self, provider: str, model: str) -> bool:
        """`matches` for a provider upper-cased and a model lower-cased already."""
        if self.provider and self.provider != provider:
            return False
        if self.model.endswith("*"):
            return model.startswith(self.model[:-1])
        return model == self.model

    def precedence(self) -> tuple[bool, bool, int]:
        """Higher wins: a named provider, then an exact model, then the longer prefix."""
        return bool(self.provider), not self.model.endswith("*"), len(self.model)

    def total(self, counts: TokenCounts) -> Decimal:
        cache_read = self.cache_read_per_mtok
        cache_write = self.cache_write_per_mtok
        uncached = counts.input - counts.cache_read - counts.cache_write
        per_mtok = (
            uncached * self.input_per_mtok
            + counts.cache_read * (self.input_per_mtok if cache_read is None else cache_read)
            + counts.cache_write * (self.input_per_mtok if cache_write is None else cache_write)
            + counts.output * self.output_per_mtok
        )
        return self.per_request + per_mtok / MTOK


def find_override(
    overrides: Sequence[PriceOverride], provider: str, model: str
) -> PriceOverride | None:
    """The override that prices `model` from `provider`, if any (`PriceOverride.precedence`)."""
    provider, model = provider.upper(), model.lower()  # once, not once per override
    matching = [o for o in overrides if o.matches_normalised(provider, model)]
    return max(matching, key=PriceOverride.precedence, default=None)


def _credible(usage: Usage) -> bool:
    """No count is negative (a sender's bug, which genai-prices refuses outright)."""
    counts = (
        usage.input_tokens or 0,
        usage.output_tokens or 0,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
    )
    return min(counts) >= 0


def token_counts(usage: Usage) -> TokenCounts:
    return TokenCounts(
        input=(usage.input_tokens or 0) + usage.cache_read_tokens + usage.cache_write_tokens,
        cache_read=usage.cache_read_tokens,
        cache_write=usage.cache_write_tokens,
        output=(usage.output_tokens or 0) + usage.reasoning_tokens,
    )


def price_with_override(usage: Usage, override: PriceOverride) -> Price:
    """`usage` at an organization's own price; without usage only a per-request price applies."""
    if not usage.is_known or not _credible(usage):
        if override.per_request > 0:
            return priced(override.per_request)
        return Price(0, PriceStatus.NO_USAGE)
    return priced(override.total(token_counts(usage)))
