"""`heliograph import helicone` on a generated Helicone export: rows made here are written by
ClickHouse itself (chDB) from a table in Helicone's exact `request_response_rmt` layout, as
`JSONEachRow` and as `CSVWithNames` (what `clickhouse-client --format CSVWithNames` and Helicone's
SQL console download print), and keys as PostgreSQL's `COPY helicone_api_keys ... CSV HEADER`
writes them. The import must give the export's request count, tokens and cost (in the rows and in
the hourly rollup), add nothing on a second run, count bad rows without stopping, and an
imported key must log through the gateway."""

from __future__ import annotations

import csv
import hashlib
import os
import random
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from click.testing import CliRunner

from conftest import Heliograph
from heliograph.analytics.chdb_executor import ChdbExecutor
from heliograph.analytics.store import AnalyticsStore
from heliograph.cli.main import cli
from heliograph.domain.queries import AggregateQuery, TimeRange
from heliograph.ingest.helicone_files import WrongLayout, request_rows
from heliograph.services.helicone_import import RequestImport, StrictStop, Tally

DATABASE = "helicone_export"
# Helicone's columns as schema_41 and the later ALTERs leave them (reference helicone.md, 6.1).
HELICONE_DDL = f"""
CREATE TABLE {DATABASE}.request_response_rmt
(
    response_id Nullable(UUID),
    response_created_at Nullable(DateTime64(3)),
    latency Nullable(Int64),
    status Int64,
    completion_tokens Nullable(Int64),
    prompt_tokens Nullable(Int64),
    prompt_cache_write_tokens Int64 DEFAULT 0,
    prompt_cache_read_tokens Int64 DEFAULT 0,
    prompt_audio_tokens Int64 DEFAULT 0,
    completion_audio_tokens Int64 DEFAULT 0,
    reasoning_tokens Int64 DEFAULT 0,
    model LowCardinality(String),
    gateway_endpoint_version String DEFAULT '',
    ai_gateway_body_mapping String DEFAULT '',
    request_id UUID,
    request_created_at DateTime64(3),
    user_id LowCardinality(String),
    organization_id UUID,
    proxy_key_id Nullable(UUID),
    threat Nullable(Bool),
    time_to_first_token Nullable(Int64),
    provider LowCardinality(String),
    target_url Nullable(String),
    country_code Nullable(String),
    properties Map(LowCardinality(String), String),
    scores Map(LowCardinality(String), Int64),
    request_body String DEFAULT '',
    response_body String DEFAULT '',
    cost Nullable(UInt64) DEFAULT 0,
    prompt_id String DEFAULT '',
    prompt_version String DEFAULT '',
    assets Array(String),
    cache_reference_id UUID,
    cache_enabled Bool DEFAULT false,
    request_referrer String DEFAULT '',
    is_passthrough_billing Bool DEFAULT false,
    storage_location LowCardinality(String) DEFAULT 's3',
    size_bytes UInt32 DEFAULT 0,
    updated_at DateTime64(3, 'UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(updated_at)
PARTITION BY toYYYYMM(request_created_at)
ORDER BY (organization_id, provider, model, user_id, request_created_at, request_id)
"""
KEY_COLUMNS = (
    "id",
    "api_key_hash",
    "api_key_name",
    "organization_id",
    "user_id",
    "key_permissions",
    "governance",
    "temp_key",
    "soft_delete",
    "created_at",
    "updated_at",
)
MODELS = [("OPENAI", "gpt-4o-mini"), ("OPENAI", "gpt-4o"), ("ANTHROPIC", "claude-3-5-sonnet")]
START = datetime(2025, 3, 1, tzinfo=UTC)
ZERO = "00000000-0000-0000-0000-000000000000"
UTC_SETTINGS = {"session_timezone": "UTC"}


@dataclass
class Totals:
    requests: int
    tokens: int
    cost_nano: int


def requests(count: int, seed: int = 7, helicone_org: str | None = None) -> list[dict[str, Any]]:
    """`count` Helicone rows (as JSON values), varied the ways real ones vary: failures without
    usage, cache hits, sessions, scores, quotes and non-ASCII text in maps and bodies."""
    rng = random.Random(seed)
    org = helicone_org or str(uuid.UUID(int=rng.getrandbits(128), version=4))
    rows = [_request(rng, org, i) for i in range(count)]
    for row in rows[5::50]:  # a few cache hits of an earlier request
        row["cache_reference_id"] = rows[0]["request_id"]
        row["cost"] = 0
    return rows


