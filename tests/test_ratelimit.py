"""Rate limits: the policy grammar, token buckets on both backends (memory and Redis), and
Helicone's end-to-end table through the gateway and the OpenAI SDK."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from conftest import REDIS_URL, Fake, Heliograph, heliograph_settings, needs_redis, start_heliograph
from heliograph.domain.ratelimit import (
    BucketState,
    InvalidPolicy,
    RateLimitPolicy,
    bucket_key,
    parse_policy,
)
from heliograph.gateway.ports import Buckets
from heliograph.state.buckets import MemoryBuckets
from heliograph.state.redis_buckets import RedisBuckets


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("3;w=60", RateLimitPolicy(3, 60)),
        ("1000;w=3600;u=request;s=user", RateLimitPolicy(1000, 3600, "request", "user")),
        ("5000;w=86400;u=cents", RateLimitPolicy(5000, 86400, "cents")),
        ("2.5; W=60 ;U=CENTS; s=Team_Name", RateLimitPolicy(2.5, 60, "cents", "Team_Name")),
    ],
)
def test_valid_policies(text: str, policy: RateLimitPolicy) -> None:
    assert parse_policy(text) == policy


@pytest.mark.parametrize(
    "text", ["", "3", "3;w=30", "0;w=60", "3;w=60;u=tokens", "3;w=60;s=a:b", "-1;w=60", "x;w=60"]
)
def test_invalid_policies(text: str) -> None:
    with pytest.raises(InvalidPolicy):
        parse_policy(text)


def test_bucket_keys_separate_organizations_segments_and_units() -> None:
    org = "o1"
    assert bucket_key(org, RateLimitPolicy(3, 60), "") == "tb:o1:global::request"
    assert bucket_key(org, RateLimitPolicy(3, 60, "cents", "user"), "a:b") == "tb:o1:user:a_b:cents"
    assert (
        bucket_key(org, RateLimitPolicy(3, 60, segment="Team"), "red")
        == "tb:o1:prop:team:red:request"
    )
    assert BucketState(True, 1.0, 3.0, 0.05).reset_s == 40


@dataclass
class Clocked:
    """A bucket store and a way to let time pass for it: a fake clock moved forward in memory;
    on Redis, which times buckets by its own server clock, real time."""

    buckets: Buckets
    advance: Callable[[float], Awaitable[None]]


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
async def clocked(request: pytest.FixtureRequest) -> AsyncIterator[Clocked]:
    if request.param == "redis":
        store: Buckets = RedisBuckets(REDIS_URL)
        yield Clocked(store, asyncio.sleep)
    else:
        now = [0.0]

        async def advance(seconds: float) -> None:
            now[0] += seconds

        store = MemoryBuckets(clock=lambda: now[0])
        yield Clocked(store, advance)
    await store.close()


async def test_buckets_take_refill_and_charge(clocked: Clocked) -> None:
    buckets = clocked.buckets
    key = f"test:{uuid.uuid4()}"
    results = [(await buckets.take(key, 2, 10.0, 1)).allowed for _ in range(3)]
    assert results == [True, True, False]
    await clocked.advance(0.15)  # 10 tokens a second: at least one is back
    assert (await buckets.take(key, 2, 10.0, 1)).allowed
    cents = f"test:{uuid.uuid4()}"
    assert (await buckets.check(cents, 1.0, 0.0001)).allowed
    state = await buckets.charge(cents, 1.0, 0.0001, 1.5)  # the request that overshoots
    assert state.remaining < 0
    assert not (await buckets.check(cents, 1.0, 0.0001)).allowed


async def test_a_flood_of_new_buckets_never_refills_a_drained_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At the bucket limit, full buckets go first, then those nearest full: the drained one an
    attacker wants reset (a login throttle, a spend limit) is the last to be forgotten."""
    monkeypatch.setattr("heliograph.state.buckets.MAX_BUCKETS", 10)
    now = [0.0]
    buckets = MemoryBuckets(clock=lambda: now[0])
    for _ in range(3):
        await buckets.take("victim", 3, 3 / 900, 1)
    assert not (await buckets.take("victim", 3, 3 / 900, 1)).allowed
    for flood in range(100):  # each new key takes one token and is nearly full again
        assert (await buckets.take(f"flood:{flood}", 50, 50 / 900, 1)).allowed
        now[0] += 0.01
    assert not (await buckets.take("victim", 3, 3 / 900, 1)).allowed
    assert len(buckets._buckets) <= 10


