"""Token buckets kept in this process. Operations are synchronous dict updates on the event loop,
so each is atomic without a lock."""

from __future__ import annotations

import time
from collections.abc import Callable

from heliograph.domain.ratelimit import BucketState, refilled

MAX_BUCKETS = 100_000


class MemoryBuckets:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take(
        self, key: str, capacity: float, refill_per_s: float, amount: float
    ) -> BucketState:
        """Deduct `amount` if the bucket holds that much; never goes below zero."""
        tokens = self._current(key, capacity, refill_per_s)
        allowed = tokens >= amount
        if allowed:
            tokens -= amount
        self._store(key, tokens)
        return BucketState(allowed, tokens, capacity, refill_per_s)

    async def check(self, key: str, capacity: float, refill_per_s: float) -> BucketState:
        """Allowed while the balance is positive (cents policies check before, charge after)."""
        tokens = self._current(key, capacity, refill_per_s)
        self._store(key, tokens)
        return BucketState(tokens > 0, tokens, capacity, refill_per_s)

    async def charge(
        self, key: str, capacity: float, refill_per_s: float, amount: float
    ) -> BucketState:
        """Deduct `amount` unconditionally; the balance may go negative (one request overshoots)."""
        tokens = self._current(key, capacity, refill_per_s) - amount
        self._store(key, tokens)
        return BucketState(tokens > 0, tokens, capacity, refill_per_s)

    def _current(self, key: str, capacity: float, refill_per_s: float) -> float:
        now = self._clock()
        tokens, updated = self._buckets.get(key, (capacity, now))
        return refilled(tokens, now - updated, capacity, refill_per_s)

    def _store(self, key: str, tokens: float) -> None:
        if len(self._buckets) >= MAX_BUCKETS and key not in self._buckets:
            self._buckets.clear()  # every bucket refills to full anyway; forgetting is fail-open
        self._buckets[key] = (tokens, self._clock())

    async def close(self) -> None:
        self._buckets.clear()
