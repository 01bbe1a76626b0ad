"""The batch writer: records queue up in memory and are written in batches (every `flush_rows`
rows or `flush_interval_ms`), and spooled to disk whenever the store cannot take them.

`put` never blocks and never fails: when the queue is full the record goes straight to the
spool. On shutdown the queue is drained, so a clean stop loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
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
        self._stopping = asyncio.Event()
        self.store_healthy = True

    def put(self, record: RequestRecord) -> None:
        """Hand a record over; never waits. Overflow goes to the spool rather than being lost."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._spool_rows([self._safe_build(record)])
        self._telemetry.queue_depth.set(self._queue.qsize())

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="ingest-writer"),
            asyncio.create_task(self._replay_loop(), name="ingest-replay"),
        ]

    async def stop(self) -> None:
        """Write everything still queued (or spool it), then stop the background tasks."""
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self._queue.empty():
            await self._flush(self._take_batch())
        await asyncio.to_thread(self._replay_once)

    async def _write_loop(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            deadline = time.monotonic() + self._flush_interval_s
            while len(batch) < self._flush_rows:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            batch.extend(self._take_batch(self._flush_rows - len(batch)))
            await self._flush(batch)

    def _take_batch(self, limit: int | None = None) -> list[RequestRecord]:
        batch: list[RequestRecord] = []
        while not self._queue.empty() and (limit is None or len(batch) < limit):
            batch.append(self._queue.get_nowait())
            if limit is None and len(batch) >= self._flush_rows:
                break
        return batch

    async def _flush(self, batch: list[RequestRecord]) -> None:
        if batch:
            await asyncio.to_thread(self._write_batch, batch)
        self._telemetry.queue_depth.set(self._queue.qsize())

    def _write_batch(self, batch: list[RequestRecord]) -> None:
        rows = [self._safe_build(record) for record in batch]
        if not self.store_healthy:
            self._spool_rows(rows)  # keep order: older spooled batches go first
            return
        started = time.perf_counter()
        data, token = encode_rows(rows), batch_token(rows)
        try:
            self._insert(data, token)
        except Exception as error:
            log.warning("store write failed, spooling %d rows: %s", len(rows), error)
            self._telemetry.flush_failures.inc()
            self.store_healthy = False
            self._spool.write(token, data)
            self._telemetry.spool_files.set(self._spool.size())
            return
        self._telemetry.flush_latency.observe(time.perf_counter() - started)
        self._telemetry.rows_written.inc(len(rows))

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
        for path in self._spool.pending():
            try:
                self._insert(path.read_bytes(), path.stem)
            except FileNotFoundError:
                continue
            except Exception as error:
                log.info(
                    "store still unavailable (%s); %d batches spooled", error, self._spool.size()
                )
                self.store_healthy = False
                return False
            rows = path.read_bytes().count(b"\n") + 1
            path.unlink(missing_ok=True)
            self._telemetry.rows_written.inc(rows)
        self.store_healthy = True
        self._telemetry.spool_files.set(0)
        return True

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()