def _request(rng: random.Random, org: str, i: int) -> dict[str, Any]:
    provider, model = MODELS[i % len(MODELS)]
    created = START + timedelta(seconds=i * 37, milliseconds=rng.randrange(1000))
    latency = rng.randrange(50, 5000)
    failed = i % 17 == 3
    prompt, completion = rng.randrange(1, 4000), rng.randrange(1, 800)
    stream = i % 3 == 0
    request_body = {
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": f"question {i}: héllo ✓ \"quoted\" 'single'"}],
    }
    return {
        "response_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "response_created_at": _text(created + timedelta(milliseconds=latency)),
        "latency": latency,
        "status": 500 if failed else 200,
        "completion_tokens": None if failed else completion,
        "prompt_tokens": None if failed else prompt,
        "prompt_cache_write_tokens": 0 if failed else rng.randrange(0, 50),
        "prompt_cache_read_tokens": 0 if failed else rng.randrange(0, 500),
        "prompt_audio_tokens": 0,
        "completion_audio_tokens": 0,
        "reasoning_tokens": 0 if failed else rng.randrange(0, 100),
        "model": model,
        "request_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "request_created_at": _text(created),
        "user_id": f"user-{i % 13}",
        "organization_id": org,
        "proxy_key_id": None,
        "threat": None,
        "time_to_first_token": rng.randrange(10, 400) if stream else None,
        "provider": provider,
        "target_url": "https://api.openai.com/v1/chat/completions",
        "country_code": "DE",
        "properties": {
            "env": "prod" if i % 2 else "dev",
            "Helicone-Session-Id": f"session-{i % 7}",
            "Helicone-Session-Path": "/agent/step",
            "Helicone-Session-Name": "Agent",
            "note": "it's a \\ back, {braces}, comma, 'quote', ünï",
        },
        "scores": {"accuracy": i % 5} if i % 4 == 0 else {},
        "request_body": orjson.dumps(request_body).decode(),
        "response_body": "" if failed else f'{{"id":"chatcmpl-{i}","choices":[]}}',
        "cost": 0 if failed else rng.randrange(1, 10**7),
        "assets": [],
        "cache_reference_id": ZERO,
        "cache_enabled": i % 5 == 0,
        "updated_at": _text(created + timedelta(seconds=1)),
    }


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def totals(rows: list[dict[str, Any]]) -> Totals:
    """What the export holds, one row per request id (the newest version)."""
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:
        kept = newest.get(row["request_id"])
        if kept is None or row["updated_at"] >= kept["updated_at"]:
            newest[row["request_id"]] = row
    token_columns = (
        "prompt_tokens",
        "completion_tokens",
        "prompt_cache_read_tokens",
        "prompt_cache_write_tokens",
        "reasoning_tokens",
    )
    tokens = sum(row[c] or 0 for row in newest.values() for c in token_columns)
    cost = sum(row["cost"] or 0 for row in newest.values())
    return Totals(len(newest), tokens, cost)


def write_exports(executor: ChdbExecutor, rows: list[dict[str, Any]], directory: Path) -> Path:
    """`requests.jsonl` and `requests.csv` in `directory`, written by ClickHouse from the rows
    in Helicone's table; returns the directory."""
    executor.command(f"DROP DATABASE IF EXISTS {DATABASE}")
    executor.command(f"CREATE DATABASE {DATABASE}")
    try:
        executor.command(HELICONE_DDL)
        for start in range(0, len(rows), 10_000):
            data = b"\n".join(orjson.dumps(row) for row in rows[start : start + 10_000])
            executor.command(
                f"INSERT INTO {DATABASE}.request_response_rmt SETTINGS session_timezone = 'UTC' "
                f"FORMAT JSONEachRow\n{data.decode()}"
            )
        select = f"SELECT * FROM {DATABASE}.request_response_rmt"
        for name, fmt in (("requests.jsonl", "JSONEachRow"), ("requests.csv", "CSVWithNames")):
            exported = executor.query_bytes(select, {}, fmt, UTC_SETTINGS)
            (directory / name).write_bytes(exported)
    finally:
        executor.command(f"DROP DATABASE IF EXISTS {DATABASE}")
    return directory


