"""Token buckets in Redis, shared by every gateway process. Each operation is one Lua script, so
refill, check and deduct happen atomically, timed by the Redis server's own clock."""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis

from heliograph.domain.ratelimit import BucketState

# KEYS[1]: bucket. ARGV: capacity, refill per second, amount, mode (take | check | charge).
SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local mode = ARGV[4]
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1])
local updated = tonumber(state[2])
if tokens == nil then
  tokens = capacity
  updated = now
end
tokens = math.min(capacity, tokens + math.max(now - updated, 0) * rate)
local allowed = 0
if mode == 'take' then
  if tokens >= amount then
    tokens = tokens - amount
    allowed = 1
  end
elseif mode == 'charge' then
  tokens = tokens - amount
  if tokens > 0 then allowed = 1 end
else
  if tokens > 0 then allowed = 1 end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return {allowed, tostring(tokens)}
"""


class RedisBuckets:
    def __init__(self, url: str, prefix: str = "heliograph:") -> None:
        self._redis: Any = redis.Redis.from_url(url)
        self._script = self._redis.register_script(SCRIPT)
        self._prefix = prefix

    async def take(
        self, key: str, capacity: float, refill_per_s: float, amount: float
    ) -> BucketState:
        return await self._run(key, capacity, refill_per_s, amount, "take")

    async def check(self, key: str, capacity: float, refill_per_s: float) -> BucketState:
        return await self._run(key, capacity, refill_per_s, 0, "check")

    async def charge(
        self, key: str, capacity: float, refill_per_s: float, amount: float
    ) -> BucketState:
        return await self._run(key, capacity, refill_per_s, amount, "charge")

    async def _run(
        self, key: str, capacity: float, refill_per_s: float, amount: float, mode: str
    ) -> BucketState:
        allowed, tokens = await self._script(
            keys=[self._prefix + key], args=[repr(capacity), repr(refill_per_s), repr(amount), mode]
        )
        return BucketState(bool(allowed), float(tokens), capacity, refill_per_s)

    async def close(self) -> None:
        await self._redis.aclose()
