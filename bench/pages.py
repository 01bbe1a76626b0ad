"""Dashboard benchmark: loads N realistic requests into the embedded store (bench/queries.py's
loader), signs in as the organization's owner and times every page end to end on loopback
(p50/p95 over repeated loads: an upper bound on server time), beside the REST call that reads
the same data, in the same run. Also weighs each page: its HTML and our own CSS and JavaScript
(plotly.js counted apart), raw and gzipped. Prints a table and writes `bench/results/pages.json`.

    python bench/pages.py [--rows 10000000] [--repeat 20] [--data-dir DIR]

With `--data-dir`, the loaded store is kept there and reused by the next run with the same
`--rows` (a 10-million-row load takes about ten minutes here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from heliograph import server
from heliograph.domain.filter_tree import ALL_ROWS
from heliograph.settings import load_settings
from queries import load_sql, settle  # the realistic bulk loader of bench/queries.py

HERE = Path(__file__).resolve().parent
EMAIL, PASSWORD = "bench@example.test", "bench password 1234"
ASSET = re.compile(r'(?:href|src)="(/static/[^"]+)"')


def pages(session_id: str, request_id: str) -> dict[str, tuple[str, tuple[str, str, Any] | None]]:
    """Page -> (path, the REST call reading the same data: method, path, body)."""
    model = quote(json.dumps({"and": [{"field": "model", "op": "equals", "value": "gpt-4o"}]}))
    day, week_ms = {"timeFilter": _range(1)}, {"timeFilter": _range(7, ms=True)}
    return {
        "home": ("/", ("POST", "/v1/metrics/totals", day)),
        "home, 7 days": ("/?range=7d", ("POST", "/v1/metrics/totals", {"timeFilter": _range(7)})),
        "home, 30 days": ("/?range=30d", None),
        "requests": ("/requests", ("POST", "/v1/request/page", {"limit": 50})),
        "requests, filtered (model)": (f"/requests?filter={model}", None),
        "requests, body search": ("/requests?q=kubernetes%20budget", None),
        "requests, 7 days by cost": ("/requests?range=7d&sort=cost", None),
        "one request": (f"/requests/{request_id}", ("GET", f"/v1/request/{request_id}", None)),
        "sessions": (
            "/sessions",
            ("POST", "/v1/session/query", {"limit": 50, "timeFilter": _range(1, ms=True)}),
        ),
        "sessions, 7 days": (
            "/sessions?range=7d",
            ("POST", "/v1/session/query", {"limit": 50, **week_ms}),
        ),
        "one session": (f"/sessions/{session_id}", ("GET", f"/v1/session/{session_id}/tree", None)),
        "users": (
            "/users",
            ("POST", "/v1/user/metrics/query", {"limit": 50, "timeFilter": _range(1, ms=True)}),
        ),
        "users, 7 days": (
            "/users?range=7d",
            ("POST", "/v1/user/metrics/query", {"limit": 50, **week_ms}),
        ),
        "one user": ("/users/user-42", None),
        "one user, 7 days": ("/users/user-42?range=7d", None),
        "properties": ("/properties", ("POST", "/v1/property/query", day)),
        "one property": ("/properties?key=team", None),
        "one property, 7 days": ("/properties?key=team&range=7d", None),
        "cache": ("/cache", None),
        "sql": (
            "/sql?q=" + quote("SELECT model, count() AS n FROM request_response GROUP BY model"),
            None,
        ),
        "settings": ("/settings", ("GET", "/v1/api-keys", None)),
    }


def _range(days: int, ms: bool = False) -> dict[str, Any]:
    end = time.time()
    start = end - days * 86_400
    if ms:
        return {"startTimeUnixMs": int(start * 1000), "endTimeUnixMs": int(end * 1000)}
    return {
        "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
        "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end)),
    }


async def timed(
    session: aiohttp.ClientSession, method: str, url: str, body: Any, repeat: int, **kw: Any
) -> tuple[dict[str, float], bytes]:
    timings, payload = [], b""
    for _ in range(repeat):
        started = time.perf_counter()
        async with session.request(method, url, json=body, **kw) as response:
            payload = await response.read()
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status} {payload[:300]!r}")
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(0.95 * len(timings)))]
    return {"p50_ms": round(statistics.median(timings), 2), "p95_ms": round(p95, 2)}, payload


async def weigh(session: aiohttp.ClientSession, api: str, html: bytes) -> dict[str, int]:
    """Bytes of the page and our own assets, raw and gzipped; plotly.js apart."""
    weight = {"html": len(html), "html_gzip": len(gzip.compress(html)), "own_assets": 0}
    weight |= {"own_assets_gzip": 0, "plotly_js": 0, "plotly_js_gzip": 0}
    for path in sorted(set(ASSET.findall(html.decode()))):
        async with session.get(api + path, headers={"Accept-Encoding": "identity"}) as response:
            body = await response.read()
        key = "plotly_js" if "plotly.min.js" in path else "own_assets"
        weight[key] += len(body)
        weight[key + "_gzip"] += len(gzip.compress(body))
    weight["total_without_plotly"] = weight["html"] + weight["own_assets"]
    weight["total_without_plotly_gzip"] = weight["html_gzip"] + weight["own_assets_gzip"]
    return weight


async def load(services: Any, rows: int, settle_timeout: float) -> tuple[str, str, float]:
    """A person owning a new organization, `rows` requests loaded for it, and merges settled."""
    _, organization_id = services.accounts.create_user(EMAIL, PASSWORD, "bench")
    assert organization_id is not None
    key = services.keys.create_key(organization_id, "bench").api_key
    executor = services.store.engine.executor
    started = time.perf_counter()
    sql = load_sql(rows, 30).replace("{org:UUID}", f"toUUID('{organization_id}')")
    await asyncio.to_thread(executor.command, sql)
    load_s = time.perf_counter() - started
    settle_s = await settle(executor, settle_timeout)
    print(f"loaded {rows} rows in {load_s:.1f} s; merges settled after {settle_s:.0f} s")
    return organization_id, key, load_s


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--settle-timeout", type=float, default=600)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "pages.json")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        workdir = args.data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = load_settings(
            {}, data_dir=workdir, gateway_port=0, api_port=0, log_level="warning"
        )
        running = await server.start(settings)
        services = running.services
        marker = workdir / "bench-pages.json"
        loaded = json.loads(marker.read_text()) if marker.exists() else {}
        if loaded.get("rows") == args.rows:
            organization_id, key, load_s = loaded["organization_id"], loaded["key"], 0.0
            print(f"reusing the {args.rows} rows loaded in {workdir}")
        else:
            organization_id, key, load_s = await load(services, args.rows, args.settle_timeout)
            marker.write_text(
                json.dumps(
                    {"rows": args.rows} | {"key": key} | {"organization_id": organization_id}
                )
            )
        api = f"http://127.0.0.1:{running.api_port}"
        jar = aiohttp.CookieJar(unsafe=True)
        results: dict[str, Any] = {}
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            login = {"email": EMAIL, "password": PASSWORD}
            async with session.post(api + "/v1/auth/login", json=login) as response:
                assert response.status == 200, await response.text()
            newest = await services.requests.page(organization_id, ALL_ROWS, 1, None)
            request_id = newest["requests"][0]["request_id"]
            for name, (path, rest) in pages("session-3", request_id).items():
                page, html = await timed(session, "GET", api + path, None, args.repeat)
                entry: dict[str, Any] = {"path": path, "page": page}
                if rest is not None:
                    method, rest_path, body = rest
                    bearer = {"Authorization": f"Bearer {key}"}
                    entry["rest"], _ = await timed(
                        session, method, api + rest_path, body, args.repeat, headers=bearer
                    )
                    entry["page_over_rest_p50"] = round(
                        page["p50_ms"] / max(entry["rest"]["p50_ms"], 0.01), 2
                    )
                entry["weight"] = await weigh(session, api, html)
                results[name] = entry
                print(_line(name, entry), flush=True)
        await running.stop()
    summary = {"rows": args.rows, "repeat": args.repeat, "bulk_load_s": round(load_s, 1)}
    summary["pages"] = results
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")


def _line(name: str, entry: dict[str, Any]) -> str:
    page, weight = entry["page"], entry["weight"]
    rest = entry.get("rest")
    beside = ""
    if rest:
        beside = f"  REST p50 {rest['p50_ms']:>7.2f} ms (x{entry['page_over_rest_p50']})"
    return (
        f"{name:<28} p50 {page['p50_ms']:>7.2f} ms  p95 {page['p95_ms']:>7.2f} ms{beside:<36}"
        f"  {weight['total_without_plotly'] / 1024:>6.1f} KB"
        f" ({weight['total_without_plotly_gzip'] / 1024:.1f} KB gzipped)"
    )


if __name__ == "__main__":
    asyncio.run(main())
