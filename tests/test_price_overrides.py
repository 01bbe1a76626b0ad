"""Price overrides: the REST routes (validation, isolation, capabilities, audit), rows priced at
an override from the moment it is saved, a recompute that re-prices stored rows and rebuilds the
hourly rollup exactly once, provider-specific overrides beating any-provider ones, and `cents`
rate limits charged at the override."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from click.testing import CliRunner

from conftest import Fake, Heliograph
from heliograph.appdb.lookups import AppDbLookups
from heliograph.cli.main import cli
from heliograph.domain.access import KeyPermissions
from heliograph.domain.money import NANO_PER_USD
from heliograph.domain.pricing import PriceOverride, find_override, price_with_override
from heliograph.domain.usage import Usage
from heliograph.services import prices
from heliograph.services.audit import AuditQuery
from heliograph.services.price_cache import PriceCache
from test_gateway_process import gateway_process

BASE = "/v1/price-overrides"
# The fake provider's usage: 21 prompt tokens of which 5 cached, 9 completion of which 2 reasoning.
FAKE_USAGE = Usage(input_tokens=16, output_tokens=7, cache_read_tokens=5, reasoning_tokens=2)
ACME = {
    "model": "ACME-LLM*",
    "input_per_mtok": "2",
    "output_per_mtok": "10",
    "cache_read_per_mtok": "0.5",
    "per_request": "0.001",
}
# 0.001 + (16 * 2 + 5 * 0.5 + 9 * 10) / 1e6 USD
ACME_NANO = 1_124_500


async def send(hg: Heliograph, method: str, path: str, body: Any = None, key: str = "") -> Any:
    async with aiohttp.ClientSession() as session:
        kwargs: dict[str, Any] = {"headers": hg.auth(key or None)}
        if isinstance(body, bytes):
            kwargs["data"] = body
            kwargs["headers"]["Content-Type"] = "application/json"
        elif body is not None:
            kwargs["json"] = body
        async with session.request(method, hg.api + path, **kwargs) as response:
            return response.status, await response.json()


async def chat(hg: Heliograph, model: str, **headers: str) -> tuple[int, str]:
    """One chat completion through the gateway: its status and request id."""
    client = openai.AsyncOpenAI(
        api_key="sk-provider",
        base_url=f"{hg.gateway}/openai/v1",
        default_headers={"Helicone-Auth": f"Bearer {hg.api_key}", **headers},
        max_retries=0,
    )
    async with client:
        try:
            raw = await client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            )
        except openai.APIStatusError as error:
            return error.status_code, error.response.headers["helicone-id"]
        return raw.status_code, raw.headers["helicone-id"]


async def stored(hg: Heliograph, request_id: str) -> tuple[int, str]:
    """A request's stored cost (nano-USD) and pricing status, once it is stored."""
    await hg.wait_for(request_id)
    store = hg.running.services.store
    scope = store.engine.scope(hg.organization_id)
    rows = await store.engine.read(
        scope,
        "SELECT cost, toString(pricing_status) AS status FROM request_response"
        " WHERE organization_id = {org:UUID} AND request_id = {id:UUID}",
        scope.params(id=request_id),
    )
    return int(rows[0]["cost"]), rows[0]["status"]


