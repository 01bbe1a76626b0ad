"""`GET /v1/models`: the genai-prices catalog over the live API, public, filtered and capped."""

from __future__ import annotations

from typing import Any

import aiohttp

from conftest import Heliograph


async def get(heliograph: Heliograph, query: str = "") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:  # no key: the catalog is public
        async with session.get(f"{heliograph.api}/v1/models{query}") as response:
            return response.status, await response.json()


async def test_every_model_with_its_prices(heliograph: Heliograph) -> None:
    from genai_prices import data_snapshot

    status, body = await get(heliograph)
    assert status == 200
    models = body["data"]
    known = sum(len(p.models) for p in data_snapshot.get_snapshot().providers)
    assert len(models) == known > 100
    by_id = {(m["provider"], m["model"]): m for m in models}
    gpt = by_id[("openai", "gpt-4o")]
    assert gpt["prices"]["input_mtok"] == 2.5
    assert gpt["prices"]["output_mtok"] == 10
    assert gpt["prices"]["cache_read_mtok"] == 1.25
    assert gpt["context_window"] == 128000
    assert gpt["name"]


async def test_filters_by_provider_and_text(heliograph: Heliograph) -> None:
    status, body = await get(heliograph, "?provider=Anthropic&q=SONNET")
    assert status == 200
    assert body["data"]
    for model in body["data"]:
        assert model["provider"] == "anthropic"
        assert "sonnet" in (model["model"] + model["name"]).lower()
    tiered = [m for m in body["data"] if m["price_tiers"]]
    for model in tiered:  # a tier starts at a token count and has its own price
        for tiers in model["price_tiers"].values():
            assert all(t["start"] > 0 and t["price"] >= 0 for t in tiers)
    assert (await get(heliograph, "?provider=nobody"))[1]["data"] == []


async def test_refuses_oversized_filters(heliograph: Heliograph) -> None:
    status, body = await get(heliograph, "?q=" + "x" * 201)
    assert status == 400
    assert body["data"] is None
    assert "q" in body["error"]
