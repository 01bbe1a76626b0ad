"""Response caching: Helicone's headers, buckets, seeds, ignore keys, save-only and read-only
modes, streams replayed as the same SSE, persistence across restarts, and both backends."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import diskcache
import openai
import orjson
import pytest

from conftest import REDIS_URL, Fake, Heliograph, heliograph_settings, needs_redis, start_heliograph
from fake_provider import TEXT
from heliograph.state.disk_cache import DiskResponseCache

ON = {"Helicone-Cache-Enabled": "true"}


@pytest.fixture
def cached(heliograph_on_each_backend: Heliograph) -> Heliograph:
    return heliograph_on_each_backend


def conversation(**extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": str(uuid.uuid4())}],
        **extra,
    }


async def post(
    hg: Heliograph, body: dict[str, Any], **headers: str
) -> tuple[int, dict[str, str], bytes]:
    all_headers = {**hg.gateway_auth(), "Authorization": "Bearer sk-provider", **headers}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{hg.gateway}/openai/v1/chat/completions", json=body, headers=all_headers
        ) as response:
            return response.status, dict(response.headers), await response.read()


def upstream_calls(fake: Fake, body: dict[str, Any]) -> int:
    return sum(1 for seen in fake.seen.requests if seen["body"].get("messages") == body["messages"])


async def test_second_identical_request_is_a_hit_logged_at_zero_cost(
    cached: Heliograph, fake: Fake
) -> None:
    body = conversation()
    _, first, first_body = await post(cached, body, **ON)
    status, second, second_body = await post(cached, body, **ON)
    assert status == 200
    assert first["Helicone-Cache"] == "MISS"
    assert second["Helicone-Cache"] == "HIT"
    assert second["Helicone-Cache-Bucket-Idx"] == "0"
    assert int(second["Helicone-Cache-Latency"]) >= 0
    assert orjson.loads(second_body) == orjson.loads(first_body)
    assert upstream_calls(fake, body) == 1
    original = await cached.wait_for(first["Helicone-Id"])
    hit = await cached.wait_for(second["Helicone-Id"])
    assert hit["cache_reference_id"] == original["request_id"]
    assert hit["cost"] == 0
    assert hit["pricing_status"] == "cache_hit"
    assert hit["cache_saved_cost"] == original["cost"] > 0
    assert hit["attempts"] == 0
    status, found = await cached.api_post(
        "/v1/request/query-clickhouse",
        {"filter": {"request_response_rmt": {"cached": {"equals": True}}}},
    )
    assert [row["request_id"] for row in found["data"]] == [hit["request_id"]]


async def test_streams_are_cached_and_replayed_as_the_same_stream(cached: Heliograph) -> None:
    async with openai.AsyncOpenAI(
        api_key="sk-provider",
        base_url=f"{cached.gateway}/openai/v1",
        default_headers={**cached.gateway_auth(), **ON},
        max_retries=0,
    ) as client:
        body = conversation()
        texts, caches = [], []
        for _ in range(2):
            stream = await client.chat.completions.create(
                model=body["model"], messages=body["messages"], stream=True
            )
            chunks = [chunk async for chunk in stream]
            assert all(chunk.choices for chunk in chunks), "the added usage chunk leaked"
            texts.append("".join(c.choices[0].delta.content or "" for c in chunks))
            caches.append(stream.response.headers["helicone-cache"])
    assert texts == [TEXT, TEXT]
    assert caches == ["MISS", "HIT"]


async def test_buckets_fill_before_hits(cached: Heliograph, fake: Fake) -> None:
    body = conversation()
    caches = []
    for _ in range(4):
        _, headers, _ = await post(cached, body, **ON, **{"Helicone-Cache-Bucket-Max-Size": "3"})
        caches.append(headers["Helicone-Cache"])
    assert caches == ["MISS", "MISS", "MISS", "HIT"]
    assert upstream_calls(fake, body) == 3


@pytest.mark.parametrize("size", ["0", "21", "many"])
async def test_bucket_size_out_of_range_is_400(cached: Heliograph, size: str) -> None:
    status, _, body = await post(
        cached, conversation(), **ON, **{"Helicone-Cache-Bucket-Max-Size": size}
    )
    assert status == 400
    assert b"Bucket-Max-Size" in body


async def test_seed_provider_key_and_ignored_keys_shape_the_key(cached: Heliograph) -> None:
    body = conversation(user="alice")
    await post(cached, body, **ON)
    _, seeded, _ = await post(cached, body, **ON, **{"Helicone-Cache-Seed": "other"})
    _, other_key, _ = await post(cached, body, **ON, Authorization="Bearer sk-someone-else")
    assert seeded["Helicone-Cache"] == "MISS"
    assert other_key["Helicone-Cache"] == "MISS"
    ignore = {"Helicone-Cache-Ignore-Keys": "user, temperature"}
    await post(cached, body, **ON, **ignore)
    _, ignored, _ = await post(cached, {**body, "user": "bob", "temperature": 0.3}, **ON, **ignore)
    assert ignored["Helicone-Cache"] == "HIT"


async def test_save_only_and_read_only_modes(cached: Heliograph, fake: Fake) -> None:
    body = conversation()
    _, read_first, _ = await post(cached, body, **{"Helicone-Cache-Read": "true"})
    _, saved, _ = await post(cached, body, **{"Helicone-Cache-Save": "true"})
    assert read_first["Helicone-Cache"] == "MISS"
    assert "Helicone-Cache" not in saved, "save-only never reads"
    _, read_again, _ = await post(cached, body, **{"Helicone-Cache-Read": "true"})
    assert read_again["Helicone-Cache"] == "HIT"
    assert upstream_calls(fake, body) == 2


async def expires_with_max_age(hg: Heliograph, advance: Callable[[float], Awaitable[None]]) -> None:
    body = conversation()
    ttl = {"Cache-Control": "max-age=1"}
    await post(hg, body, **ON, **ttl)
    _, fresh, _ = await post(hg, body, **ON, **ttl)
    await advance(1.6)
    _, expired, _ = await post(hg, body, **ON, **ttl)
    assert (fresh["Helicone-Cache"], expired["Helicone-Cache"]) == ("HIT", "MISS")


async def test_entries_expire_with_max_age(tmp_path: Path, analytics_dir: Path, fake: Fake) -> None:
    """On the disk cache, by its clock (a fake one here)."""
    now = [time.time()]

    async def advance(seconds: float) -> None:
        now[0] += seconds

    settings = heliograph_settings(tmp_path, analytics_dir, fake)
    cache = DiskResponseCache(
        settings.data_dir / "cache", settings.cache_max_bytes, clock=lambda: now[0]
    )
    hg = await start_heliograph(settings, cache)
    try:
        await expires_with_max_age(hg, advance)
    finally:
        await hg.running.stop()


@needs_redis
async def test_redis_entries_expire_with_max_age(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    """Redis expires entries by its own clock: this one waits in real time."""
    settings = heliograph_settings(tmp_path, analytics_dir, fake, redis_url=REDIS_URL)
    hg = await start_heliograph(settings)
    try:
        await expires_with_max_age(hg, asyncio.sleep)
    finally:
        await hg.running.stop()


async def test_the_disk_cache_keeps_an_entry_until_its_time_on_its_clock(tmp_path: Path) -> None:
    now = [100.0]
    cache = DiskResponseCache(tmp_path, 1024 * 1024, clock=lambda: now[0])
    try:
        await cache.set("k", b"answer", ttl_s=1)
        now[0] = 100.999
        assert await cache.get_many(["k", "other"]) == [b"answer", None]
        now[0] = 101.0
        assert await cache.get_many(["k"]) == [None]
    finally:
        await cache.close()


async def test_the_disk_cache_reads_entries_saved_without_a_time(tmp_path: Path) -> None:
    """Entries written before the cache kept its own expiry time live by diskcache's."""
    legacy = diskcache.Cache(str(tmp_path))
    legacy.set("k", b"answer", expire=60)
    legacy.close()
    cache = DiskResponseCache(tmp_path, 1024 * 1024)
    try:
        assert await cache.get_many(["k"]) == [b"answer"]
    finally:
        await cache.close()