async def test_memory_bucket_refills_continuously_on_its_clock() -> None:
    now = [0.0]
    buckets = MemoryBuckets(clock=lambda: now[0])
    for _ in range(3):
        assert (await buckets.take("k", 3, 3 / 60, 1)).allowed
    assert not (await buckets.take("k", 3, 3 / 60, 1)).allowed
    now[0] = 20.0  # one token back after w / quota seconds
    state = await buckets.take("k", 3, 3 / 60, 1)
    assert state.allowed
    assert not (await buckets.take("k", 3, 3 / 60, 1)).allowed


def sdk(hg: Heliograph, **headers: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="sk-provider",
        base_url=f"{hg.gateway}/openai/v1",
        default_headers={"Helicone-Auth": f"Bearer {hg.api_key}", **headers},
        max_retries=0,
    )


async def call(client: openai.AsyncOpenAI, **headers: str) -> tuple[int, dict[str, str]]:
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], extra_headers=headers
        )
    except openai.APIStatusError as error:
        return error.status_code, dict(error.response.headers)
    return raw.status_code, dict(raw.headers)


@pytest.fixture
def limited(heliograph_on_each_backend: Heliograph) -> Heliograph:
    return heliograph_on_each_backend


async def test_heliconess_token_bucket_table(limited: Heliograph) -> None:
    async with sdk(limited, **{"Helicone-RateLimit-Policy": "3;w=60"}) as client:
        outcomes = [await call(client) for _ in range(5)]
    assert [status for status, _ in outcomes] == [200, 200, 200, 429, 429]
    assert [h["helicone-ratelimit-remaining"] for _, h in outcomes] == ["2", "1", "0", "0", "0"]
    assert {h["helicone-ratelimit-limit"] for _, h in outcomes} == {"3"}
    assert outcomes[0][1]["helicone-ratelimit-policy"] == "3;w=60;u=request"
    assert outcomes[3][1]["x-helicone-error"] == "rate_limited"
    row = await limited.wait_for(outcomes[3][1]["helicone-id"])
    assert row["response_status"] == 429
    assert row["properties"]["Helicone-Rate-Limit-Status"] == "bucket_rate_limited"


async def test_users_and_properties_have_their_own_buckets(limited: Heliograph) -> None:
    policy = {"Helicone-RateLimit-Policy": "2;w=60;s=user"}
    async with sdk(limited, **policy) as client:
        alice = [await call(client, **{"Helicone-User-Id": "alice"}) for _ in range(3)]
        bob = await call(client, **{"Helicone-User-Id": "bob"})
    assert [status for status, _ in alice] == [200, 200, 429]
    assert bob[0] == 200
    policy = {"Helicone-RateLimit-Policy": "1;w=60;s=team"}
    async with sdk(limited, **policy) as client:
        red = [await call(client, **{"Helicone-Property-Team": "red"}) for _ in range(2)]
        blue = await call(client, **{"Helicone-Property-Team": "blue"})
    assert [status for status, _ in red] == [200, 429]
    assert blue[0] == 200


async def test_cents_budget_is_charged_with_the_real_cost(limited: Heliograph) -> None:
    # Each call costs $0.000008175 = 0.0008175 cents (gpt-4o-mini, the fake's usage): a budget of
    # 0.002 cents allows three, the third overshooting, as in Helicone.
    async with sdk(limited, **{"Helicone-RateLimit-Policy": "0.002;w=3600;u=cents"}) as client:
        statuses = []
        for _ in range(4):
            statuses.append((await call(client))[0])
            assert limited.running.gateway is not None
            await limited.running.gateway.proxy.drain()  # the charge lands after the response
    assert statuses == [200, 200, 200, 429]


