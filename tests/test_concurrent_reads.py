"""Reads do not wait on each other: while one organization's console query runs for seconds,
another organization's request page and the writer's inserts go through at once."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from heliograph.analytics.chdb_executor import ChdbExecutor
from heliograph.analytics.executor import StoreUnavailable
from heliograph.analytics.store import AnalyticsStore, ConsoleLimits, RequestQuery, open_store

# Minutes of work on one core, whatever the data: stopped by the time limit.
SLOW = (
    "SELECT sum(cityHash64(a, b)) AS h FROM (SELECT arrayJoin(range(100000)) AS a) AS x "
    "CROSS JOIN (SELECT arrayJoin(range(100000)) AS b) AS y"
)
LIMITS = ConsoleLimits(seconds=3)


@pytest.fixture
async def store(analytics_dir: Path) -> AsyncIterator[AnalyticsStore]:
    store = open_store("", analytics_dir)
    await store.migrate()
    yield store
    await store.close()


def request_row(org: str) -> bytes:
    row = {
        "request_id": str(uuid.uuid4()),
        "organization_id": org,
        "request_created_at": time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime()),
        "provider": "OPENAI",
        "model": "m",
        "status": 200,
        "latency": 5,
        "is_stream": False,
        "pricing_status": "priced",
    }
    return orjson.dumps(row)


async def test_a_page_and_an_insert_do_not_wait_for_a_slow_console_query(
    store: AnalyticsStore,
) -> None:
    reader, heavy = str(uuid.uuid4()), str(uuid.uuid4())
    await store.insert_requests(request_row(reader), uuid.uuid4().hex)
    slow = asyncio.create_task(store.console(heavy, SLOW, LIMITS))
    await asyncio.sleep(0.3)
    assert not slow.done()

    started = time.perf_counter()
    page = await store.list_requests(reader, RequestQuery(limit=100))
    page_s = time.perf_counter() - started
    started = time.perf_counter()
    await asyncio.to_thread(store.insert_requests_blocking, request_row(reader), uuid.uuid4().hex)
    insert_s = time.perf_counter() - started

    assert not slow.done(), "the console query should still be running"
    assert len(page) == 1
    assert page_s < 1.0, page_s  # tens of milliseconds when the machine is not shared
    assert insert_s < 1.0, insert_s
    with pytest.raises(StoreUnavailable, match=r"TIMEOUT_EXCEEDED"):
        await slow


def test_the_embedded_executor_runs_calls_in_parallel(chdb_executor: ChdbExecutor) -> None:
    done = threading.Event()

    def slow() -> None:
        with contextlib.suppress(StoreUnavailable):  # stopped by its time limit, as intended
            chdb_executor.query(SLOW, {}, {"max_execution_time": 1, "max_threads": 1})
        done.set()

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.2)
    started = time.perf_counter()
    assert chdb_executor.query("SELECT 1 AS one", {}) == [{"one": 1}]
    assert time.perf_counter() - started < 0.3
    assert not done.is_set()
    thread.join()