def write_keys(path: Path, organization_id: str, keys: list[tuple[str, dict[str, str]]]) -> Path:
    """A `helicone_api_keys` CSV: one row per (clear key, column overrides); booleans as
    PostgreSQL's CSV writes them (`t`/`f`)."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(KEY_COLUMNS)
        for number, (key, overrides) in enumerate(keys):
            row = {
                "id": str(number + 1),
                "api_key_hash": hashlib.sha256(f"Bearer {key}".encode()).hexdigest(),
                "api_key_name": f"key {number}",
                "organization_id": organization_id,
                "user_id": str(uuid.uuid4()),
                "key_permissions": "rw",
                "governance": "f",
                "temp_key": "f",
                "soft_delete": "f",
                "created_at": "2024-11-02 10:11:12.123456+00",
                "updated_at": "2024-11-02 10:11:12.123456+00",
                **overrides,
            }
            writer.writerow([row[c] for c in KEY_COLUMNS])
    return path


LARGE = 50_000
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def export_totals(jsonl: Path) -> Totals:
    """The export's own count, tokens and cost, read from the file ClickHouse wrote."""
    return totals([_ints(orjson.loads(line)) for line in jsonl.read_bytes().splitlines()])


def _ints(row: dict[str, Any]) -> dict[str, Any]:
    # ClickHouse may quote 64-bit integers in JSON.
    for name in ("prompt_tokens", "completion_tokens", "prompt_cache_read_tokens", "cost"):
        row[name] = None if row[name] is None else int(row[name])
    for name in ("prompt_cache_write_tokens", "reasoning_tokens"):
        row[name] = int(row[name])
    return row


def run_import(store: AnalyticsStore, org: str, path: Path, tmp_path: Path, **kw: Any) -> Tally:
    importer = RequestImport(store, org, tmp_path / "bodies", 8 * 1024 * 1024, **kw)
    return importer.run(request_rows(path))


def stored_totals(executor: ChdbExecutor, org: str) -> Totals:
    row = executor.query(
        "SELECT count() AS n, sum(ifNull(prompt_tokens, 0) + ifNull(completion_tokens, 0)"
        " + prompt_cache_read_tokens + prompt_cache_write_tokens + reasoning_tokens) AS tokens,"
        " sum(cost) AS cost FROM request_response WHERE organization_id = {org:UUID}",
        {"org": org},
    )[0]
    return Totals(int(row["n"]), int(row["tokens"]), int(row["cost"]))


async def rollup_totals(store: AnalyticsStore, org: str, count: int) -> Totals:
    """The dashboard's totals over whole hours, which it reads from the hourly rollup."""
    end = START + timedelta(seconds=count * 37 + 7200)
    span = TimeRange(int(START.timestamp() * 1000), int(end.replace(minute=0).timestamp() * 1000))
    row = await store.aggregates.metric_totals(org, AggregateQuery(time=span))
    return Totals(int(row["requests"]), int(row["total_tokens"]), int(row["cost_nano"]))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_import_gives_the_exports_count_tokens_and_cost(
    fmt: str, store: AnalyticsStore, chdb_executor: ChdbExecutor, tmp_path: Path
) -> None:
    rows = requests(1500, seed=11)
    write_exports(chdb_executor, rows, tmp_path)
    expected = export_totals(tmp_path / "requests.jsonl")
    assert expected.requests == 1500
    org = str(uuid.uuid4())

    tally = run_import(store, org, tmp_path / f"requests.{fmt}", tmp_path)
    assert (tally.read, tally.imported, tally.refused) == (1500, 1500, 0)
    assert Totals(tally.imported, tally.tokens, tally.cost_nano) == expected
    assert stored_totals(chdb_executor, org) == expected
    assert await rollup_totals(store, org, len(rows)) == expected

    again = run_import(store, org, tmp_path / f"requests.{fmt}", tmp_path)
    assert (again.imported, again.present) == (0, 1500)
    assert stored_totals(chdb_executor, org) == expected
    assert await rollup_totals(store, org, len(rows)) == expected


