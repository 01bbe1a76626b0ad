"""Token buckets kept in this process. Operations are synchronous dict updates on the event loop,
so each is atomic without a lock. At `MAX_BUCKETS`, buckets that have refilled are forgotten
first (they are as good as new), then those closest to full: a flood of new keys never resets
the drained buckets an attack is held back by."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from heliograph.domain.ratelimit import BucketState, refilled

MAX_BUCKETS = 100_000


class MemoryBuckets:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float, float]] = {}  # tokens, updated, full at

    async def take(
        self, key: str, capacity: float, refill_per_s: float, amount: float
    ) -> BucketState:
        """Deduct `amount` if the bucket holds that much; never goes below zero."""
        tokens = self._current(key, capacity, refill_per_s)
        allowed = tokens >= amount
        if allowed:
            tokens -= amount
        self._store(key, tokens, capacity, refill_per_s)
        return BucketState(allowed, tokens, capacity, refill_per_s)

    async def check(self, key: str, capacity: float, refill_per_s: float) -> BucketState:
        """Allowed while the balance is positive (cents policies check before, charge after)."""
        tokens = self._current(key, capacity, refill_per_s)
        self._store(key, tokens, capacity, refill_per_s)
        return BucketState(tokens > 0, tokens, capacity, refill_per_s)

    async def charge(
        self, key: str, capacity: float, refill_per_s: float, amount: float
    ) -> BucketState:
        """Deduct `amount` unconditionally; the balance may go negative (one request overshoots)."""
        tokens = self._current(key, capacity, refill_per_s) - amount
        self._store(key, tokens, capacity, refill_per_s)
        return BucketState(tokens > 0, tokens, capacity, refill_per_s)

    def _current(self, key: str, capacity: float, refill_per_s: float) -> float:
        now = self._clock()
        tokens, updated, _ = self._buckets.get(key, (capacity, now, now))
        return refilled(tokens, now - updated, capacity, refill_per_s)

    def _store(self, key: str, tokens: float, capacity: float, refill_per_s: float) -> None:
        now = self._clock()
        if len(self._buckets) >= MAX_BUCKETS and key not in self._buckets:
            self._make_room(now)
        missing = max(capacity - tokens, 0.0)
        full_at = now + missing / refill_per_s if refill_per_s > 0 else math.inf
        self._buckets[key] = (tokens, now, full_at)

    def _make_room(self, now: float) -> None:
        """Forget the buckets already full again, and, if that leaves more than half, the half
        that will be full soonest; the most drained are kept longest."""
        kept = {key: bucket for key, bucket in self._buckets.items() if bucket[2] > now}
        if len(kept) > MAX_BUCKETS // 2:
            by_fullness = sorted(kept.items(), key=lambda item: item[1][2])
            kept = dict(by_fullness[len(by_fullness) // 2 :])
        self._buckets = kept

    async def close(self) -> None:
        self._buckets.clear()
