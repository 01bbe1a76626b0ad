"""Cached responses kept in the data directory (SQLite via diskcache): bounded, least recently
used out first, shared by every gateway process on the host, and still there after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import diskcache


class DiskResponseCache:
    def __init__(self, directory: Path, size_limit_bytes: int) -> None:
        self._cache = diskcache.Cache(
            str(directory), size_limit=size_limit_bytes, eviction_policy="least-recently-used"
        )

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return await asyncio.to_thread(self._get_many, keys)

    def _get_many(self, keys: list[str]) -> list[bytes | None]:
        return [self._cache.get(key) for key in keys]

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        await asyncio.to_thread(self._cache.set, key, value, expire=ttl_s)

    async def close(self) -> None:
        self._cache.close()