async def test_invalid_policy_fails_open_with_a_warning(limited: Heliograph) -> None:
    async with sdk(limited, **{"Helicone-RateLimit-Policy": "3;w=10"}) as client:
        outcomes = [await call(client) for _ in range(4)]
    assert [status for status, _ in outcomes] == [200] * 4
    assert "between 60" in outcomes[0][1]["helicone-ratelimit-warning"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_healthy(url: str, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            assert process.returncode is None, "gateway process died"
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never became healthy")


@needs_redis
async def test_two_gateway_processes_share_redis_limits_and_cache(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    token = "shared-ingest-token"
    hg = await start_heliograph(
        heliograph_settings(tmp_path, analytics_dir, fake, ingest_token=token)
    )
    processes, ports = [], [free_port(), free_port()]
    try:
        for index, port in enumerate(ports):
            env = {
                **os.environ,
                "HELIOGRAPH_DATA_DIR": str(tmp_path / f"gateway-{index}"),
                "HELIOGRAPH_DATABASE_URL": hg.running.services.settings.resolved_database_url,
                "HELIOGRAPH_INGEST_URL": f"{hg.api}/v1/log/batch",
                "HELIOGRAPH_INGEST_TOKEN": token,
                "HELIOGRAPH_REDIS_URL": REDIS_URL,
                "HELIOGRAPH_OPENAI_BASE_URL": fake.origin,
                "HELIOGRAPH_GATEWAY_PORT": str(port),
            }
            processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "heliograph", "gateway", env=env
                )
            )
        for port, process in zip(ports, processes, strict=True):
            await wait_healthy(f"http://127.0.0.1:{port}/healthz", process)

        statuses, ids = [], []
        for attempt in range(5):
            port = ports[attempt % 2]
            client = openai.AsyncOpenAI(
                api_key="sk-provider",
                base_url=f"http://127.0.0.1:{port}/openai/v1",
                default_headers={
                    "Helicone-Auth": f"Bearer {hg.api_key}",
                    "Helicone-RateLimit-Policy": "3;w=60",
                },
                max_retries=0,
            )
            async with client:
                status, headers = await call(client)
            statuses.append(status)
            ids.append(headers["helicone-id"])
        assert statuses == [200, 200, 200, 429, 429]
        for request_id in ids:  # shipped by both gateways to the one API
            await hg.wait_for(request_id, timeout_s=5)

        caches, seed = [], str(uuid.uuid4())
        for port in ports:  # saved through the first process, served by the second
            client = openai.AsyncOpenAI(
                api_key="sk-provider",
                base_url=f"http://127.0.0.1:{port}/openai/v1",
                default_headers={
                    "Helicone-Auth": f"Bearer {hg.api_key}",
                    "Helicone-Cache-Enabled": "true",
                    "Helicone-Cache-Seed": seed,
                },
                max_retries=0,
            )
            async with client:
                status, headers = await call(client)
            caches.append((status, headers["helicone-cache"]))
        assert caches == [(200, "MISS"), (200, "HIT")]
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
                await process.wait()
        await hg.running.stop()


async def test_organization_rules_apply_without_a_header(limited: Heliograph) -> None:
    rule = {"name": "per user", "quota": 2, "window_seconds": 60, "segment": "user"}
    status, body = await limited.api_post("/v1/rate-limits", rule)
    assert status == 201, body
    assert body["data"]["policy"] == "2;w=60;u=request;s=user"
    rule_id = body["data"]["id"]
    async with sdk(limited) as client:
        carol = [await call(client, **{"Helicone-User-Id": "carol"}) for _ in range(3)]
        anonymous = [await call(client) for _ in range(3)]  # no user: the rule does not apply
        header_wins = await call(
            client, **{"Helicone-User-Id": "carol", "Helicone-RateLimit-Policy": "10;w=60"}
        )
    assert [status for status, _ in carol] == [200, 200, 429]
    assert [status for status, _ in anonymous] == [200, 200, 200]
    assert header_wins[0] == 200

    _, other_key = limited.new_organization("other")
    status, body = await limited.api_get("/v1/rate-limits", key=other_key)
    assert body["data"] == [], "rules belong to one organization"
    async with aiohttp.ClientSession() as session:
        async with session.delete(
            f"{limited.api}/v1/rate-limits/{rule_id}", headers=limited.auth(other_key)
        ) as response:
            assert response.status == 404
        async with session.delete(
            f"{limited.api}/v1/rate-limits/{rule_id}", headers=limited.auth()
        ) as response:
            assert response.status == 200
    status, body = await limited.api_get("/v1/rate-limits")
    assert body["data"] == []


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"name": "x", "quota": 1, "window_seconds": 10}, "between 60"),
        ({"name": "x", "quota": 0, "window_seconds": 60}, "quota"),
        ({"name": "x", "quota": 1, "window_seconds": 60, "unit": "tokens"}, "unit"),
        ({"name": "x", "quota": 1, "window_seconds": 60, "segment": "a:b"}, "not a rate-limit"),
        ({"name": "", "quota": 1, "window_seconds": 60}, "name"),
    ],
)
async def test_invalid_rules_are_400(
    limited: Heliograph, rule: dict[str, Any], message: str
) -> None:
    status, body = await limited.api_post("/v1/rate-limits", rule)
    assert status == 400
    assert message in body["error"]