async def test_rows_keep_what_helicone_recorded(
    store: AnalyticsStore, chdb_executor: ChdbExecutor, tmp_path: Path
) -> None:
    rows = requests(60, seed=3)
    write_exports(chdb_executor, rows, tmp_path)
    org = str(uuid.uuid4())
    run_import(store, org, tmp_path / "requests.csv", tmp_path)
    source = rows[12]  # a streamed request with a score
    stored = chdb_executor.query(
        "SELECT * FROM request_response WHERE organization_id = {org:UUID}"
        " AND request_id = {id:UUID}",
        {"org": org, "id": source["request_id"]},
    )[0]
    assert stored["properties"] == source["properties"]
    assert stored["session_id"] == "session-5"
    assert stored["session_path"] == "/agent/step"
    assert stored["user_id"] == source["user_id"]
    assert stored["is_stream"] is True
    assert stored["request_created_at"] == source["request_created_at"]
    assert stored["latency"] == source["latency"]
    assert orjson.loads(stored["request_body"]) == orjson.loads(source["request_body"])
    assert "héllo ✓" in stored["request_body"]  # searchable as text, not as escapes
    assert stored["request_path"] == "/v1/chat/completions"
    assert stored["pricing_status"] == "priced"
    scores = await store.annotations.scores(org, [source["request_id"]])
    assert scores == {source["request_id"]: {"accuracy": 2.0}}
    hit = chdb_executor.query(
        "SELECT toString(cache_reference_id) AS ref, cost FROM request_response"
        " WHERE organization_id = {org:UUID} AND request_id = {id:UUID}",
        {"org": org, "id": rows[5]["request_id"]},
    )[0]
    assert hit == {"ref": rows[0]["request_id"], "cost": 0}


async def test_large_bodies_go_to_body_files_and_versions_keep_the_newest(
    store: AnalyticsStore, tmp_path: Path
) -> None:
    rows = requests(3, seed=5)
    rows[0]["response_body"] = '{"text": "' + "x" * 200_000 + '"}'
    newer = {**rows[1], "updated_at": "2030-01-01 00:00:00.000", "scores": {"later": 1}}
    path = tmp_path / "requests.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(row) for row in [*rows, newer]))
    org = str(uuid.uuid4())
    importer = RequestImport(store, org, tmp_path / "bodies", 100_000)
    tally = importer.run(request_rows(path))
    assert (tally.imported, tally.present) == (3, 1)
    body_file = tmp_path / "bodies" / org / f"{rows[0]['request_id']}.json.zst"
    assert body_file.exists()
    scores = await store.annotations.scores(org, [rows[1]["request_id"]])
    assert scores == {rows[1]["request_id"]: {"later": 1.0}}


async def test_bad_rows_are_counted_by_line_and_the_rest_imported(
    store: AnalyticsStore, chdb_executor: ChdbExecutor, tmp_path: Path
) -> None:
    write_exports(chdb_executor, requests(20, seed=9), tmp_path)
    exported = (tmp_path / "requests.csv").read_bytes()
    header, first = _first_csv_row(tmp_path / "requests.csv")
    bad = [
        b'"only","three","fields"',
        _csv_line(header, {**first, "request_id": str(uuid.uuid4()), "user_id": "USERX"}).replace(
            b"USERX", b"us\xffer"
        ),
        _csv_line(header, {**first, "request_id": "not-a-uuid"}),
        _csv_line(header, {**first, "request_id": str(uuid.uuid4()), "request_created_at": "soon"}),
        _csv_line(header, {**first, "request_id": str(uuid.uuid4()), "properties": "{'broken"}),
        _csv_line(header, {**first, "request_id": str(uuid.uuid4()), "cost": "-5"}),
    ]
    path = tmp_path / "mixed.csv"
    path.write_bytes(exported + b"\n".join(bad) + b"\n")
    tally = run_import(store, str(uuid.uuid4()), path, tmp_path)
    assert (tally.read, tally.imported, tally.refused) == (26, 20, 6)
    assert tally.reasons[0] == "line 22: 3 fields where the header has 39"
    assert tally.reasons[1] == "line 23: not valid UTF-8"
    assert "request_id must be a UUID" in tally.reasons[2]
    assert "request_created_at must be a time" in tally.reasons[3]
    assert "properties is not a map" in tally.reasons[4]

    with pytest.raises(StrictStop, match="line 22"):
        run_import(store, str(uuid.uuid4()), path, tmp_path, strict=True)


