"""A revoked key stops working within 5 seconds, on the gateway and on the API, and a warm request
never waits on the app DB: known keys are re-checked and rules renewed in the background."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

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
    # The bound is the behaviour: every process re-checks known keys every 2 s.
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
    """Answers like the app DB would, holding every re-check until released, while counting
    lookups."""

    def __init__(self) -> None:
        self.calls = 0
        self.checking = threading.Event()  # a re-check has reached the "app DB"
        self.released = threading.Event()
        self.checked = 0  # re-checks answered

    def lookup(self, key: str) -> Identity | None:
        self.calls += 1
        return Identity("org", "key")

    def active(self, key_hashes: Sequence[str]) -> dict[str, Identity]:
        self.checking.set()
        self.released.wait(5)
        self.checked += 1
        return {}


async def test_a_known_key_is_answered_from_memory_while_it_is_re_checked() -> None:
    keys = SlowKeys()
    verifier = CachedKeyVerifier(keys, ttl_s=60, refresh_s=0.05)
    assert await verifier.verify("Bearer k") == Identity("org", "key")
    assert await asyncio.to_thread(keys.checking.wait, 5), "no re-check started"
    # The re-check is held on the "app DB": the key is answered from memory all the same.
    assert await verifier.verify("Bearer k") == Identity("org", "key")
    assert keys.checked == 0, "the key was answered only once the re-check was over"
    keys.released.set()
    await verifier.idle()
    await verifier.close()
    assert keys.calls == 1


class SlowRules(RateLimitRuleService):
    """Rules as the app DB has them; with `hold`, each read waits until released."""

    def __init__(self) -> None:
        self.hold = False
        self.reading = threading.Event()  # a held read has reached the "app DB"
        self.released = threading.Event()
        self.held_reads = 0  # held reads answered

    def policies(self, org_id: str) -> tuple[RateLimitPolicy, ...]:
        if self.hold:
            self.reading.set()
            self.released.wait(5)
            self.held_reads += 1
        return (RateLimitPolicy(10, 60, "request", None),)


async def test_expired_rules_answer_from_memory_while_they_are_renewed() -> None:
    rules = SlowRules()
    source = CachedRuleSource(rules, ttl_s=0)  # expired as soon as they are read
    first = await source.policies("org")
    rules.hold = True
    assert await source.policies("org") == first  # starts the renewal
    assert await asyncio.to_thread(rules.reading.wait, 5), "no renewal started"
    # The renewal is held on the "app DB": a warm request is answered from memory meanwhile.
    assert await source.policies("org") == first
    assert rules.held_reads == 0, "a warm request waited for the app DB"
    rules.released.set()
    await source.idle()
    await source.close()
