"""Query benchmark: loads N realistic requests into the embedded store, then times every API
query type end to end (p50/p95 over repeated calls) and the ingest rate of the real writer path.
Prints a table and writes `bench/results/queries.json`.

The bulk loader is one `INSERT ... SELECT FROM numbers(N)` that generates rows inside the engine
(models, providers, 5,000 users, sessions of 8 requests with paths, properties, statuses, bodies
of about 500 bytes of words); the ingest rate is measured separately through `LogWriter`.

    python bench/queries.py [--rows 10000000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from heliograph import server
from heliograph.domain.record import RequestRecord
from heliograph.settings import load_settings

HERE = Path(__file__).resolve().parent
WORDS = [
    "weather",
    "invoice",
    "summary",
    "translate",
    "refund",
    "shipping",
    "python",
    "error",
    "account",
    "password",
    "travel",
    "recipe",
    "schedule",
    "meeting",
    "contract",
    "deploy",
    "kubernetes",
    "database",
    "latency",
    "budget",
    "forecast",
    "customer",
    "support",
    "ticket",
    "urgent",
    "marketing",
    "email",
    "campaign",
    "product",
    "launch",
    "review",
    "feedback",
    "security",
    "audit",
    "report",
    "quarterly",
    "revenue",
    "growth",
    "churn",
    "onboarding",
    "tutorial",
    "question",
    "answer",
    "garçon",
    "naïve",
    "café",
    "über",
    "straße",
    "東京",
    "данные",
]
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash", "o4-mini"]
PROVIDERS = ["OPENAI", "OPENAI", "ANTHROPIC", "GOOGLE", "OPENAI"]


def load_sql(rows: int, span_days: int) -> str:
    words = "[" + ",".join(f"'{w}'" for w in WORDS) + "]"
    models = "[" + ",".join(f"'{m}'" for m in MODELS) + "]"
    providers = "[" + ",".join(f"'{p}'" for p in PROVIDERS) + "]"
    text = (
        f"arrayStringConcat(arrayMap(i -> {words}[(cityHash64(number, i) % {len(WORDS)}) + 1], "
        "range(70)), ' ')"
    )
    spacing_ms = max(span_days * 86_400_000 // rows, 1)
    return f"""
INSERT INTO request_response (request_id, organization_id, request_created_at, response_created_at,
  provider, model, request_model, response_model, target_url, request_path, method, status,
  latency, time_to_first_token, is_stream, user_id, properties, session_id, session_path,
  session_name, prompt_tokens, completion_tokens, prompt_cache_read_tokens, cost, pricing_status,
  request_body, response_body)
SELECT
  generateUUIDv4(number), {{org:UUID}},
  now64(3) - toIntervalMillisecond(number * {spacing_ms}),
  now64(3) - toIntervalMillisecond(number * {spacing_ms}) + toIntervalMillisecond(latency),
  {providers}[number % 5 + 1], {models}[number % 5 + 1], {models}[number % 5 + 1],
  {models}[number % 5 + 1], 'https://api.openai.com', '/v1/chat/completions', 'POST',
  if(number % 50 = 0, 500, if(number % 97 = 0, 429, 200)),
  200 + cityHash64(number, 'latency') % 4000 AS latency,
  50 + cityHash64(number, 'ttft') % 800, number % 3 = 0,
  concat('user-', toString(number % 5000)),
  map('environment', ['prod', 'staging', 'dev'][number % 3 + 1],
      'team', concat('team-', toString(number % 40))),
  concat('session-', toString(intDiv(number, 8))), concat('/plan/step-', toString(number % 8)),
  'agent', 100 + cityHash64(number, 'p') % 3000, 20 + cityHash64(number, 'c') % 800,
  cityHash64(number, 'cache') % 200,
  (100 + cityHash64(number, 'p') % 3000) * 150 + (20 + cityHash64(number, 'c') % 800) * 600,
  'priced',
  concat('{{"model": "', {models}[number % 5 + 1], '", "messages": [{{"role": "user", "content": "',
         {text}, ' #', toString(number), '"}}]}}'),
  concat('{{"choices": [{{"message": {{"role": "assistant", "content": "', {text}, '"}}}}]}}')
