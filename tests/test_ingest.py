"""No log is lost: a store outage under traffic, a full queue, a restart with batches spooled,
and shutdown with records still queued. Each request is stored exactly once."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from heliograph.analytics.chdb_executor import ChdbExecutor
from heliograph.analytics.executor import StoreUnavailable

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
OUTAGE_S = float(os.environ.get("HELIOGRAPH_TEST_OUTAGE_S", "30"))


class Outage:
    """Wraps the writer's insert so the store fails while `down` is set."""

    def __init__(self, insert: Callable[[bytes, str], None]) -> None:
        self.insert = insert
        self.down = False
        self.failures = 0

    def __call__(self, rows: bytes, token: str) -> None:
        if self.down:
            self.failures += 1
            raise StoreUnavailable("store is down (test outage)")
        self.insert(rows, token)


def stored(executor: ChdbExecutor, organization_id: str) -> dict[str, int]:
    """Stored request ids of an organization (one snapshot); fails if any is stored twice."""
    rows = executor.query(
        "SELECT toString(request_id) AS id, count() AS n FROM request_response "
        "WHERE organization_id = {org:UUID} GROUP BY id",
        {"org": organization_id},
    )
    counts = {row["id"]: row["n"] for row in rows}
    assert all(n == 1 for n in counts.values()), "a request was stored more than once"
    return counts


async def send_traffic(hg: Heliograph, seconds: float, rate: float) -> list[str]:
    ids: list[str] = []
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            request_id = str(uuid.uuid4())
            headers = {**hg.gateway_auth(), "Helicone-Request-Id": request_id}
            async with session.post(
                f"{hg.gateway}/openai/v1/chat/completions", json=CHAT, headers=headers
            ) as response:
                assert response.status == 200, "traffic must keep flowing while the store is down"
                await response.read()
            ids.append(request_id)
            await asyncio.sleep(1 / rate)
    return ids


async def wait_until_stored(
    executor: ChdbExecutor, organization_id: str, ids: list[str], timeout_s: float
) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        counts = await asyncio.to_thread(stored, executor, organization_id)
        if set(ids) <= set(counts) or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_a_store_outage_under_traffic_loses_no_log(
    tmp_path: Path,
    analytics_dir: Path,
    fake: Fake,
    chdb_executor: ChdbExecutor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The default flush interval: an outage leaves one spooled batch a second to replay, as in
    # production (the suite's 50 ms would leave twenty).
    heliograph = await start_heliograph(
        heliograph_settings(tmp_path, analytics_dir, fake, flush_interval_ms=1000)
    )
    try:
        await _outage_under_traffic(heliograph, chdb_executor, monkeypatch)
    finally:
        await heliograph.running.stop()


async def _outage_under_traffic(
    heliograph: Heliograph, chdb_executor: ChdbExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = heliograph.running.services.writer
    outage = Outage(writer.inserter._storage.insert)
    monkeypatch.setattr(writer.inserter._storage, "insert", outage)

    before = await send_traffic(heliograph, seconds=1, rate=20)
    outage.down = True
    during = await send_traffic(heliograph, seconds=OUTAGE_S, rate=20)
    spooled = heliograph.running.services.telemetry.spool_files._value.get()
    outage.down = False
    after = await send_traffic(heliograph, seconds=1, rate=20)

    ids = before + during + after
    counts = await wait_until_stored(chdb_executor, heliograph.organization_id, ids, 20)
    assert outage.failures > 0
    assert spooled > 0
    assert set(counts) == set(ids)
    assert not writer.inserter.quarantine.entries(), "a store refusing all rows blames none"
    assert len(ids) >= OUTAGE_S * 10


async def test_a_full_queue_spills_to_the_spool_not_to_the_floor(
    tmp_path: Path, analytics_dir: Path, fake: Fake, chdb_executor: ChdbExecutor
) -> None:
    hg = await start_heliograph(
        heliograph_settings(tmp_path, analytics_dir, fake, queue_max=2, flush_interval_ms=2000)
    )
    try:
        requests = [send_traffic(hg, seconds=0.01, rate=1000) for _ in range(10)]
        ids = [i for batch in await asyncio.gather(*requests) for i in batch]
        counts = await wait_until_stored(chdb_executor, hg.organization_id, ids, 10)
        assert set(counts) == set(ids)
    finally:
        await hg.running.stop()


async def test_shutdown_drains_the_queue(
    tmp_path: Path, analytics_dir: Path, fake: Fake, chdb_executor: ChdbExecutor
) -> None:
    hg = await start_heliograph(
        heliograph_settings(
            tmp_path, analytics_dir, fake, flush_interval_ms=60_000, flush_rows=10**6
        )
    )
    ids = await send_traffic(hg, seconds=0.3, rate=100)
    assert stored(chdb_executor, hg.organization_id) == {}, "nothing flushed yet"
    await hg.running.stop()
    assert set(stored(chdb_executor, hg.organization_id)) == set(ids)


async def test_spooled_batches_survive_a_restart(
    tmp_path: Path,
    analytics_dir: Path,
    fake: Fake,
    chdb_executor: ChdbExecutor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = heliograph_settings(tmp_path, analytics_dir, fake)
    hg = await start_heliograph(settings)
    writer = hg.running.services.writer
    outage = Outage(writer.inserter._storage.insert)
    outage.down = True
    monkeypatch.setattr(writer.inserter._storage, "insert", outage)
    ids = await send_traffic(hg, seconds=0.5, rate=50)
    await hg.running.stop()  # the store is still down: everything ends up on disk
    spooled = list(settings.spool_dir.glob("*.jsonl"))
    assert spooled
    assert stored(chdb_executor, hg.organization_id) == {}

    restarted = await start_heliograph(settings)
    try:
        counts = await wait_until_stored(chdb_executor, hg.organization_id, ids, 10)
        assert set(counts) == set(ids)
        for _ in range(40):  # a file is removed just after its rows are in
            if not list(settings.spool_dir.glob("*.jsonl")):
                break
            await asyncio.sleep(0.05)
        assert not list(settings.spool_dir.glob("*.jsonl"))
    finally:
        await restarted.running.stop()


def test_a_replayed_batch_is_stored_once(chdb_executor: ChdbExecutor) -> None:
    from heliograph.analytics.migrate import apply_migrations

    apply_migrations(chdb_executor)
    org = str(uuid.uuid4())
    row = (
        '{"request_id":"%s","organization_id":"%s","request_created_at":"2026-01-01 00:00:00.000",'
        '"provider":"OPENAI","model":"m","status":200,"latency":1,"is_stream":false}'
    )
    batch = "\n".join(row % (uuid.uuid4(), org) for _ in range(3)).encode()
    chdb_executor.insert("request_response", batch, "token-once")
    chdb_executor.insert("request_response", batch, "token-once")
    assert sum(stored(chdb_executor, org).values()) == 3
