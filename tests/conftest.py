"""Shared fixtures: a fake provider on loopback and a whole Heliograph (gateway, writer, API)
started in-process on free ports, pointed at it.

chDB allows one data path per process, so every Heliograph started by the tests shares one
embedded analytics store; organizations keep their data apart, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.sync_api import Browser, Page

from dashboard_browser import CHROMIUM, CHROMIUM_ARGS, sign_in, watched_context
from dashboard_harness import Account, LiveDashboard, seed
from fake_provider import Seen, start_fake
from heliograph import server
from heliograph.analytics.chdb_executor import ChdbExecutor, open_chdb, release_chdb
from heliograph.analytics.store import AnalyticsStore, open_store
from heliograph.gateway.ports import ResponseCache
from heliograph.providers.registry import BUILT_IN
from heliograph.settings import Settings, load_settings

POSTGRES_URL = os.environ.get("HELIOGRAPH_TEST_POSTGRES_URL", "")
CLICKHOUSE_URL = os.environ.get("HELIOGRAPH_TEST_CLICKHOUSE_URL", "")
REDIS_URL = os.environ.get("HELIOGRAPH_TEST_REDIS_URL", "")
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="set HELIOGRAPH_TEST_REDIS_URL to run on Redis"
)
needs_postgres = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not POSTGRES_URL, reason="set HELIOGRAPH_TEST_POSTGRES_URL to run on PostgreSQL"
    ),
]
# The app DB each parametrised test runs on: SQLite always, PostgreSQL where it is configured.
APP_DATABASES = ["sqlite", pytest.param("postgresql", marks=needs_postgres)]


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A PostgreSQL URL whose connections use a fresh schema of their own, dropped afterwards
    (so tests never see each other's rows)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=APP_DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty app DB: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture(scope="session")
def analytics_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("analytics")
    keeper = open_chdb(path)  # held for the whole session so the store is opened once
    yield path
    release_chdb(keeper)


@pytest.fixture
async def store(analytics_dir: Path) -> AsyncIterator[AnalyticsStore]:
    """The embedded analytics store on the session's data path, migrated."""
    store = open_store("", analytics_dir)
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
def chdb_executor(analytics_dir: Path) -> Iterator[ChdbExecutor]:
    executor = open_chdb(analytics_dir)
    yield executor
    release_chdb(executor)


@dataclass
class Fake:
    port: int
    seen: Seen
    runner: web.AppRunner

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    runner, port, seen = await start_fake()
    yield Fake(port, seen, runner)
    await runner.cleanup()


