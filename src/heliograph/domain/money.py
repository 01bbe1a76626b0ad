"""Money as stored: whole nano-USD, so sums of costs are exact; US dollars only at the edges."""

from __future__ import annotations

NANO_PER_USD = 1_000_000_000


def nano_to_usd(nano: int | float | str | None) -> float:
    """A stored amount (a sum, or an engine's average of sums) in US dollars."""
    return float(nano or 0) / NANO_PER_USD
