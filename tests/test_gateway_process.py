"""The gateway process as `heliograph serve` starts it (`python -m heliograph.gateway_process`):
it imports only what forwarding, policies and shipping need, reads keys and rules from the app DB
as the API's services do, forwards and ships through the API, and stops accepting a revoked key
within 5 seconds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import create_engine, text

from conftest import (
    INGEST_TOKEN,
    POSTGRES_URL,
    Fake,
    Heliograph,
)
from heliograph.appdb.engine import create_app_engine, session_factory, upgrade
from heliograph.appdb.lookups import AppDbLookups
from heliograph.appdb.urls import normalise_url
from heliograph.domain.keys import hash_key
from heliograph.providers.registry import BUILT_IN
from heliograph.services.keys import KeyService
from heliograph.services.ratelimits import RateLimitRuleService, RuleInput

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
# What the API process needs and the gateway process must never carry.
FORBIDDEN = [
    *("chdb", "clickhouse_connect", "fastapi", "starlette", "uvicorn", "sqlglot"),
    *("sqlalchemy", "alembic", "redis"),
]
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not POSTGRES_URL, reason="set HELIOGRAPH_TEST_POSTGRES_URL"),
        ],
    ),
]


@pytest.fixture(scope="module")
def loaded_by_the_gateway_process() -> set[str]:
    """Top-level packages imported by the gateway process's entry module and by the command line
    (`heliograph gateway`), in a fresh interpreter."""
    code = (
        "import json, sys, heliograph.gateway_process, heliograph.cli.main; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return {name.split(".")[0] for name in json.loads(output)}


@pytest.mark.parametrize("module", [*FORBIDDEN, "pydantic", "genai_prices"])
def test_the_gateway_process_leaves_out_what_it_does_not_need(
    module: str, loaded_by_the_gateway_process: set[str]
) -> None:
    assert module not in loaded_by_the_gateway_process


@pytest.fixture(params=BACKENDS)
def app_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty app DB: a SQLite file, or a schema of its own on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(POSTGRES_URL))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_the_gateway_reads_keys_and_rules_as_the_services_write_them(app_db_url: str) -> None:
    url = app_db_url
    engine = create_app_engine(url)
    upgrade(engine)
    keys, rules = KeyService(session_factory(engine)), RateLimitRuleService(session_factory(engine))
    created = keys.create_organization("lookups")
    revoked = keys.create_key(created.organization_id, "revoked")
    keys.revoke_key(created.organization_id, revoked.key_id)
    rules.create(created.organization_id, RuleInput("all", 100, 60))
    rules.create(created.organization_id, RuleInput("per user", 10, 60, segment="user"))
    lookups = AppDbLookups(url)
    try:
        assert lookups.lookup(created.api_key) == keys.lookup(created.api_key)
        assert lookups.lookup(revoked.api_key) is None
        hashes = [hash_key(created.api_key), hash_key(revoked.api_key)]
        assert lookups.active(hashes) == keys.active(hashes)
        assert set(lookups.policies(created.organization_id)) == set(
            rules.policies(created.organization_id)
        )
    finally:
        lookups.close()
        engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def gateway_process(
    api: Heliograph, fake: Fake, tmp_path: Path, **settings: str
) -> AsyncIterator[str]:
    """A gateway process on the API's app DB and ingest endpoint (unless `settings` say other
    `HELIOGRAPH_*` values); its URL. Waited for without blocking, since it ships its last
    records to the API on this event loop as it stops."""
    port = free_port()
    env = {
        **os.environ,
        **{f"HELIOGRAPH_{p.prefix.upper()}_BASE_URL": fake.origin for p in BUILT_IN},
        "HELIOGRAPH_DATA_DIR": str(tmp_path / "data"),
        "HELIOGRAPH_GATEWAY_PORT": str(port),
        "HELIOGRAPH_API_URL": api.api,
        "HELIOGRAPH_INGEST_TOKEN": INGEST_TOKEN,
        "HELIOGRAPH_GATEWAY_WORKER": "3",
        "HELIOGRAPH_LOG_LEVEL": "warning",
        **{f"HELIOGRAPH_{name.upper()}": value for name, value in settings.items()},
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "heliograph.gateway_process", env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_for(f"{url}/healthz", child)
        yield url
    finally:
        child.terminate()
        await asyncio.wait_for(child.wait(), 30)


@pytest.fixture
async def gateway(api: Heliograph, fake: Fake, tmp_path: Path) -> AsyncIterator[str]:
    async with gateway_process(api, fake, tmp_path) as url:
        yield url


async def wait_for(url: str, child: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while True:
            assert child.returncode is None, "the gateway process exited"
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, "the gateway process did not come up"
            await asyncio.sleep(0.05)


async def chat(gateway: str, key: str) -> tuple[int, str]:
    headers = {"Helicone-Auth": f"Bearer {key}", "Authorization": "Bearer sk-test"}
    async with aiohttp.ClientSession() as session:
        url = f"{gateway}/openai/v1/chat/completions"
        async with session.post(url, json=CHAT, headers=headers) as response:
            await response.read()
            return response.status, response.headers.get("Helicone-Id", "")


async def test_a_gateway_process_ships_its_logs_and_drops_a_revoked_key_within_5s(
    api: Heliograph, gateway: str
) -> None:
    organization_id, _ = api.new_organization("revocation")
    created = api.running.services.keys.create_key(organization_id, "soon revoked")
    status, request_id = await chat(gateway, created.api_key)
    assert status == 200
    row = await api.wait_for(request_id, timeout_s=5, key=created.api_key)
    assert row["response_body"]["usage"]["total_tokens"] > 0

    assert api.running.services.keys.revoke_key(organization_id, created.key_id)
    revoked_at = time.monotonic()
    while (await chat(gateway, created.api_key))[0] != 401:
        assert time.monotonic() - revoked_at < 5, "a revoked key still works after 5 s"
        await asyncio.sleep(0.1)
    assert (await chat(gateway, api.api_key))[0] == 200, "other keys keep working"


async def test_a_gateway_whose_logs_cannot_leave_says_it_is_stalled(
    api: Heliograph, fake: Fake, tmp_path: Path
) -> None:
    nobody_there = f"http://127.0.0.1:{free_port()}/v1/log/batch"
    settings = {"ingest_url": nobody_there, "stall_after_s": "0.5", "log_level": "error"}
    async with gateway_process(api, fake, tmp_path, **settings) as url:
        assert (await chat(url, api.api_key))[0] == 200
        deadline = time.monotonic() + 10
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(f"{url}/healthz") as response:
                    if response.status == 503:
                        assert (await response.json())["status"] == "stalled"
                        break
                assert time.monotonic() < deadline, "/healthz never said the shipper is stuck"
                await asyncio.sleep(0.1)