def test_override_pricing_is_exact_and_most_specific_wins() -> None:
    any_provider = PriceOverride("", "gpt-4o*", Decimal(1), Decimal(2))
    exact = PriceOverride("", "gpt-4o-mini", Decimal(3), Decimal(4))
    openai_only = PriceOverride("OPENAI", "gpt-4o*", Decimal(5), Decimal(6))
    overrides = [any_provider, exact, openai_only]
    assert find_override(overrides, "OPENAI", "GPT-4o-mini") is openai_only
    assert find_override(overrides, "AZURE", "gpt-4o-mini") is exact
    assert find_override(overrides, "AZURE", "gpt-4o-2024") is any_provider
    assert find_override(overrides, "AZURE", "gpt-5") is None
    # Half a nano-dollar a token: halves round to even, never through a float.
    halves = PriceOverride("", "m", Decimal("0.0005"), Decimal(0))
    assert price_with_override(Usage(input_tokens=1), halves).cost_nano_usd == 0
    assert price_with_override(Usage(input_tokens=3), halves).cost_nano_usd == 2
    assert price_with_override(Usage(input_tokens=5), halves).cost_nano_usd == 2
    cache = PriceOverride("", "m", Decimal(1), Decimal(0), None, Decimal(4))
    price = price_with_override(Usage(input_tokens=10, cache_write_tokens=10), cache)
    assert price.cost_nano_usd == 10 * 1_000 + 10 * 4_000  # reads at input, writes at their own
    per_request = PriceOverride("", "m", Decimal(1), Decimal(1), per_request=Decimal("0.02"))
    assert price_with_override(Usage(), per_request).cost_nano_usd == 20_000_000
    assert price_with_override(Usage(), halves).status == "no_usage"


class Directory:
    """An app DB stand-in whose overrides the test changes, or breaks."""

    def __init__(self) -> None:
        self.overrides = [PriceOverride("", "m", Decimal(1), Decimal(1))]
        self.broken = False

    def price_overrides(self, organization_id: str) -> list[PriceOverride]:
        if self.broken:
            raise ConnectionError("app DB away")
        return list(self.overrides)


async def test_the_cache_is_dropped_on_save_renewed_and_outlives_the_app_db() -> None:
    directory = Directory()
    first = tuple(directory.overrides)
    cache = PriceCache(directory, ttl_s=3600)
    assert cache.for_organization("o") == first
    directory.overrides = []
    assert await cache.overrides("o") == first  # from memory
    cache.forget("o")  # what the saving process does
    assert await cache.overrides("o") == ()
    renewing = PriceCache(directory, ttl_s=0.01)  # what other processes see after `ttl_s`
    assert renewing.for_organization("o") == ()  # a first read waits for the app DB
    directory.overrides = list(first)
    await asyncio.sleep(0.02)
    assert renewing.for_organization("o") == ()  # stale, answered at once while it renews
    renewing.idle()
    assert renewing.for_organization("o") == first
    directory.broken = True  # what is known keeps applying; nothing raises into ingest
    await asyncio.sleep(0.02)
    assert renewing.for_organization("o") == first
    renewing.idle()
    assert renewing.for_organization("o") == first
    assert renewing.for_organization("new") == ()
    renewing.close()