async def test_bad_json_lines_are_counted(store: AnalyticsStore, tmp_path: Path) -> None:
    good = [orjson.dumps(row) for row in requests(4, seed=1)]
    path = tmp_path / "requests.jsonl"
    path.write_bytes(
        b"\n".join([good[0], b"{not json", b"[1, 2]", b'{"request_id": "\xff"}', *good[1:], b""])
    )
    tally = run_import(store, str(uuid.uuid4()), path, tmp_path)
    assert (tally.imported, tally.refused) == (4, 3)
    assert [reason.split(":")[0] for reason in tally.reasons] == ["line 2", "line 3", "line 4"]


def _first_csv_row(path: Path) -> tuple[list[str], dict[str, str]]:
    with path.open(newline="") as file:
        reader = csv.reader(file)
        header = next(reader)
        return header, dict(zip(header, next(reader), strict=True))


def _csv_line(header: list[str], values: dict[str, str]) -> bytes:
    return b",".join(b'"' + values[c].replace('"', '""').encode() + b'"' for c in header)


def test_a_file_that_is_not_an_export_is_one_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--data-dir", str(data), "--name", "acme"]).exit_code == 0
    other = tmp_path / "other.csv"
    other.write_text("id,name\n1,x\n")
    base = ["import", "helicone", "--data-dir", str(data)]
    result = runner.invoke(cli, [*base, "--org", "acme", "--requests", str(other)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: not a Helicone export: no column request_id, request_created_at, status, model,"
        " provider (the file has: id, name)"
    ]
    with pytest.raises(WrongLayout):
        next(request_rows(other))
    result = runner.invoke(cli, [*base, "--org", "nobody", "--requests", str(other)])
    assert result.exit_code == 1
    assert "no organization 'nobody'" in result.output
    result = runner.invoke(cli, [*base, "--org", "acme"])
    assert result.exit_code == 2
    assert "give --requests, --keys or both" in result.output


# The command line in its own process, as it runs for real (chDB allows one store per process).

# The peak is read from VmHWM: `ru_maxrss` would count the forked copy of pytest's own memory.
RUN_CLI = """
import sys
from heliograph.cli.main import cli
try:
    cli(sys.argv[1:])
finally:
    status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
    sys.stderr.write(f"peak_rss_kb={status}\\n")
"""
READ_STORE = """
import asyncio, json, sys
from heliograph.analytics.store import open_store
store = open_store("", __import__("pathlib").Path(sys.argv[1]))
rows = store.engine.executor.query(
    "SELECT count() AS n, sum(ifNull(prompt_tokens, 0) + ifNull(completion_tokens, 0)"
    " + prompt_cache_read_tokens + prompt_cache_write_tokens + reasoning_tokens) AS tokens,"
    " sum(cost) AS cost FROM request_response", {})
rollup = store.engine.executor.query(
    "SELECT sum(requests) AS n, sum(prompt_token_sum + completion_token_sum"
    " + cache_read_token_sum + cache_write_token_sum + reasoning_token_sum) AS tokens,"
    " sum(cost_nano) AS cost FROM request_rollup_hourly", {})
print(json.dumps([rows[0], rollup[0]]))
asyncio.run(store.close())
"""


def run_python(code: str, *args: str, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})},
        check=False,
    )


def read_store(analytics_dir: Path) -> list[Totals]:
    result = run_python(READ_STORE, str(analytics_dir))
    assert result.returncode == 0, result.stderr
    return [
        Totals(int(r["n"]), int(r["tokens"]), int(r["cost"])) for r in orjson.loads(result.stdout)
    ]


