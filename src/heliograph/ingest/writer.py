"""The batch writer: records queue up in memory and are written in batches (every `flush_rows`
rows or `flush_interval_ms`), and spooled to disk whenever the store cannot take them.

`put` never blocks and never fails: when the queue is full the record goes straight to the
spool. On shutdown the queue is drained, so a clean stop loses nothing. Under load the rows of
one batch are built while the previous batch is being inserted, on a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson

from heliograph.domain.record import RequestRecord
from heliograph.ingest.spool import Spool
from heliograph.telemetry import Telemetry

log = logging.getLogger("heliograph.ingest")

Insert = Callable[[bytes, str], None]
BuildRow = Callable[[RequestRecord], dict[str, Any]]
MAX_REPLAY_BACKOFF_S = 5.0


def batch_token(rows: list[dict[str, Any]]) -> str:
    """A deduplication token that is the same every time the same batch is written."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(str(row["request_id"]).encode())
    return digest.hexdigest()[:40]


def encode_rows(rows: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(row) for row in rows)


class LogWriter:
    def __init__(
        self,
        insert: Insert,
        build_row: BuildRow,
        spool: Spool,
        telemetry: Telemetry,
        *,
        flush_rows: int,
        flush_interval_ms: int,
        queue_max: int,
    ) -> None:
        self._insert = insert
        self._build_row = build_row
        self._spool = spool
        self._telemetry = telemetry
        self._flush_rows = flush_rows
        self._flush_interval_s = flush_interval_ms / 1000
        self._queue: asyncio.Queue[RequestRecord] = asyncio.Queue(maxsize=queue_max)
        self._tasks: list[asyncio.Task[None]] = []
        self._replay_lock = threading.Lock()
        self._batch_ready = asyncio.Event()
        self._writing: asyncio.Future[None] | None = None
        # One inserter thread keeps batches in order; building the next batch (Python, holding
        # the GIL) overlaps the engine's insert of this one (native code, mostly not).
        self._inserter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-insert")
        self._inserting: Future[None] | None = None
        self.store_healthy = True

    def put(self, record: RequestRecord) -> None:
        """Hand a record over; never waits. Overflow goes to the spool rather than being lost."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._spool_rows([self._safe_build(record)])
        if self._queue.qsize() >= self._flush_rows:
            self._batch_ready.set()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="ingest-writer"),
            asyncio.create_task(self._replay_loop(), name="ingest-replay"),
        ]

    async def stop(self) -> None:
        """Finish the batch being written, write everything still queued (or spool it)."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._writing is not None:
            await self._writing  # a cancelled await does not stop the thread; wait for it
        await self._flush_queue()
        await asyncio.to_thread(self._replay_once)
        self._inserter.shutdown(wait=True)

    async def _write_loop(self) -> None:
        while True:
            # Waiting on the event holds no records, so cancelling here can lose nothing.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._batch_ready.wait(), self._flush_interval_s)
            self._batch_ready.clear()
            await self._flush_queue()

    async def _flush_queue(self) -> None:
        """Write every queued record; returns once the last batch is stored (or spooled)."""
        while not self._queue.empty():
            batch = [
                self._queue.get_nowait() for _ in range(min(self._flush_rows, self._queue.qsize()))
            ]
            self._telemetry.queue_depth.set(self._queue.qsize())
            self._writing = asyncio.ensure_future(asyncio.to_thread(self._write_batch, batch))
            await asyncio.shield(self._writing)
            self._writing = None
        await asyncio.to_thread(self._wait_for_insert)

    def _write_batch(self, batch: list[RequestRecord]) -> None:
        """Build and encode the batch, then hand it to the inserter once the batch before it is
        in; the batch is never held only by this thread when it returns."""
        rows = [self._safe_build(record) for record in batch]
        data, token = encode_rows(rows), batch_token(rows)
        self._wait_for_insert()
        self._inserting = self._inserter.submit(self._store, data, token, len(rows))

    def _wait_for_insert(self) -> None:
        if self._inserting is not None:
            self._inserting.result()  # `_store` handles its own failures; this never raises

    def _store(self, data: bytes, token: str, count: int) -> None:
        if not self.store_healthy:
            self._spool.write(token, data)  # keep order: older spooled batches go first
            self._telemetry.spool_files.set(self._spool.size())
            return
        started = time.perf_counter()
        try:
            self._insert(data, token)
        except Exception as error:
            log.warning("store write failed, spooling %d rows: %s", count, error)
            self._telemetry.flush_failures.inc()
            self.store_healthy = False
            self._spool.write(token, data)
            self._telemetry.spool_files.set(self._spool.size())
            return
        self._telemetry.flush_latency.observe(time.perf_counter() - started)
        self._telemetry.rows_written.inc(count)

    def _safe_build(self, record: RequestRecord) -> dict[str, Any]:
        try:
            return self._build_row(record)
        except Exception:  # a body we cannot parse must not cost the row
            log.exception("could not parse request %s; storing it unparsed", record.request_id)
            record.response_body, record.response_encoding = b"", ""
            record.error = record.error or "response could not be parsed"
            return self._build_row(record)

    def _spool_rows(self, rows: list[dict[str, Any]]) -> None:
        self._spool.write(batch_token(rows), encode_rows(rows))
        self._telemetry.spool_files.set(self._spool.size())

    async def _replay_loop(self) -> None:
        backoff = 0.2
        while True:
            await asyncio.sleep(backoff)
            replayed = await asyncio.to_thread(self._replay_once)
            backoff = 0.2 if replayed else min(backoff * 2, MAX_REPLAY_BACKOFF_S)

    def _replay_once(self) -> bool:
        """Write spooled batches, oldest first; True when the spool is empty afterwards."""
        with self._replay_lock:  # the loop's thread may still run while `stop` replays
            return self._replay_pending()

    def _replay_pending(self) -> bool:
        for path in self._spool.pending():
            data = path.read_bytes()
            try:
                self._insert(data, Spool.token(path))
            except Exception as error:
                pending = self._spool.size()
                log.info("store still unavailable (%s); %d batches spooled", error, pending)
                self.store_healthy = False
                return False
            path.unlink()
            self._telemetry.rows_written.inc(data.count(b"\n") + 1)
        self.store_healthy = True
        self._telemetry.spool_files.set(0)
        return True

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()
