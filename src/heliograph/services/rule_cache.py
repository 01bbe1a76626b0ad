"""`CachedRuleSource`: the gateway's view of organizations' rate-limit rules, answered from
memory. An organization's first request waits for its rules; after `ttl_s` the rules in memory
still answer while a background lookup renews them, so a warm request never waits on the app DB.
No SQLAlchemy here: the gateway process reads rules with `appdb/lookups.py`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Protocol

from heliograph.domain.ratelimit import RateLimitPolicy

log = logging.getLogger("heliograph.ratelimits")


class RuleDirectory(Protocol):
    """Where rules are read: the app DB, through `RateLimitRuleService` or `AppDbLookups`."""

    def policies(self, organization_id: str) -> Sequence[RateLimitPolicy]: ...


def by_precedence(policies: Iterable[RateLimitPolicy]) -> tuple[RateLimitPolicy, ...]:
    """Most specific first (property, user, everyone), then the most restrictive first, as
    Helicone orders them."""
    return tuple(sorted(policies, key=_precedence))


def _precedence(policy: RateLimitPolicy) -> tuple[int, float]:
    specificity = 2 if policy.segment is None else 1 if policy.segment == "user" else 0
    return specificity, policy.refill_per_s


class CachedRuleSource:
    def __init__(self, rules: RuleDirectory, ttl_s: float) -> None:
        self._rules = rules
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[tuple[RateLimitPolicy, ...], float]] = {}
        self._renewing: dict[str, asyncio.Task[None]] = {}

    async def policies(self, organization_id: str) -> tuple[RateLimitPolicy, ...]:
        cached = self._cache.get(organization_id)
        if cached is None:
            return await self._look_up(organization_id)
        if cached[1] <= time.monotonic() and organization_id not in self._renewing:
            task = asyncio.create_task(self._renew(organization_id), name="rule-renewal")
            self._renewing[organization_id] = task
        return cached[0]

    async def _look_up(self, organization_id: str) -> tuple[RateLimitPolicy, ...]:
        policies = by_precedence(await asyncio.to_thread(self._rules.policies, organization_id))
        self._cache[organization_id] = (policies, time.monotonic() + self._ttl_s)
        return policies

    async def _renew(self, organization_id: str) -> None:
        try:
            await self._look_up(organization_id)
        except Exception as error:
            # The rules in memory keep applying; the next request after `ttl_s` tries again.
            log.warning("cannot renew the rate-limit rules of %s: %s", organization_id, error)
            stale = self._cache.get(organization_id)
            if stale is not None:
                self._cache[organization_id] = (stale[0], time.monotonic() + self._ttl_s)
        finally:
            self._renewing.pop(organization_id, None)

    async def idle(self) -> None:
        """Return once no renewal is under way (tests await the ones they started)."""
        while self._renewing:
            await asyncio.gather(*self._renewing.values(), return_exceptions=True)

    async def close(self) -> None:
        """Stop the renewals under way."""
        renewing = list(self._renewing.values())
        for task in renewing:
            task.cancel()
        await asyncio.gather(*renewing, return_exceptions=True)
        self._renewing.clear()

    def forget(self, organization_id: str) -> None:
        self._cache.pop(organization_id, None)
