"""A revoked key stops working within 5 seconds, on the gateway and on the API (deleted through
`DELETE /v1/api-keys/{id}`, on SQLite and PostgreSQL, and seen by a gateway running in a process
of its own), and a warm request never waits on the app DB: known keys are re-checked and rules
renewed in the background. A gateway process also writes when its keys were last used."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest

from conftest import INGEST_TOKEN, Fake, Heliograph, heliograph_settings, start_heliograph
from heliograph.domain.keys import Identity
from heliograph.domain.ratelimit import RateLimitPolicy
from heliograph.services.keys import CachedKeyVerifier, KeyService
from heliograph.services.ratelimits import CachedRuleSource, RateLimitRuleService
from test_gateway_process import gateway_process

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


async def delete_key(heliograph: Heliograph, key_id: str) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{heliograph.api}/v1/api-keys/{key_id}"
        async with session.delete(url, headers=heliograph.auth()) as response:
            assert response.status == 200, await response.text()


async def new_key(heliograph: Heliograph, name: str) -> tuple[str, str]:
    status, body = await heliograph.api_post("/v1/api-keys", {"api_key_name": name})
    assert status == 201, body
    return body["data"]["id"], body["data"]["apiKey"]


async def refused_within_5s(gateway: str, key: str) -> None:
    deleted_at = time.monotonic()
    while await status_at(gateway, key) != 401:
        assert time.monotonic() - deleted_at < 5, "the gateway still takes a deleted key"
        await asyncio.sleep(0.1)


async def test_a_key_deleted_through_the_api_is_refused_everywhere_within_5s(
    heliograph_on_each_db: Heliograph,
) -> None:
    hg = heliograph_on_each_db
    key_id, api_key = await new_key(hg, "soon deleted")
    assert await gateway_status(hg, api_key) == 200
    assert (await hg.api_get("/v1/rate-limits", api_key))[0] == 200

    await delete_key(hg, key_id)
    await refused_within_5s(hg.gateway, api_key)
    status, body = await hg.api_get("/v1/rate-limits", api_key)
    assert status == 401
    assert body["data"] is None
    assert await gateway_status(hg, hg.api_key) == 200, "other keys keep working"


@pytest.fixture
async def api_on_each_db(
    tmp_path: Path, analytics_dir: Path, fake: Fake, database_url: str
) -> AsyncIterator[Heliograph]:
    """The API (and its in-process gateway), taking batches from gateway processes."""
    settings = heliograph_settings(
        tmp_path, analytics_dir, fake, ingest_token=INGEST_TOKEN, database_url=database_url
    )
    instance = await start_heliograph(settings)
    yield instance
    await instance.running.stop()


async def test_a_gateway_process_drops_a_key_deleted_through_the_api_and_records_its_use(
    api_on_each_db: Heliograph, fake: Fake, tmp_path: Path, database_url: str
) -> None:
    api = api_on_each_db
    async with gateway_process(api, fake, tmp_path, database_url=database_url) as gateway:
        key_id, api_key = await new_key(api, "used elsewhere")
        assert await status_at(gateway, api_key) == 200
        # The gateway process, not the API, saw the key used: it writes the time itself.
        deadline = time.monotonic() + 5
        while (await last_used(api, key_id)) is None:
            assert time.monotonic() < deadline, "the gateway process did not record the use"
            await asyncio.sleep(0.1)

        await delete_key(api, key_id)
        await refused_within_5s(gateway, api_key)
        assert await status_at(gateway, api.api_key) == 200, "other keys keep working"


async def last_used(heliograph: Heliograph, key_id: str) -> str | None:
    status, body = await heliograph.api_get("/v1/api-keys")
    assert status == 200, body
    found: str | None = {key["id"]: key for key in body["data"]}[key_id]["last_used_at"]
    return found


async def gateway_status(heliograph: Heliograph, key: str) -> int:
    return await status_at(heliograph.gateway, key)


async def status_at(gateway: str, key: str) -> int:
    headers = {"Helicone-Auth": f"Bearer {key}", "Authorization": "Bearer sk-test"}
    url = f"{gateway}/openai/v1/chat/completions"
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

    def touch(self, used: Mapping[str, datetime]) -> None:
        pass  # last uses are tested in test_api_keys.py


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
