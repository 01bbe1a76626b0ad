"""Cost: the fast linear path must agree exactly with genai-prices on every usage it takes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from heliograph.domain.pricing import (
    PriceStatus,
    TokenCounts,
    calc_price,
    price_counts,
    price_usage,
)
from heliograph.domain.usage import Usage

MODELS = [
    ("gpt-4o-mini", "openai"),
    ("gpt-4o", "openai"),
    ("o4-mini", "openai"),
    ("claude-sonnet-4-5", "anthropic"),
    ("claude-3-5-haiku-latest", "anthropic"),
    ("gemini-2.5-pro", "google"),
    ("gemini-2.5-flash", "google"),
    ("llama-3.3-70b-versatile", "groq"),
    ("deepseek-chat", "deepseek"),
]


@st.composite
def counts(draw: st.DrawFn) -> TokenCounts:
    cache_read = draw(st.integers(0, 300_000))
    cache_write = draw(st.integers(0, 300_000))
    uncached = draw(st.integers(0, 400_000))
    return TokenCounts(
        input=uncached + cache_read + cache_write,
        cache_read=cache_read,
        cache_write=cache_write,
        output=draw(st.integers(0, 300_000)),
    )


@settings(max_examples=300, deadline=None)
@given(model=st.sampled_from(MODELS), usage=counts())
def test_fast_path_equals_genai_prices(model: tuple[str, str], usage: TokenCounts) -> None:
    name, provider = model
    assert price_counts(usage, name, provider) == calc_price(usage, name, provider)


def test_known_unknown_and_missing_usage_are_told_apart() -> None:
    priced = price_usage(Usage(input_tokens=1000, output_tokens=100), "gpt-4o-mini", "openai")
    assert priced.status == PriceStatus.PRICED
    assert priced.cost_nano_usd == 1000 * 150 + 100 * 600
    unknown = price_usage(Usage(input_tokens=5), "no-such-model", "openai")
    assert unknown.status == PriceStatus.UNKNOWN_MODEL
    assert price_usage(Usage(), "gpt-4o-mini", "openai").status == PriceStatus.NO_USAGE
