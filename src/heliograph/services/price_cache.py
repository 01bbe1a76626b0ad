"""`PriceCache`: organizations' price overrides, answered from memory. The ingest writer's thread
asks `for_organization` (a row is priced at what it returns) and the gateway's `cents` charges ask
`overrides`. An organization's first read waits for the app DB; after `ttl_s` the overrides in
memory still answer while a background read renews them, so a warm caller never waits. The API
process that saves an override calls `forget`, and its next read waits for the new ones. No
SQLAlchemy here: gateway processes read overrides with `appdb/lookups.py`."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from heliograph.domain.pricing import PriceOverride

log = logging.getLogger("heliograph.prices")
REFRESH_S = 2.0  # a change saved by another process applies here within about this
RENEWERS = 2  # threads reading the app DB for renewals; one renewal per organization at a time

Overrides = tuple[PriceOverride, ...]


class PriceDirectory(Protocol):
    """Where overrides are read: the app DB, through `AppDbLookups`."""

    def price_overrides(self, organization_id: str) -> Sequence[PriceOverride]: ...


@dataclass(slots=True)
class _Entry:
    overrides: Overrides
    expires: float  # time.monotonic() after which a read starts a renewal
    current: bool = True  # False once `forget` said they changed: the next read waits


class PriceCache:
    def __init__(self, directory: PriceDirectory, ttl_s: float = REFRESH_S) -> None:
        self._directory = directory
        self._ttl_s = ttl_s
        self._cache: dict[str, _Entry] = {}
        self._renewing: dict[str, Future[Overrides]] = {}
        self._forgotten: dict[str, int] = {}  # `forget` calls per organization
        # Guards the three dicts; held for dict operations only, never while the app DB reads.
        self._lock = threading.Lock()
        self._renewers = ThreadPoolExecutor(RENEWERS, thread_name_prefix="price-renewal")

    def for_organization(self, organization_id: str) -> Overrides:
        """The organization's overrides. Never raises: when the app DB does not answer, what is
        known keeps applying (none, for a new organization), since a row must be built whatever
        happens."""
        answer = self._answer(organization_id)
        return answer if isinstance(answer, tuple) else answer.result()

    async def overrides(self, organization_id: str) -> Overrides:
        """`for_organization` for the event loop: a read that must wait, waits off the loop."""
        answer = self._answer(organization_id)
        if isinstance(answer, tuple):
            return answer
        # Shielded: a cancelled caller must not cancel a read other callers share.
        return await asyncio.shield(asyncio.wrap_future(answer))

    def forget(self, organization_id: str) -> None:
        """Read the organization's overrides again on next use, and wait for them (they have
        just changed). A read already under way may predate the change: it is not kept."""
        with self._lock:
            self._forgotten[organization_id] = self._forgotten.get(organization_id, 0) + 1
            self._renewing.pop(organization_id, None)
            entry = self._cache.get(organization_id)
            if entry is not None:
                entry.current = False  # still the fallback if the app DB does not answer

    def close(self) -> None:
        """Stop the renewal threads; renewals not started are dropped."""
        self._renewers.shutdown(wait=False, cancel_futures=True)

    def idle(self) -> None:
        """Return once no renewal is under way (tests wait for the ones they started)."""
        with self._lock:
            renewing = list(self._renewing.values())
        for future in renewing:
            future.result()

    def _answer(self, organization_id: str) -> Overrides | Future[Overrides]:
        """The overrides to use now, or the read to wait for when there are none to use."""
        entry = self._cache.get(organization_id)
        if entry is not None and entry.current and entry.expires > time.monotonic():
            return entry.overrides  # the common case, without the lock
        with self._lock:
            entry = self._cache.get(organization_id)
            future = self._renewing.get(organization_id)
            if future is None and (
                entry is None or not entry.current or entry.expires <= time.monotonic()
            ):
                future = self._renewers.submit(self._read, organization_id, entry)
                self._renewing[organization_id] = future
            if entry is not None and entry.current:
                return entry.overrides  # stale, while one read renews it
        assert future is not None  # no usable entry means a read was started above
        return future

    def _read(self, organization_id: str, known: _Entry | None) -> Overrides:
        """On a renewal thread: read the overrides, keep them unless `forget` was called
        meanwhile, and end the organization's renewal."""
        forgotten = self._forgotten.get(organization_id, 0)
        try:
            overrides = tuple(self._directory.price_overrides(organization_id))
        except Exception as error:
            # What is known keeps applying; the next read after `ttl_s` tries again.
            log.warning("cannot read the price overrides of %s: %s", organization_id, error)
            overrides = known.overrides if known is not None else ()
        with self._lock:
            if self._forgotten.get(organization_id, 0) == forgotten:
                self._cache[organization_id] = _Entry(overrides, time.monotonic() + self._ttl_s)
                self._renewing.pop(organization_id, None)
        return overrides
