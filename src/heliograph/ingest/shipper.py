"""`LogShipper`: the record sink of a gateway running in its own process. Records are batched and
posted to the ingest endpoint of the API process; a batch that cannot be delivered is spooled to
disk and re-sent later, so a restarting or unreachable API loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp

from heliograph.domain.record import RequestRecord
from heliograph.ingest.spool import Spool
from heliograph.ingest.wire import encode_records

log = logging.getLogger("heliograph.shipper")
MAX_BACKOFF_S = 5.0


class LogShipper:
    def __init__(
        self, url: str, token: str, spool: Spool, *, flush_rows: int, flush_interval_ms: int
    ) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        self._spool = spool
        self._flush_rows = flush_rows
        self._interval_s = flush_interval_ms / 1000
        self._pending: list[RequestRecord] = []
        self._ready = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    def put(self, record: RequestRecord) -> None:
        self._pending.append(record)
        if len(self._pending) >= self._flush_rows:
            self._ready.set()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        self._task = asyncio.create_task(self._loop(), name="log-shipper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._ship_pending()
        await self._replay()
        if self._session is not None:
            await self._session.close()

    async def _loop(self) -> None:
        backoff = self._interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), backoff)
            self._ready.clear()
            delivered = await self._ship_pending() and await self._replay()
            backoff = self._interval_s if delivered else min(backoff * 2, MAX_BACKOFF_S)

    async def _ship_pending(self) -> bool:
        if not self._pending:
            return True
        batch, self._pending = self._pending, []
        data = encode_records(batch)
        if await self._post(data):
            return True
        self._spool.write(batch[0].request_id, data)
        return False

    async def _replay(self) -> bool:
        for path in self._spool.pending():
            if not await self._post(path.read_bytes()):
                return False
            path.unlink()
        return True

    async def _post(self, data: bytes) -> bool:
        assert self._session is not None
        try:
            async with self._session.post(self._url, data=data, headers=self._headers) as response:
                if response.status == 202:
                    return True
                log.warning("ingest refused a batch: %s %s", response.status, await response.text())
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("ingest unreachable (%s); batch spooled", error)
        return False
