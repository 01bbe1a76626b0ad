"""The models Heliograph can price: every model of the offline `genai-prices` snapshot, with its
provider, context window and current prices (USD per million tokens for the `*_mtok` prices, as
genai-prices names them). Built once per process; the organization's price overrides are not
part of it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

MAX_QUERY_CHARS = 200


@cache
def catalog() -> tuple[dict[str, Any], ...]:
    """Every model, by provider then model id, with the prices in force now."""
    from genai_prices import data_snapshot

    now = datetime.now(UTC)
    models = []
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            prices, tiers = _prices(vars(model.get_prices(now)))
            models.append(
                {
                    "provider": provider.id,
                    "provider_name": provider.name,
                    "model": model.id,
                    "name": model.name or model.id,
                    "context_window": model.context_window,
                    "deprecated": bool(model.deprecated),
                    "prices": prices,
                    "price_tiers": tiers,
                }
            )
    return tuple(sorted(models, key=lambda m: (m["provider"], m["model"])))


def find_models(provider: str | None = None, query: str | None = None) -> list[dict[str, Any]]:
    """The catalog's models of `provider` (its id, any case) whose id or name contains `query`
    (any case)."""
    wanted = provider.lower() if provider else None
    needle = query.lower() if query else None
    return [
        model
        for model in catalog()
        if (wanted is None or model["provider"] == wanted)
        and (needle is None or needle in model["model"].lower() or needle in model["name"].lower())
    ]


def _prices(fields: dict[str, Any]) -> tuple[dict[str, float], dict[str, list[dict[str, Any]]]]:
    """Each price's base value, and the tiers of the tiered ones (`start` in tokens)."""
    from genai_prices.types import TieredPrices

    prices: dict[str, float] = {}
    tiers: dict[str, list[dict[str, Any]]] = {}
    for name, value in fields.items():
        if name.startswith("_"):
            continue
        if isinstance(value, TieredPrices):
            prices[name] = _number(value.base)
            tiers[name] = [{"start": t.start, "price": _number(t.price)} for t in value.tiers]
        elif isinstance(value, Decimal | int | float):
            prices[name] = _number(value)
    return prices, tiers


def _number(value: Decimal | int | float) -> float:
    # Prices have a few significant digits: a float prints them back exactly.
    return float(value)
