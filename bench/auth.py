"""What signing in and being signed in cost, on the embedded stores: the same API read made with
an API key (verified from memory) and with a session cookie (looked up in the app DB on every
request, so a sign-out takes effect at once), in the same run, and their ratio; and a sign-in
(one Argon2id verification). Prints the figures, writes `bench/results/auth.json`.

    python bench/auth.py [--requests 300] [--logins 10] [--database-url URL]

A PostgreSQL run works in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp

from heliograph import server
from heliograph.settings import load_settings

HERE = Path(__file__).resolve().parent
PASSWORD = "a long benchmark passphrase"


async def timed(requests: int, call: Callable[[], Awaitable[int]]) -> list[float]:
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        assert await call() == 200
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def summary(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 3),
    }


@contextlib.contextmanager
def own_schema(database_url: str) -> Iterator[str | None]:
    """`database_url` with a fresh schema of its own for PostgreSQL (dropped afterwards)."""
    if not database_url.startswith("postgres"):
        yield database_url or None
        return
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        separator = "&" if "?" in database_url else "?"
        yield f"{database_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def main(requests: int, logins: int, database_url: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data, own_schema(database_url) as url:
        settings = load_settings(
            {},
            data_dir=Path(data),
            api_port=0,
            gateway_port=0,
            database_url=url,
            login_attempts_per_account=1000,  # measuring, not throttling
        )
        running = await server.start(settings)
        try:
            return await measure(running, requests, logins)
        finally:
            await running.stop()


async def measure(running: server.Running, requests: int, logins: int) -> dict[str, Any]:
    api = f"http://127.0.0.1:{running.api_port}"
    key = running.services.keys.create_organization("bench").api_key
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser, aiohttp.ClientSession() as plain:
        body = {"email": "bench@example.com", "password": PASSWORD}
        async with browser.post(f"{api}/v1/auth/signup", json=body) as response:
            organization_id = (await response.json())["data"]["organization_id"]
        person = {"Heliograph-Organization-Id": organization_id}

        async def with_key() -> int:
            async with plain.get(
                f"{api}/v1/rate-limits", headers={"Authorization": f"Bearer {key}"}
            ) as response:
                await response.read()
                return response.status

        async def with_cookie() -> int:
            async with browser.get(f"{api}/v1/rate-limits", headers=person) as response:
                await response.read()
                return response.status

        async def login() -> int:
            async with plain.post(f"{api}/v1/auth/login", json=body) as response:
                await response.read()
                return response.status

        await timed(20, with_key)  # warm both paths
        await timed(20, with_cookie)
        key_ms, cookie_ms = [], []
        for _ in range(3):  # interleaved rounds, so drift hits both alike
            key_ms += await timed(requests // 3, with_key)
            cookie_ms += await timed(requests // 3, with_cookie)
        login_ms = await timed(logins, login)
    key_summary, cookie_summary = summary(key_ms), summary(cookie_ms)
    return {
        "requests": len(key_ms),
        "api_key": key_summary,
        "session_cookie": cookie_summary,
        "cookie_over_key_p50": round(cookie_summary["p50_ms"] / key_summary["p50_ms"], 2),
        "login": summary(login_ms),
        "database": running.services.engine.dialect.name,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--logins", type=int, default=10)
    parser.add_argument("--database-url", default="")
    options = parser.parse_args()
    result = asyncio.run(main(options.requests, options.logins, options.database_url))
    print(json.dumps(result))
    name = "auth.json" if result["database"] == "sqlite" else f"auth-{result['database']}.json"
    (HERE / "results" / name).write_text(json.dumps(result, indent=2) + "\n")
