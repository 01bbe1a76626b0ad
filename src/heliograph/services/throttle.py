"""Sign-in throttling: one token bucket per account and one per client address (in this process,
or in Redis when `HELIOGRAPH_REDIS_URL` is set, so every API process counts together)."""

from __future__ import annotations

import ipaddress
import math
from typing import Protocol

from heliograph.domain.errors import InvalidInput
from heliograph.domain.ratelimit import BucketState


class Buckets(Protocol):
    async def take(
        self, key: str, capacity: float, refill_per_s: float, amount: float
    ) -> BucketState: ...

    async def close(self) -> None: ...


class Throttled(InvalidInput):
    status = 429
    code = "too_many_attempts"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


class LoginThrottle:
    def __init__(
        self, buckets: Buckets, per_account: int, per_address: int, window_s: float
    ) -> None:
        self._buckets = buckets
        self._limits = {"account": per_account, "address": per_address}
        self._window_s = window_s

    async def attempt(self, email: str, address: str) -> None:
        """Count one sign-in attempt; `Throttled` (429) when either bucket is empty."""
        for kind, value in (("address", address_key(address)), ("account", email)):
            capacity = float(self._limits[kind])
            refill = capacity / self._window_s
            state = await self._buckets.take(f"login:{kind}:{value}", capacity, refill, 1)
            if not state.allowed:
                wait = max(1, math.ceil((1 - state.remaining) / refill))
                raise Throttled(f"too many sign-in attempts; try again in {wait} s", wait)

    async def close(self) -> None:
        await self._buckets.close()


def address_key(address: str) -> str:
    """Whom an address's attempts count against: an IPv6 client by its /64 (one host usually
    holds all of it, so counting each address would count nothing)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