FROM numbers({rows})
"""


async def timed(
    session: aiohttp.ClientSession, method: str, url: str, body: Any, key: str, repeat: int
) -> dict[str, Any]:
    timings = []
    for index in range(repeat):
        started = time.perf_counter()
        sent = body(index) if callable(body) else body
        async with session.request(
            method, url, json=sent, headers={"Authorization": f"Bearer {key}"}
        ) as response:
            payload = await response.read()
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status} {payload[:300]!r}")
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 2),
        "p95_ms": round(timings[min(len(timings) - 1, int(0.95 * len(timings)))], 2),
    }


def queries(api: str, session_id: str, rows: int) -> dict[str, tuple[str, str, Any]]:
    now = dt.datetime.now(dt.UTC)
    week = {"start": (now - dt.timedelta(days=7)).isoformat(), "end": now.isoformat()}
    day = {
        "startTimeUnixMs": int((now - dt.timedelta(days=1)).timestamp() * 1000),
        "endTimeUnixMs": int(now.timestamp() * 1000),
    }
    return {
        "request page (newest 100)": (
            "POST",
            f"{api}/v1/request/query-clickhouse",
            {"filter": "all", "limit": 100, "includeBodies": False},
        ),
        "request page, filtered (user)": (
            "POST",
            f"{api}/v1/request/query-clickhouse",
            {
                "filter": {"request_response_rmt": {"user_id": {"equals": "user-42"}}},
                "limit": 100,
                "includeBodies": False,
            },
        ),
        "keyset page (1000)": ("POST", f"{api}/v1/request/page", {"limit": 1000}),
        # A different rare term each time: the engine's query condition cache cannot help, and
        # without the text index every body would be read.
        "body search (rare term, new each time)": (
            "POST",
            f"{api}/v1/request/query-clickhouse",
            lambda index: {
                "filter": {
                    "request_response_rmt": {
                        "request_body": {"contains": f'#{(index * 7_919_993) % rows}"'}
                    }
                },
                "limit": 20,
                "includeBodies": False,
            },
        ),
        "body search (common phrase)": (
            "POST",
            f"{api}/v1/request/query-clickhouse",
            {
                "filter": {
                    "request_response_rmt": {"request_body": {"contains": "kubernetes budget"}}
                },
                "limit": 20,
                "includeBodies": False,
            },
        ),
        "count, filtered (status)": (
            "POST",
            f"{api}/v1/request/count/query",
            {"filter": {"request_response_rmt": {"status": {"equals": 500}}}},
        ),
        "cost and latency totals (7 days)": (
            "POST",
            f"{api}/v1/metrics/totals",
            {"timeFilter": week},
        ),
        "cost over time (7 days, hour)": (
            "POST",
            f"{api}/v1/metrics/costOverTime",
            {"timeFilter": week, "dbIncrement": "hour"},
        ),
        "latency quantiles (7 days, day)": (
            "POST",
            f"{api}/v1/metrics/quantiles",
            {"timeFilter": week, "dbIncrement": "day"},
        ),
        "models breakdown": ("POST", f"{api}/v1/metrics/models", {"timeFilter": week}),
        "sessions list": (
            "POST",
            f"{api}/v1/session/query",
            {
                "limit": 50,
                "timeFilter": {
                    "startTimeUnixMs": int((now - dt.timedelta(days=1)).timestamp() * 1000),
                    "endTimeUnixMs": int(now.timestamp() * 1000),
                },
            },
        ),
        "session tree": ("GET", f"{api}/v1/session/{session_id}/tree", None),
        "session names": ("POST", f"{api}/v1/session/name/query", {"timeFilter": day}),
        "session metrics": ("POST", f"{api}/v1/session/metrics/query", {"timeFilter": day}),
        "user totals (7 days)": (
            "POST",
            f"{api}/v1/user/query",
            {
                "timeFilter": {
                    "startTimeUnixMs": day["startTimeUnixMs"] - 6 * 86_400_000,
                    "endTimeUnixMs": day["endTimeUnixMs"],
                }
            },
        ),
        "user metrics": (
            "POST",
            f"{api}/v1/user/metrics/query",
            {
                "limit": 50,
                "timeFilter": {
                    "startTimeUnixMs": int((now - dt.timedelta(days=1)).timestamp() * 1000),
                    "endTimeUnixMs": int(now.timestamp() * 1000),
                },
            },
        ),
        "property top costs": (
            "POST",
            f"{api}/v1/property/team/top-costs/query",
            {"timeFilter": week},
        ),
        "sql console (group by model)": (
            "POST",
            f"{api}/v1/helicone-sql/execute",
            {
                "sql": "SELECT model, count() AS n, sum(cost) AS cost "
                "FROM request_response GROUP BY model"
            },
        ),
    }


async def settle(executor: Any, timeout_s: float) -> float:
    """Wait for the merges a bulk load starts to finish (up to `timeout_s`), so queries are timed
    on a store at rest rather than competing with its own background merges for two cores."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        busy = await asyncio.to_thread(executor.query, "SELECT count() AS n FROM system.merges", {})
        if not busy[0]["n"]:
            break
        await asyncio.sleep(1)
    return time.perf_counter() - started