async def test_omitted_bodies_still_cache_and_stay_out_of_the_log(cached: Heliograph) -> None:
    body = conversation()
    omit = {"Helicone-Omit-Request": "true", "Helicone-Omit-Response": "true"}
    await post(cached, body, **ON, **omit)
    _, hit, payload = await post(cached, body, **ON, **omit)
    assert hit["Helicone-Cache"] == "HIT"
    assert orjson.loads(payload)["choices"][0]["message"]["content"] == TEXT
    row = await cached.wait_for(hit["Helicone-Id"])
    assert row["request_body"] is None
    assert row["response_body"] is None


async def test_the_disk_cache_survives_a_restart(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    settings = heliograph_settings(tmp_path, analytics_dir, fake)
    body = conversation()
    first = await start_heliograph(settings)
    try:
        await post(first, body, **ON)
    finally:
        await first.running.stop()
    second = await start_heliograph(settings)
    try:
        second.api_key = first.api_key  # same data dir, same organization and key
        _, headers, _ = await post(second, body, **ON)
        assert headers["Helicone-Cache"] == "HIT"
    finally:
        await second.running.stop()


async def test_omitted_stream_is_cached_logged_with_usage_and_without_bodies(
    cached: Heliograph,
) -> None:
    omit = {"Helicone-Omit-Request": "true", "Helicone-Omit-Response": "true"}
    async with openai.AsyncOpenAI(
        api_key="sk-provider",
        base_url=f"{cached.gateway}/openai/v1",
        default_headers={**cached.gateway_auth(), **ON, **omit},
        max_retries=0,
    ) as client:
        body = conversation()
        ids = []
        for _ in range(2):
            stream = await client.chat.completions.create(
                model=body["model"], messages=body["messages"], stream=True
            )
            assert "".join([c.choices[0].delta.content or "" async for c in stream]) == TEXT
            ids.append(stream.response.headers["helicone-id"])
    original, hit = [await cached.wait_for(request_id) for request_id in ids]
    assert original["request_body"] is None
    assert original["response_body"] is None
    assert original["completion_tokens"] == 7
    assert hit["cache_reference_id"] == original["request_id"]
    assert hit["response_body"] is None
