"""`PriceCache`: organizations' price overrides, answered from memory. The ingest writer's thread
asks `for_organization` (a row is priced at what it returns) and the gateway's `cents` charges ask
`overrides`; an answer older than `ttl_s` is read again from the app DB, and the API process that
saves an override drops the organization's answer at once (`forget`). No SQLAlchemy here: gateway
processes read overrides with `appdb/lookups.py`."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from heliograph.domain.pricing import PriceOverride

log = logging.getLogger("heliograph.prices")
REFRESH_S = 2.0  # a change saved by another process applies here within this


class PriceDirectory(Protocol):
    """Where overrides are read: the app DB, through `AppDbLookups`."""

    def price_overrides(self, organization_id: str) -> Sequence[PriceOverride]: ...


class PriceCache:
    def __init__(self, directory: PriceDirectory, ttl_s: float = REFRESH_S) -> None:
        self._directory = directory
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[tuple[PriceOverride, ...], float]] = {}
        self._lock = threading.Lock()  # one reader of the app DB at a time
        self._changes = 0  # `forget` calls so far: a read that overlapped one is not kept

    def for_organization(self, organization_id: str) -> tuple[PriceOverride, ...]:
        """The organization's overrides, read again when older than `ttl_s`. Never raises: when
        the app DB does not answer, what is known keeps applying (none, for a new organization),
        since a row must be built whatever happens."""
        cached = self._cache.get(organization_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        with self._lock:
            cached = self._cache.get(organization_id)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]  # another thread read them meanwhile
            return self._read(organization_id, cached)

    def _read(
        self, organization_id: str, stale: tuple[tuple[PriceOverride, ...], float] | None
    ) -> tuple[PriceOverride, ...]:
        changes = self._changes
        try:
            overrides = tuple(self._directory.price_overrides(organization_id))
        except Exception as error:
            log.warning("cannot read the price overrides of %s: %s", organization_id, error)
            overrides = stale[0] if stale is not None else ()
        if changes == self._changes:
            self._cache[organization_id] = (overrides, time.monotonic() + self._ttl_s)
        return overrides

    async def overrides(self, organization_id: str) -> tuple[PriceOverride, ...]:
        """`for_organization` for the event loop: the app DB is read on a worker thread."""
        cached = self._cache.get(organization_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        return await asyncio.to_thread(self.for_organization, organization_id)

    def forget(self, organization_id: str) -> None:
        """Read the organization's overrides again on next use (they have just changed)."""
        self._changes += 1
        self._cache.pop(organization_id, None)
