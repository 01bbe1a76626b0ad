"""The batch writer: records queue up in memory and are written in batches (every `flush_rows`
rows or `flush_interval_ms`); batches shipped by gateway processes are written as units of their
own, and their sender is answered once they are durable (`store_now`).

`put` never blocks and never fails: when the queue is full the record goes to the spool. On
shutdown the queue is drained, so a clean stop loses nothing. Rows of one batch are built while
the previous batch is being inserted, on a thread of its own. A record that cannot be built is
quarantined; no record, row or error stops the loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from heliograph.domain.record import RequestRecord
from heliograph.ingest.inserter import Batch, BatchInserter
from heliograph.ingest.quarantine import portable_bytes
from heliograph.ingest.rows import BuiltRow
from heliograph.ingest.wire import flat

log = logging.getLogger("heliograph.ingest")

BuildRow = Callable[[RequestRecord], BuiltRow]
MAX_REPLAY_BACKOFF_S = 5.0


def batch_token(records: list[RequestRecord]) -> str:
    """A deduplication token that is the same every time the same records are written."""
    digest = hashlib.sha256()
    for record in records:
        key = f"{record.organization_id}|{record.request_id}|{record.created_at}\n"
        digest.update(key.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:40]


class LogWriter:
    def __init__(
        self,
        inserter: BatchInserter,
        build_row: BuildRow,
        *,
        flush_rows: int,
        flush_interval_ms: int,
        queue_max: int,
    ) -> None:
        self.inserter = inserter  # whose quarantine and metrics are the writer's too
        self._build_row = build_row
        self._flush_rows = flush_rows
        self._flush_interval_s = flush_interval_ms / 1000
        self._queue: asyncio.Queue[RequestRecord] = asyncio.Queue(maxsize=queue_max)
        self._queue_moved_at = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._batch_ready = asyncio.Event()
        self._writing: asyncio.Future[None] | None = None
        # One inserter thread keeps batches (and id look-ups) in order; building the next batch
        # (Python, holding the GIL) overlaps the engine's insert of this one (native code).
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-insert")
        self._inserting: Future[None] | None = None
        self._stopped = False

    def put(self, record: RequestRecord) -> None:
        """Hand a record over; never waits. Overflow goes to the spool rather than being lost."""
        if self._queue.empty():
            self._queue_moved_at = time.monotonic()  # the wait starts now, not at the last move
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._pool.submit(self._spool_records, [record])
        if self._queue.qsize() >= self._flush_rows:
            self._batch_ready.set()

    async def store_now(self, records: list[RequestRecord]) -> None:
        """Write `records` as one unit with a token of their own, so a re-sent batch is stored
        once; returns once they are inserted or spooled (fsync'd). Raises `OSError` when the
        spool cannot be written either."""
        batch = await asyncio.to_thread(self._prepare, records)
        # Shielded: a sender that hangs up must not leave half a batch behind.
        await asyncio.shield(asyncio.wrap_future(self._pool.submit(self.inserter.store, batch)))

    def stalled(self, after_s: float) -> list[str]:
        """The parts holding records that have not moved for `after_s` seconds."""
        parts = []
        if self._queue.qsize() and time.monotonic() - self._queue_moved_at > after_s:
            parts.append("writer queue")
        if self.inserter.spool_stalled(after_s):
            parts.append("spool")
        return parts

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="ingest-writer"),
            asyncio.create_task(self._replay_loop(), name="ingest-replay"),
        ]

    async def stop(self) -> None:
        """Finish the batch being written, write everything still queued (or spool it)."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._writing is not None:
            await self._writing  # a cancelled await does not stop the thread; wait for it
        await self._flush_queue()
        await asyncio.wrap_future(self._pool.submit(self.inserter.replay))
        self._pool.shutdown(wait=True)

    async def _write_loop(self) -> None:
        while True:
            # Waiting on the event holds no records, so cancelling here can lose nothing.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._batch_ready.wait(), self._flush_interval_s)
            self._batch_ready.clear()
            try:
                await self._flush_queue()
            except Exception as error:  # the loop outlives any bug; the stall check shows it
                log.error("ingest writer: %s: %s; continuing", type(error).__name__, error)

    async def idle(self) -> None:
        """Return once every record put so far is stored or spooled (tests await this rather
        than the flush interval)."""
        self._batch_ready.set()
        await self._queue.join()

    async def _flush_queue(self) -> None:
        """Write every queued record; returns once the last batch is stored (or spooled)."""
        taken = 0
        try:
            while not self._queue.empty():
                batch = [
                    self._queue.get_nowait()
                    for _ in range(min(self._flush_rows, self._queue.qsize()))
                ]
                taken += len(batch)
                self._queue_moved_at = time.monotonic()
                self.inserter.telemetry.queue_depth.set(self._queue.qsize())
                self._writing = asyncio.ensure_future(asyncio.to_thread(self._write_batch, batch))
                await asyncio.shield(self._writing)
                self._writing = None
            await asyncio.to_thread(self._wait_for_insert)
        finally:
            for _ in range(taken):
                self._queue.task_done()

    def _write_batch(self, records: list[RequestRecord]) -> None:
        """Build the batch, then hand it to the inserter once the batch before it is in; the
        batch is never held only by this thread when it returns."""
        batch = self._prepare(records)
        self._wait_for_insert()
        self._inserting = self._pool.submit(self.inserter.store, batch)

    def _wait_for_insert(self) -> None:
        if self._inserting is None:
            return
        try:
            self._inserting.result()
        except Exception as error:  # the store refused and the spool could not be written
            log.error("ingest: a batch was neither stored nor spooled: %s", error)

    def _prepare(self, records: list[RequestRecord]) -> Batch:
        rows = [self._safe_build(record) for record in records]
        chosen = [bool(record.client_request_id) for record in records]
        return Batch(rows, chosen, batch_token(records))

    def _spool_records(self, records: list[RequestRecord]) -> None:
        try:
            self.inserter.spool(self._prepare(records))
        except OSError as error:  # nobody waits on this future: say it here
            log.error("ingest: %d records could not be spooled: %s", len(records), error)

    def _safe_build(self, record: RequestRecord) -> BuiltRow | None:
        """The record's row; without its response body if that cannot be parsed; or None, with
        the record quarantined, when no row can be built at all."""
        try:
            return self._build_row(record)
        except Exception as error:  # a body we cannot parse must not cost the row
            log.warning(
                "could not parse request %r (%s); storing it unparsed", record.request_id, error
            )
        try:
            stripped = dataclasses.replace(
                record,
                response_body=b"",
                response_encoding="",
                error=record.error or "response could not be parsed",
            )
            return self._build_row(stripped)
        except Exception as error:
            self.inserter.quarantine.add(
                "record", f"could not build a row: {error}", portable_bytes(flat(record))
            )
            return None

    async def _replay_loop(self) -> None:
        backoff = 0.2
        while True:
            await asyncio.sleep(backoff)
            try:  # on the inserter thread, so replays and new batches never race on ids
                replayed = await asyncio.wrap_future(self._pool.submit(self.inserter.replay))
            except Exception as error:
                log.error("ingest replay: %s: %s; continuing", type(error).__name__, error)
                replayed = False
            backoff = 0.2 if replayed else min(backoff * 2, MAX_REPLAY_BACKOFF_S)

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()
