"""Cached responses kept in the data directory (SQLite via diskcache): bounded, least recently
used out first, shared by every gateway process on the host, and still there after a restart.

An entry is fresh until the time stored with it (its tag), read on `clock`: wall-clock time by
default, since processes and restarts share the entries, and a fake one in tests. diskcache's
own `expire=` (on its wall clock) only clears stale entries away.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import diskcache


class DiskResponseCache:
    def __init__(
        self, directory: Path, size_limit_bytes: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._cache = diskcache.Cache(
            str(directory), size_limit=size_limit_bytes, eviction_policy="least-recently-used"
        )
        self._clock = clock

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return await asyncio.to_thread(self._get_many, keys)

    def _get_many(self, keys: list[str]) -> list[bytes | None]:
        now = self._clock()
        values: list[bytes | None] = []
        for key in keys:
            value, expires_at = self._cache.get(key, tag=True)
            # An entry saved without a tag (before tags were kept) lives by diskcache's expiry.
            values.append(value if expires_at is None or expires_at > now else None)
        return values

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        expires_at = self._clock() + ttl_s
        await asyncio.to_thread(self._cache.set, key, value, expire=ttl_s, tag=expires_at)

    async def close(self) -> None:
        self._cache.close()