@dataclass
class Heliograph:
    running: server.Running
    api_key: str
    organization_id: str

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.running.gateway_port}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.running.api_port}"

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.api_key}"}

    def gateway_auth(self, key: str | None = None) -> dict[str, str]:
        return {"Helicone-Auth": f"Bearer {key or self.api_key}"}

    def new_organization(self, name: str = "other") -> tuple[str, str]:
        created = self.running.services.keys.create_organization(name)
        return created.organization_id, created.api_key

    async def api_post(self, path: str, body: Any, key: str | None = None) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session:
            async with session.post(self.api + path, json=body, headers=self.auth(key)) as resp:
                return resp.status, await resp.json()

    async def api_put(self, path: str, body: Any, key: str | None = None) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session:
            async with session.put(self.api + path, json=body, headers=self.auth(key)) as resp:
                return resp.status, await resp.json()

    async def api_get(self, path: str, key: str | None = None) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session:
            async with session.get(self.api + path, headers=self.auth(key)) as resp:
                return resp.status, await resp.json()

    async def wait_for(
        self, request_id: str, timeout_s: float = 2.0, key: str | None = None
    ) -> Any:
        """The logged request, polled through the API as a user would; fails after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            status, body = await self.api_get(f"/v1/request/{request_id}?includeBody=true", key)
            if status == 200:
                return body["data"]
            if time.monotonic() > deadline:
                raise AssertionError(f"request {request_id} not found within {timeout_s}s: {body}")
            await asyncio.sleep(0.05)


def heliograph_settings(
    tmp_path: Path, analytics_dir: Path, fake: Fake | None, **overrides: Any
) -> Settings:
    env = {}
    if fake is not None:
        env = {f"HELIOGRAPH_{p.prefix.upper()}_BASE_URL": fake.origin for p in BUILT_IN}
    defaults: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "analytics_dir": analytics_dir,
        "gateway_port": 0,
        "api_port": 0,
        "flush_interval_ms": 50,
        "key_cache_ttl_s": 60.0,
    }
    defaults.update(overrides)
    return load_settings(env, **defaults)


async def start_heliograph(settings: Settings, cache: ResponseCache | None = None) -> Heliograph:
    running = await server.start(settings, cache=cache)
    created = running.services.keys.create_organization("test")
    return Heliograph(running, created.api_key, created.organization_id)


@pytest.fixture
async def heliograph(tmp_path: Path, analytics_dir: Path, fake: Fake) -> AsyncIterator[Heliograph]:
    instance = await start_heliograph(heliograph_settings(tmp_path, analytics_dir, fake))
    yield instance
    await instance.running.stop()


INGEST_TOKEN = "test-ingest-token"


@pytest.fixture
async def api(tmp_path: Path, analytics_dir: Path, fake: Fake) -> AsyncIterator[Heliograph]:
    """A Heliograph whose ingest endpoint takes the batches gateway processes ship."""
    settings = heliograph_settings(tmp_path, analytics_dir, fake, ingest_token=INGEST_TOKEN)
    instance = await start_heliograph(settings)
    yield instance
    await instance.running.stop()


@pytest.fixture
async def heliograph_on_each_db(
    tmp_path: Path, analytics_dir: Path, fake: Fake, database_url: str
) -> AsyncIterator[Heliograph]:
    """A whole Heliograph whose app DB is SQLite, then PostgreSQL."""
    settings = heliograph_settings(tmp_path, analytics_dir, fake, database_url=database_url)
    instance = await start_heliograph(settings)
    yield instance
    await instance.running.stop()


@pytest.fixture(params=["local", pytest.param("redis", marks=needs_redis)])
async def heliograph_on_each_backend(
    request: pytest.FixtureRequest, tmp_path: Path, analytics_dir: Path, fake: Fake
) -> AsyncIterator[Heliograph]:
    """A Heliograph whose shared state (rate limits, cache) is local, then in Redis."""
    redis_url = REDIS_URL if request.param == "redis" else ""
    instance = await start_heliograph(
        heliograph_settings(tmp_path, analytics_dir, fake, redis_url=redis_url)
    )
    yield instance
    await instance.running.stop()


# The browser suite: one live Heliograph with seeded traffic for the whole run, one Chromium per
# module, and a fresh signed-in browser context per test.


@pytest.fixture(scope="session")
def live_dashboard(
    tmp_path_factory: pytest.TempPathFactory, analytics_dir: Path
) -> Iterator[tuple[LiveDashboard, Account, Account]]:
    live = LiveDashboard(tmp_path_factory.mktemp("dashboard"), analytics_dir)
    try:
        live.start()
        acme, other = seed(live)
        yield live, acme, other
    finally:
        live.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def anonymous_page(chromium: Browser) -> Iterator[Page]:
    """A page in a fresh context with no session; console errors and outside requests fail."""
    context, watched = watched_context(chromium)
    page = context.new_page()
    yield page
    context.close()
    watched.check()


@pytest.fixture
def acme_page(
    chromium: Browser, live_dashboard: tuple[LiveDashboard, Account, Account]
) -> Iterator[Page]:
    """A page signed in as the first organization's owner."""
    live, acme, _ = live_dashboard
    context, watched = watched_context(chromium)
    sign_in(context, live, acme.email)
    page = context.new_page()
    yield page
    context.close()
    watched.check()