async def ingest_rate(running: server.Running, organization_id: str, records: int) -> float:
    writer = running.services.writer
    body = (
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
        + b"word " * 80
        + b'"}]}'
    )
    response = (
        b'{"model": "gpt-4o-mini-2024-07-18", "choices": [], '
        b'"usage": {"prompt_tokens": 90, "completion_tokens": 30}}'
    )
    started = time.perf_counter()
    for _ in range(records):
        now = dt.datetime.now(dt.UTC)
        writer.put(
            RequestRecord(
                str(uuid.uuid4()),
                organization_id,
                now,
                "OPENAI",
                "https://api.openai.com",
                "/v1/chat/completions",
                "POST",
                body,
                200,
                response,
                "",
                now,
                100,
                50,
            )
        )
        if writer.queue_depth > 50_000:
            await asyncio.sleep(0.01)
    while writer.queue_depth:  # noqa: ASYNC110 - polling a counter the writer owns
        await asyncio.sleep(0.05)
    await writer._flush_queue()
    return records / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--ingest", type=int, default=200_000)
    parser.add_argument("--settle-timeout", type=float, default=600)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "queries.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        settings = load_settings(
            {}, data_dir=Path(workdir), gateway_port=0, api_port=0, log_level="warning"
        )
        running = await server.start(settings)
        created = running.services.keys.create_organization("bench")
        executor = running.services.store.engine.executor
        started = time.perf_counter()
        await asyncio.to_thread(
            executor.command,
            load_sql(args.rows, 30).replace("{org:UUID}", f"toUUID('{created.organization_id}')"),
        )
        load_s = time.perf_counter() - started
        settle_s = await settle(executor, args.settle_timeout)
        parts = executor.query(
            "SELECT count() AS parts FROM system.parts WHERE table = 'request_response' AND active",
            {},
        )[0]["parts"]
        print(f"loaded {args.rows} rows in {load_s:.1f} s; merges settled after {settle_s:.0f} s")
        api = f"http://127.0.0.1:{running.api_port}"
        results: dict[str, Any] = {}
        async with aiohttp.ClientSession() as session:
            for name, (method, url, body) in queries(api, "session-3", args.rows).items():
                results[name] = await timed(
                    session, method, url, body, created.api_key, args.repeat
                )
                print(
                    f"{name:<36} p50 {results[name]['p50_ms']:>8.2f} ms"
                    f"   p95 {results[name]['p95_ms']:>8.2f} ms",
                    flush=True,
                )
        rate = await ingest_rate(running, created.organization_id, args.ingest)
        await running.stop()
    summary = {
        "rows": args.rows,
        "bulk_load_s": round(load_s, 1),
        "bulk_load_rows_per_s": round(args.rows / load_s),
        "merge_settle_s": round(settle_s),
        "active_parts": parts,
        "ingest_rows_per_s_through_writer": round(rate),
        "queries": results,
    }
    print(
        f"bulk load: {args.rows} rows in {load_s:.1f} s; "
        f"ingest through the writer: {rate:,.0f} rows/s"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