def test_cli_streams_a_large_export_and_a_second_run_adds_nothing(
    chdb_executor: ChdbExecutor, tmp_path: Path
) -> None:
    write_exports(chdb_executor, requests(LARGE, seed=21), tmp_path)
    expected = export_totals(tmp_path / "requests.jsonl")
    data = tmp_path / "data"
    assert (
        CliRunner().invoke(cli, ["init", "--data-dir", str(data), "--name", "acme"]).exit_code == 0
    )
    command = ["import", "helicone", "--data-dir", str(data), "--org", "acme"]

    first = run_python(RUN_CLI, *command, "--requests", str(tmp_path / "requests.csv"))
    assert first.returncode == 0, first.stderr
    assert f"{LARGE:,} read, {LARGE:,} imported, 0 already present" in first.stdout
    peak_kb = int(first.stderr.rsplit("peak_rss_kb=", 1)[1])
    # chDB alone takes about 300 MB; the batches keep the rest flat (about 600 MB at 50,000
    # rows, 680 MB at 200,000).
    assert peak_kb < 1_200_000, peak_kb
    assert read_store(data / "analytics") == [expected, expected]

    second = run_python(RUN_CLI, *command, "--requests", str(tmp_path / "requests.csv"))
    assert second.returncode == 0, second.stderr
    assert f"{LARGE:,} read, 0 imported, {LARGE:,} already present" in second.stdout
    assert read_store(data / "analytics") == [expected, expected]


async def test_refused_in_one_line_while_serve_holds_the_store(
    heliograph: Heliograph, chdb_executor: ChdbExecutor, analytics_dir: Path, tmp_path: Path
) -> None:
    write_exports(chdb_executor, requests(10), tmp_path)
    settings = heliograph.running.services.settings
    result = run_python(
        RUN_CLI,
        *["import", "helicone", "--data-dir", str(settings.data_dir)],
        *["--org", heliograph.organization_id, "--requests", str(tmp_path / "requests.csv")],
        env={"HELIOGRAPH_ANALYTICS_DIR": str(analytics_dir)},
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if not line.startswith("peak_rss_kb")]
    assert len(lines) == 1, result.stderr
    assert "is open in another process" in lines[0]
    assert "heliograph serve" in lines[0]


async def test_imported_keys_log_through_the_gateway(
    heliograph_on_each_db: Heliograph, tmp_path: Path
) -> None:
    heliograph = heliograph_on_each_db
    from heliograph.domain.keys import generate_key

    active, read_only, deleted, temporary = (generate_key() for _ in range(4))
    path = write_keys(
        tmp_path / "helicone_api_keys.csv",
        str(uuid.uuid4()),
        [
            (active, {"api_key_name": "production"}),
            (read_only, {"key_permissions": "r"}),
            (deleted, {"soft_delete": "t"}),
            (temporary, {"temp_key": "true"}),
            ("unused", {"api_key_hash": "not-a-hash"}),
        ],
    )
    settings = heliograph.running.services.settings
    command = ["import", "helicone", "--data-dir", str(settings.data_dir), "--keys", str(path)]
    runner = CliRunner(env={"HELIOGRAPH_DATABASE_URL": settings.resolved_database_url})
    result = runner.invoke(cli, [*command, "--org", heliograph.organization_id])
    assert result.exit_code == 0, result.output
    assert "keys: 5 read, 2 imported, 0 already present, 2 skipped, 1 refused" in result.output
    assert "line 6: api_key_hash must be 64 hexadecimal characters" in result.output

    url = f"{heliograph.gateway}/openai/v1/chat/completions"
    async with aiohttp.ClientSession() as session:
        for key, expected in ((active, 200), (read_only, 403), (deleted, 401), (temporary, 401)):
            headers = {"Helicone-Auth": f"Bearer {key}"}
            async with session.post(url, json=CHAT, headers=headers) as response:
                assert response.status == expected, key
                if expected == 200:
                    logged = response.headers["Helicone-Id"]
    row = await heliograph.wait_for(logged)
    assert row["model"].startswith("gpt-4o-mini")
    names = {
        k.name: k.permissions
        for k in heliograph.running.services.keys.list_keys(heliograph.organization_id)
    }
    assert names["production"] == "rw"

    again = runner.invoke(cli, [*command, "--org", heliograph.organization_id])
    assert "keys: 5 read, 0 imported, 2 already present" in again.output
    other_org, _ = heliograph.new_organization("elsewhere")
    elsewhere = runner.invoke(cli, [*command, "--org", "elsewhere"])
    assert "2 belong to another organization" in elsewhere.output
    assert heliograph.running.services.keys.list_keys(other_org)[0].name == "default"
