"""A revoked key stops working within 5 seconds, on the gateway and on the API, and a warm request
never waits on the app DB: known keys are re-checked and rules renewed in the background."""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp

from conftest import Heliograph
from heliograph.domain.keys import Identity
from heliograph.domain.ratelimit import RateLimitPolicy
from heliograph.services.keys import CachedKeyVerifier, KeyService
from heliograph.services.ratelimits import CachedRuleSource, RateLimitRuleService

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def test_a_revoked_key_is_refused_within_5s_by_gateway_and_api(
    heliograph: Heliograph,
) -> None:
    keys = heliograph.running.services.keys
    created = keys.create_key(heliograph.organization_id, "soon revoked")
    assert await gateway_status(heliograph, created.api_key) == 200
    assert (await heliograph.api_get("/v1/rate-limits", created.api_key))[0] == 200

    assert keys.revoke_key(heliograph.organization_id, created.key_id)
    revoked_at = time.monotonic()
    while await gateway_status(heliograph, created.api_key) != 401:
        assert time.monotonic() - revoked_at < 5, "the gateway still takes a revoked key"
        await asyncio.sleep(0.1)
    assert (await heliograph.api_get("/v1/rate-limits", created.api_key))[0] == 401
    assert await gateway_status(heliograph, heliograph.api_key) == 200


async def gateway_status(heliograph: Heliograph, key: str) -> int:
    headers = {**heliograph.gateway_auth(key), "Authorization": "Bearer sk-test"}
    url = f"{heliograph.gateway}/openai/v1/chat/completions"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=CHAT, headers=headers) as response:
            await response.read()
            return response.status


class SlowKeys(KeyService):
    """Answers like the app DB would, after a pause, while counting lookups."""

    def __init__(self) -> None:
        self.calls = 0
        self.released = threading.Event()

    def lookup(self, key: str) -> Identity | None:
        self.calls += 1
        return Identity("org", "key")

    def active(self, key_hashes: list[str]) -> dict[str, Identity]:
        self.released.wait(5)
        return {}


async def test_a_known_key_is_answered_from_memory_while_it_is_re_checked() -> None:
    keys = SlowKeys()
    verifier = CachedKeyVerifier(keys, ttl_s=60, refresh_s=0.05)
    assert await verifier.verify("Bearer k") == Identity("org", "key")
    await asyncio.sleep(0.1)  # a re-check is now waiting on the "app DB"
    started = time.perf_counter()
    assert await verifier.verify("Bearer k") == Identity("org", "key")
    assert time.perf_counter() - started < 0.01
    keys.released.set()
    await asyncio.sleep(0.1)
    await verifier.close()
    assert keys.calls == 1


class SlowRules(RateLimitRuleService):
    def __init__(self) -> None:
        self.delay_s = 0.0

    def policies(self, org_id: str) -> tuple[RateLimitPolicy, ...]:
        time.sleep(self.delay_s)
        return (RateLimitPolicy(10, 60, "request", None),)


async def test_expired_rules_answer_from_memory_while_they_are_renewed() -> None:
    rules = SlowRules()
    source = CachedRuleSource(rules, ttl_s=0.01)
    first = await source.policies("org")
    await asyncio.sleep(0.02)
    rules.delay_s = 0.5
    started = time.perf_counter()
    assert await source.policies("org") == first
    assert time.perf_counter() - started < 0.1, "a warm request waited for the app DB"
    await asyncio.sleep(0.6)  # the renewal finishes
