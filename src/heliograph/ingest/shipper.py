"""`LogShipper`: the record sink of a gateway running in its own process. Records are batched and
posted to the ingest endpoint of the API process. A batch is kept until the API acknowledges it
(202, once it is durable there); one that cannot be delivered is spooled to disk intact and
re-sent intact later, so the API stores it once. A record that cannot be encoded is sent cleaned
or, failing that, quarantined: nothing in one record stops the others, and no error stops the loop.

The event loop is the gateway's hot path, so encoding runs in small slices between requests and
every file operation runs on a thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import aiohttp

from heliograph.domain.record import RequestRecord
from heliograph.ingest.quarantine import Quarantine, portable_bytes
from heliograph.ingest.spool import Spool
from heliograph.ingest.wire import cleaned, encode_record, flat

log = logging.getLogger("heliograph.shipper")
MAX_BACKOFF_S = 5.0
# At shutdown, how long the last batches may take to be acknowledged before they are spooled:
# well within the time `serve` gives a gateway process to stop.
STOP_DELIVERY_S = 10.0
# The loop yields to requests after this much encoding, ~0.1 ms of work (about 12 us a record);
# encoding a whole batch at once held requests up for 0.6 ms at 300 req/s and 14 ms at 5,000.
SLICE_RECORDS = 8
SLICE_BYTES = 32 * 1024
# Statuses that say the batch itself is refused: sending it again would be refused again.
REFUSED_FOR_GOOD = frozenset({400, 413, 422})


@dataclass(frozen=True, slots=True)
class Batch:
    """Encoded records, sent and spooled as one unchanged piece; the token names its spool file."""

    token: str
    data: bytes


class LogShipper:
    def __init__(
        self,
        url: str,
        token: str,
        spool: Spool,
        *,
        flush_rows: int,
        flush_interval_ms: int,
        quarantine: Quarantine,
        stall_after_s: float = 30.0,
    ) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        self._spool = spool
        self._quarantine = quarantine
        self._flush_rows = flush_rows
        self._interval_s = flush_interval_ms / 1000
        self._stall_after_s = stall_after_s
        self._pending: list[RequestRecord] = []
        self._in_flight: Batch | None = None
        self._spooled = 0
        self._moved_at = time.monotonic()
        self._ready = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    def put(self, record: RequestRecord) -> None:
        self._pending.append(record)
        if len(self._pending) >= self._flush_rows:
            self._ready.set()

    async def start(self) -> None:
        self._spooled = len(await asyncio.to_thread(self._spool.pending))
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        self._task = asyncio.create_task(self._loop(), name="log-shipper")

    async def stop(self) -> None:
        """Ship what is pending (or spool it) and try the spool once more, then close."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await asyncio.wait_for(self._round(), STOP_DELIVERY_S)
        except TimeoutError:
            log.warning("ingest did not answer within %ss; spooling the rest", STOP_DELIVERY_S)
        except Exception:
            log.exception("could not ship the last records; spooling the rest")
        await self._spool_the_rest()
        if self._session is not None:
            await self._session.close()

    async def _spool_the_rest(self) -> None:
        """At shutdown, whatever was not acknowledged goes to the spool for the next run."""
        if self._in_flight is not None:
            await asyncio.to_thread(self._spool.write, self._in_flight.token, self._in_flight.data)
            self._in_flight = None
        if self._pending:
            records, self._pending = self._pending, []
            data = await self._encode(records)
            if data:
                await asyncio.to_thread(self._spool.write, records[0].request_id, data)

    def stalled(self) -> str | None:
        """Why the shipper is stuck, or None: records or spooled batches are waiting and none has
        been delivered for `stall_after_s`, or the loop is gone. For the gateway's `/healthz`."""
        if self._task is not None and self._task.done():
            return "the log shipper stopped"
        waiting = len(self._pending) + (self._in_flight is not None) + self._spooled
        idle_s = time.monotonic() - self._moved_at
        if waiting and idle_s > self._stall_after_s:
            return f"{waiting} records or batches waiting, none delivered for {idle_s:.0f}s"
        return None

    async def _loop(self) -> None:
        backoff = self._interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), backoff)
            self._ready.clear()
            try:
                delivered = await self._round()
            except Exception:
                # Whatever went wrong, records keep arriving: log it and carry on.
                log.exception("log shipper round failed; retrying")
                delivered = False
            backoff = self._interval_s if delivered else min(backoff * 2, MAX_BACKOFF_S)

    async def _round(self) -> bool:
        """Deliver (or spool) the batch left unacknowledged, what is pending, then the spool."""
        if self._in_flight is not None and not await self._deliver_or_spool(self._in_flight):
            return False
        return await self._ship_pending() and await self._replay()

    async def _ship_pending(self) -> bool:
        if not self._pending:
            if not self._spooled:
                self._moved_at = time.monotonic()  # nothing waits, so nothing is stuck
            return True
        records, self._pending = self._pending, []
        try:
            data = await self._encode(records)
        except asyncio.CancelledError:
            self._pending[:0] = records  # stopped mid-encoding: back in line for `stop`
            raise
        if not data:
            return True
        return await self._deliver_or_spool(Batch(records[0].request_id, data))

    async def _deliver_or_spool(self, batch: Batch) -> bool:
        # Held here until acknowledged or on disk: `stop` re-sends a batch cancelled mid-post.
        self._in_flight = batch
        delivered = await self._send(batch)
        if not delivered:
            await asyncio.to_thread(self._spool.write, batch.token, batch.data)
            self._spooled += 1
        self._in_flight = None
        return delivered

    async def _replay(self) -> bool:
        if not self._spooled:
            return True
        paths = await asyncio.to_thread(self._spool.pending)
        self._spooled = len(paths)
        for path in paths:
            data = await asyncio.to_thread(path.read_bytes)
            if not await self._send(Batch(Spool.token(path), data)):
                return False
            await asyncio.to_thread(path.unlink)
            self._spooled -= 1
        return True

    async def _send(self, batch: Batch) -> bool:
        """True once the batch is off our hands: acknowledged, or refused for good (quarantined)."""
        status = await self._post(batch.data)
        if status == 202:
            self._moved_at = time.monotonic()
            return True
        if status in REFUSED_FOR_GOOD:
            await self._set_aside("batch", f"ingest refused the batch with {status}", batch.data)
            self._moved_at = time.monotonic()
            return True
        return False

    async def _post(self, data: bytes) -> int | None:
        assert self._session is not None
        try:
            async with self._session.post(self._url, data=data, headers=self._headers) as response:
                if response.status != 202:
                    text = (await response.text(errors="replace"))[:500]
                    log.warning("ingest answered a batch with %s: %s", response.status, text)
                return response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            log.warning("ingest unreachable (%s); batch kept for later", error or type(error))
        return None

    async def _encode(self, records: list[RequestRecord]) -> bytes:
        """JSON lines for `records`, yielding to requests between slices; records that cannot be
        encoded even cleaned are quarantined and left out."""
        lines: list[bytes] = []
        since_yield = size_since_yield = 0
        for record in records:
            line = self._encode_one(record)
            if line is None:
                await self._set_aside(
                    "record", "cannot be encoded as JSON", portable_bytes(flat(record))
                )
                continue
            lines.append(line)
            since_yield += 1
            size_since_yield += len(line)
            if since_yield >= SLICE_RECORDS or size_since_yield >= SLICE_BYTES:
                await asyncio.sleep(0)
                since_yield = size_since_yield = 0
        return b"\n".join(lines)

    @staticmethod
    def _encode_one(record: RequestRecord) -> bytes | None:
        try:
            return encode_record(record)
        except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
            pass
        try:
            return encode_record(cleaned(record))
        except (TypeError, ValueError):
            return None

    async def _set_aside(self, kind: str, reason: str, data: bytes) -> None:
        await asyncio.to_thread(self._quarantine.add, f"gateway {kind}", reason, data)
