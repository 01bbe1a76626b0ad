"""Cached responses in Redis, shared by every gateway process; Redis expires them."""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis


class RedisResponseCache:
    def __init__(self, url: str, prefix: str = "heliograph:cache:") -> None:
        self._redis: Any = redis.Redis.from_url(url)
        self._prefix = prefix

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        values: list[bytes | None] = await self._redis.mget([self._prefix + key for key in keys])
        return values

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        await self._redis.set(self._prefix + key, value, ex=ttl_s)

    async def close(self) -> None:
        await self._redis.aclose()
