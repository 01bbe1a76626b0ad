"""Reads do not wait on each other: while one organization's console query runs for seconds,
another organization's request page and the writer's inserts go through at once. Each test
proves it by order, not by the clock: the quick call completes while the slow query is still
running (the engine lists it), and the slow one is stopped by its time limit only later."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid

import orjson
import pytest

from heliograph.analytics.chdb_executor import ChdbExecutor
from heliograph.analytics.console import ConsoleLimits
from heliograph.analytics.executor import StoreUnavailable
from heliograph.analytics.store import AnalyticsStore
from heliograph.domain.queries import RequestQuery

# Minutes of work on one core, whatever the data: stopped by the time limit.
SLOW = (
    "SELECT sum(cityHash64(a, b)) AS h FROM (SELECT arrayJoin(range(100000)) AS a) AS x "
    "CROSS JOIN (SELECT arrayJoin(range(100000)) AS b) AS y"
)
LIMITS = ConsoleLimits(seconds=3)
RUNNING_SLOW = (
    "SELECT count() AS n FROM system.processes "
    "WHERE query LIKE '%cityHash64(a, b)%' AND query NOT LIKE '%system.processes%'"
)


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
    slow = asyncio.create_task(store.console.rows(heavy, SLOW, LIMITS))
    await _until_running(store, slow)

    page = await store.requests.search(reader, RequestQuery(limit=100))
    await asyncio.to_thread(store.insert_requests_blocking, request_row(reader), uuid.uuid4().hex)

    # Both finished while the console query still ran: neither waited for it.
    assert not slow.done(), "the console query should still be running"
    assert len(page) == 1
    with pytest.raises(StoreUnavailable, match=r"TIMEOUT_EXCEEDED"):
        await slow


async def _until_running(store: AnalyticsStore, slow: asyncio.Task[object]) -> None:
    """Until the engine lists the slow query as running (each look is a read of its own)."""
    scope = store.engine.scope(str(uuid.uuid4()))
    while not (await store.engine.read(scope, RUNNING_SLOW, {}))[0]["n"]:
        assert not slow.done(), "the console query ended before it was seen running"
        await asyncio.sleep(0.01)


def test_the_embedded_executor_runs_calls_in_parallel(chdb_executor: ChdbExecutor) -> None:
    done = threading.Event()

    def slow() -> None:
        with contextlib.suppress(StoreUnavailable):  # stopped by its time limit, as intended
            chdb_executor.query(SLOW, {}, {"max_execution_time": 1, "max_threads": 1})
        done.set()

    thread = threading.Thread(target=slow)
    thread.start()
    # Each look is a call of its own: with calls run one at a time, it would be answered only
    # once the slow query had ended, and the assertions below would fail.
    while not chdb_executor.query(RUNNING_SLOW, {})[0]["n"]:
        assert not done.wait(0.01), "the slow query ended before it was seen running"
    assert chdb_executor.query("SELECT 1 AS one", {}) == [{"one": 1}]
    assert not done.is_set(), "the quick call should finish while the slow one still runs"
    thread.join()
