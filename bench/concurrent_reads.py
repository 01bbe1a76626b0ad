"""Concurrent-read benchmark: organization A's request page (the store's `requests.search`,
newest first, 100 rows) while organization B runs its heaviest allowed console query in a loop,
against idle; and the same with every call serialized on one connection, as the store was before.
Prints the p50s and ratios and writes `bench/results/concurrent_reads.json`. Bounded: about a
minute at the default size.

    python bench/concurrent_reads.py [--rows 100000] [--pages 40]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from heliograph.analytics.chdb_executor import open_chdb, release_chdb
from heliograph.analytics.console import ConsoleLimits
from heliograph.analytics.engine import AnalyticsEngine
from heliograph.analytics.executor import Executor, StoreUnavailable
from heliograph.analytics.store import AnalyticsStore
from heliograph.domain.queries import RequestQuery
from heliograph.domain.sql_console import checked_select
from queries import load_sql  # the realistic bulk loader of bench/queries.py

HERE = Path(__file__).resolve().parent
# A full scan of every body with a substring search, grouped and ranked: the heaviest query the
# console's limits let through on this data.
HEAVY = (
    "SELECT user_id, count() AS n, sum(cost) AS spent, uniqExact(session_id) AS sessions, "
    "quantiles(0.5, 0.99)(latency) AS q FROM request_response "
    "WHERE request_body ILIKE '%budget%forecast%' OR response_body ILIKE '%garçon%' "
    "GROUP BY user_id ORDER BY spent DESC"
)
PHASE_BUDGET_S = 25.0


class Serialized:
    """The store as it was: every call, read or write, waits for one lock."""

    def __init__(self, inner: Executor) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    def query(
        self, sql: str, params: Mapping[str, Any], settings: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            return self._inner.query(sql, params, settings)

    def query_bytes(
        self,
        sql: str,
        params: Mapping[str, Any],
        fmt: str,
        settings: Mapping[str, Any] | None = None,
    ) -> bytes:
        with self._lock:
            return self._inner.query_bytes(sql, params, fmt, settings)

    def command(self, sql: str) -> None:
        with self._lock:
            self._inner.command(sql)

    def insert(self, table: str, json_rows: bytes, dedup_token: str) -> None:
        with self._lock:
            self._inner.insert(table, json_rows, dedup_token)

    def close(self) -> None:
        pass


async def pages(store: AnalyticsStore, org: str, count: int) -> list[float]:
    """Milliseconds per request page, at most `count` of them or `PHASE_BUDGET_S` in all."""
    timings: list[float] = []
    deadline = time.monotonic() + PHASE_BUDGET_S
    while len(timings) < count and time.monotonic() < deadline:
        started = time.perf_counter()
        rows = await store.requests.search(org, RequestQuery(limit=100))
        timings.append((time.perf_counter() - started) * 1000)
        assert len(rows) == 100
        await asyncio.sleep(0.02)
    return timings


async def heavy_loop(store: AnalyticsStore, org: str, stop: asyncio.Event) -> list[str]:
    """B's console query, one after another (the console runs one per organization)."""
    outcomes = []
    sql = checked_select(HEAVY)
    while not stop.is_set():
        started = time.perf_counter()
        try:
            rows = await store.console.rows(org, sql, ConsoleLimits())
            outcomes.append(f"{len(rows)} rows in {time.perf_counter() - started:.2f} s")
        except StoreUnavailable as error:
            outcomes.append(f"stopped after {time.perf_counter() - started:.2f} s: {error!s:.60}")
    return outcomes


async def under_load(store: AnalyticsStore, reader: str, heavy: str, count: int) -> dict[str, Any]:
    stop = asyncio.Event()
    loop = asyncio.create_task(heavy_loop(store, heavy, stop))
    await asyncio.sleep(0.5)  # the heavy query is running
    timings = await pages(store, reader, count)
    stop.set()
    outcomes = await loop
    return {"timings": timings, "heavy_queries": outcomes[:3]}


def summary(idle: list[float], loaded: list[float]) -> dict[str, Any]:
    idle_p50, loaded_p50 = statistics.median(idle), statistics.median(loaded)
    return {
        "idle_p50_ms": round(idle_p50, 2),
        "under_load_p50_ms": round(loaded_p50, 2),
        "under_load_p95_ms": round(sorted(loaded)[int(len(loaded) * 0.95) - 1], 2),
        "ratio": round(loaded_p50 / idle_p50, 2),
        "pages": len(loaded),
    }


async def main(rows: int, count: int) -> dict[str, Any]:
    reader, heavy = str(uuid.uuid4()), str(uuid.uuid4())
    with tempfile.TemporaryDirectory() as folder:
        executor = open_chdb(Path(folder))
        store = AnalyticsStore(
            AnalyticsEngine(open_chdb(Path(folder)))
        )  # its close releases this reference
        await store.migrate()
        started = time.perf_counter()
        for org in (reader, heavy):
            executor.command(load_sql(rows, 30).replace("{org:UUID}", f"toUUID('{org}')"))
        load_s = time.perf_counter() - started
        print(f"loaded {2 * rows:,} rows in {load_s:.1f} s")

        idle = await pages(store, reader, count)
        loaded = await under_load(store, reader, heavy, count)
        now = summary(idle, loaded["timings"])
        print("concurrent connections:", now, loaded["heavy_queries"][:1])
        await store.close()

        before_store = AnalyticsStore(
            AnalyticsEngine(Serialized(executor), readers=1, console_slots=1)
        )
        before_idle = await pages(before_store, reader, count)
        before_loaded = await under_load(before_store, reader, heavy, max(count // 4, 5))
        before = summary(before_idle, before_loaded["timings"])
        print("one serialized connection (before):", before)
        await before_store.close()
        release_chdb(executor)
    return {
        "rows_per_organization": rows,
        "heavy_query": HEAVY,
        "console_limits": dataclasses.asdict(ConsoleLimits()),
        "concurrent": now,
        "serialized_before": before,
        "heavy_query_outcomes": loaded["heavy_queries"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=40)
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments.rows, arguments.pages))
    print(json.dumps({k: result[k] for k in ("concurrent", "serialized_before")}, indent=2))
    (HERE / "results" / "concurrent_reads.json").write_text(json.dumps(result, indent=2) + "\n")