async def test_crud_validation_isolation_and_audit(
    heliograph_on_each_db: Heliograph, monkeypatch: pytest.MonkeyPatch
) -> None:
    heliograph = heliograph_on_each_db
    monkeypatch.setattr(prices, "MAX_OVERRIDES", 2)
    status, body = await send(heliograph, "POST", BASE, {**ACME, "provider": "openai"})
    assert status == 201, body
    created = body["data"]
    assert created["provider"] == "OPENAI"
    assert created["model"] == "acme-llm*"
    assert created["cache_write_per_mtok"] is None
    assert created["per_request"] == "0.001"
    # The same provider and model again replaces it, under the same id.
    status, body = await send(
        heliograph, "POST", BASE, {**ACME, "provider": "OpenAI", "input_per_mtok": 3.25}
    )
    assert status == 200
    assert (body["data"]["id"], body["data"]["input_per_mtok"]) == (created["id"], "3.25")
    status, body = await send(heliograph, "POST", BASE, {**ACME, "model": "other"})
    assert status == 201
    other_id = body["data"]["id"]
    status, body = await send(heliograph, "POST", BASE, {**ACME, "model": "third"})
    assert status == 409, body  # over the cap (lowered to 2 here); replacing is still fine

    path = f"{BASE}/{created['id']}"
    status, body = await send(heliograph, "PATCH", path, {"output_per_mtok": "12.5"})
    assert (status, body["data"]["output_per_mtok"]) == (200, "12.5")
    assert body["data"]["input_per_mtok"] == "3.25"
    status, body = await send(heliograph, "PATCH", path, {"cache_read_per_mtok": None})
    assert (status, body["data"]["cache_read_per_mtok"]) == (200, None)
    status, body = await send(heliograph, "PATCH", f"{BASE}/{other_id}", {"provider": "OPENAI"})
    assert status == 200  # "other" on OPENAI: no clash
    status, body = await send(heliograph, "PATCH", f"{BASE}/{other_id}", {"model": "acme-llm*"})
    assert status == 409, body

    refused: list[Any] = [
        {**ACME, "input_per_mtok": "-1"},
        {**ACME, "input_per_mtok": "0.0000000000001"},  # 13 decimal places
        {**ACME, "output_per_mtok": "1000001"},
        {**ACME, "output_per_mtok": "NaN"},
        {**ACME, "output_per_mtok": "Infinity"},
        {**ACME, "output_per_mtok": True},
        {**ACME, "per_request": "1001"},
        {**ACME, "model": "a\x00b"},
        {**ACME, "model": "x" * 257},
        {**ACME, "model": "gpt-*-mini"},
        {**ACME, "model": "   "},
        {**ACME, "provider": "p" * 65},
        {**ACME, "colour": "blue"},
        {key: value for key, value in ACME.items() if key != "output_per_mtok"},
        b"{not json",
        b'{"model": "\xff\xfe", "input_per_mtok": "1", "output_per_mtok": "1"}',
    ]
    for bad in refused:
        status, body = await send(heliograph, "POST", BASE, bad)
        assert status == 400, (bad, body)
        assert body["error"]
    status, body = await send(heliograph, "PATCH", path, {"input_per_mtok": "-2"})
    assert status == 400
    status, body = await send(heliograph, "GET", BASE)
    assert status == 200
    assert sorted(item["model"] for item in body["data"]) == ["acme-llm*", "other"]
    assert body["data"][0]["input_per_mtok"] == "3.25"  # the refused PATCH changed nothing
    # Gateway processes read them in plain SQL, to the same exact values.
    services = heliograph.running.services
    lookups = AppDbLookups(services.settings.resolved_database_url)
    try:
        assert set(lookups.price_overrides(heliograph.organization_id)) == {
            item.value for item in services.prices.list(heliograph.organization_id)
        }
    finally:
        lookups.close()

    # A read-only key lists but changes nothing; another organization sees and reaches nothing.
    keys = heliograph.running.services.keys
    reader = keys.create_key(heliograph.organization_id, "reader", KeyPermissions.READ).api_key
    assert (await send(heliograph, "GET", BASE, key=reader))[0] == 200
    for method, where, payload in [
        ("POST", BASE, ACME),
        ("PATCH", path, {"input_per_mtok": "1"}),
        ("DELETE", path, None),
        ("POST", f"{BASE}/recompute", {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02"}),
    ]:
        assert (await send(heliograph, method, where, payload, key=reader))[0] == 403
    _, other_key = heliograph.new_organization()
    assert (await send(heliograph, "GET", BASE, key=other_key))[1]["data"] == []
    assert (await send(heliograph, "PATCH", path, {"input_per_mtok": "1"}, other_key))[0] == 404
    assert (await send(heliograph, "DELETE", path, key=other_key))[0] == 404
    assert (await send(heliograph, "DELETE", f"{BASE}/{uuid.uuid4()}"))[0] == 404

    assert (await send(heliograph, "DELETE", path))[0] == 200
    assert (await send(heliograph, "DELETE", path))[0] == 404
    # Saved at once by several callers: one override, each answered.
    monkeypatch.undo()
    racing = {**ACME, "model": "racing"}
    answers = await asyncio.gather(*(send(heliograph, "POST", BASE, racing) for _ in range(4)))
    assert sorted(status for status, _ in answers) == [200, 200, 200, 201]
    assert len({body["data"]["id"] for _, body in answers}) == 1
    audit = heliograph.running.services.audit.query(
        AuditQuery(heliograph.organization_id, action="price_override.")
    )
    assert [line.action for line in reversed(audit)] == [
        "price_override.create",
        "price_override.replace",
        "price_override.create",
        "price_override.update",
        "price_override.update",
        "price_override.update",
        "price_override.delete",
        "price_override.create",
        *["price_override.replace"] * 3,
    ]
    assert audit[4].details["model"] == "acme-llm*"


async def test_an_override_prices_from_its_moment_on_and_recompute_catches_up(
    heliograph: Heliograph,
) -> None:
    status, before = await chat(heliograph, "acme-llm")
    assert status == 200
    assert await stored(heliograph, before) == (0, "unknown_model")
    assert (await send(heliograph, "POST", BASE, ACME))[0] == 201
    _, after = await chat(heliograph, "acme-llm")
    assert await stored(heliograph, after) == (ACME_NANO, "priced")
    assert await stored(heliograph, before) == (0, "unknown_model")  # no retroactive change
    _, known = await chat(heliograph, "gpt-4o-mini")  # not overridden: genai-prices
    known_price = await stored(heliograph, known)
    assert known_price[1] == "priced"
    assert known_price[0] not in (0, ACME_NANO)

    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    span = {
        "start": (hour - timedelta(hours=1)).isoformat(),
        "end": (hour + timedelta(hours=2)).isoformat(),
    }
    only = {**span, "model": "GPT-4o-mini*"}  # a prefix, in any case
    status, body = await send(heliograph, "POST", f"{BASE}/recompute", only)
    assert (status, body["data"]["rows_checked"], body["data"]["rows_repriced"]) == (200, 1, 0)
    status, body = await send(heliograph, "POST", f"{BASE}/recompute", span)
    assert status == 200, body
    assert body["data"] == {
        "rows_checked": 3,
        "rows_repriced": 1,
        "rows_unknown": 0,
        "hours_rebuilt": 1,
    }
    assert await stored(heliograph, before) == (ACME_NANO, "priced")
    assert await stored(heliograph, known) == known_price
    audit = heliograph.running.services.audit.query(
        AuditQuery(heliograph.organization_id, action="price_override.recompute")
    )
    assert [line.details["model"] for line in audit] == ["", "gpt-4o-mini*"]
    # The metrics read whole hours from the rollup: it holds each request once, at its new cost.
    status, body = await send(heliograph, "POST", f"{BASE}/recompute", span)
    assert body["data"]["rows_repriced"] == 0
    window = {"timeFilter": span}
    status, totals = await heliograph.api_post("/v1/metrics/totals", window)
    assert status == 200
    assert totals["data"]["total_requests"] == 3
    expected = (2 * ACME_NANO + known_price[0]) / NANO_PER_USD
    assert totals["data"]["total_cost"] == pytest.approx(expected, rel=1e-12)

    # Bad ranges are refused before anything is read.
    for bad in [
        {"start": span["end"], "end": span["start"]},
        {"start": "2020-01-01T00:00:00Z", "end": "2021-06-01T00:00:00Z"},  # over 400 days
        {"start": "1900-01-01T00:00:00Z", "end": "1900-01-02T00:00:00Z"},
        {"start": "yesterday", "end": span["end"]},
        {**span, "model": "a*b"},
    ]:
        status, body = await send(heliograph, "POST", f"{BASE}/recompute", bad)
        assert status == 400, (bad, body)


async def test_one_recompute_at_a_time_per_organization(heliograph: Heliograph) -> None:
    """A second recompute of an organization whose recompute runs is a 429; another
    organization's is not held up by it."""
    span = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
    running = heliograph.running.services.repricer._running
    running.add(heliograph.organization_id)  # as while a long recompute runs
    try:
        status, body = await send(heliograph, "POST", f"{BASE}/recompute", span)
        assert status == 429, body
        assert "running" in body["error"]
        _, other_key = heliograph.new_organization("other")
        status, body = await send(heliograph, "POST", f"{BASE}/recompute", span, key=other_key)
        assert status == 200, body
    finally:
        running.discard(heliograph.organization_id)
    status, body = await send(heliograph, "POST", f"{BASE}/recompute", span)
    assert status == 200, body


async def test_provider_specific_override_wins_and_cents_limits_charge_it(
    heliograph: Heliograph,
) -> None:
    cent = {"model": "gpt-4o-mini*", "input_per_mtok": 0, "output_per_mtok": 0}
    await send(heliograph, "POST", BASE, {**cent, "per_request": "0.02"})
    status, body = await send(
        heliograph, "POST", BASE, {**cent, "provider": "OPENAI", "per_request": "0.01"}
    )
    assert status == 201
    _, request_id = await chat(heliograph, "gpt-4o-mini")
    assert await stored(heliograph, request_id) == (10_000_000, "priced")  # one cent

    # Each call now costs one cent (genai-prices says 0.0008 cents): 1.5 cents allow two.
    gateway = heliograph.running.gateway
    assert gateway is not None
    statuses = []
    for _ in range(3):
        statuses.append(
            (
                await chat(
                    heliograph, "gpt-4o-mini", **{"Helicone-RateLimit-Policy": "1.5;w=3600;u=cents"}
                )
            )[0]
        )
        await gateway.proxy.drain()  # the charge lands after the response
    assert statuses == [200, 200, 429]

    # Without the provider's own override the any-provider one applies, from then on.
    assert (await send(heliograph, "DELETE", f"{BASE}/{body['data']['id']}"))[0] == 200
    _, request_id = await chat(heliograph, "gpt-4o-mini")
    assert await stored(heliograph, request_id) == (20_000_000, "priced")


async def test_a_gateway_process_charges_cents_at_the_override(
    api: Heliograph, fake: Fake, tmp_path: Path
) -> None:
    nickel = {"model": "gpt-4o-mini*", "input_per_mtok": 0, "output_per_mtok": 0}
    assert (await send(api, "POST", BASE, {**nickel, "per_request": "0.05"}))[0] == 201
    headers = {
        "Helicone-Auth": f"Bearer {api.api_key}",
        "Authorization": "Bearer sk-test",
        "Helicone-RateLimit-Policy": "100;w=3600;u=cents",
    }
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    seen: list[int] = []
    async with gateway_process(api, fake, tmp_path) as gateway, aiohttp.ClientSession() as session:
        url = f"{gateway}/openai/v1/chat/completions"
        # The charge lands after each response: send until one shows it. Five cents a request
        # leave 95, 90, ... cents; genai-prices' 0.0008 cents would leave 99.
        while not seen or seen[-1] == 100:
            async with session.post(url, json=body, headers=headers) as response:
                assert response.status == 200
                seen.append(int(response.headers["Helicone-RateLimit-Remaining"]))
                request_id = response.headers["Helicone-Id"]
            assert len(seen) < 200, "no charge landed"
    assert all((100 - remaining) % 5 == 0 for remaining in seen), seen
    assert seen[-1] < 100
    assert await stored(api, request_id) == (50_000_000, "priced")  # shipped, priced the same


async def test_the_command_line_recomputes_through_the_api(heliograph: Heliograph) -> None:
    _, request_id = await chat(heliograph, "acme-llm")
    await stored(heliograph, request_id)
    assert (await send(heliograph, "POST", BASE, ACME))[0] == 201
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    common = ["--key", heliograph.api_key, "--api-url", heliograph.api, "--model", "acme-llm*"]
    span = ["--start", str(hour - timedelta(hours=1)), "--end", str(hour + timedelta(hours=1))]
    runner = CliRunner()
    result = await asyncio.to_thread(runner.invoke, cli, ["prices", "recompute", *span, *common])
    assert result.exit_code == 0, result.output
    assert "1 requests checked, 1 re-priced, 0 still of unknown models" in result.output
    assert await stored(heliograph, request_id) == (ACME_NANO, "priced")
    backwards = ["--start", str(hour), "--end", str(hour - timedelta(hours=1))]
    result = await asyncio.to_thread(
        runner.invoke, cli, ["prices", "recompute", *backwards, *common]
    )
    assert result.exit_code == 1
    assert "400" in result.output
    assert "end must be after start" in result.output
