"""Every way the SQL console was turned against its tenants, each refused with a clear 4xx before
the engine sees it, or stopped by an engine limit with a clean 4xx: machine readers, tables
reached through a CTE's name or `IN`, internal tables, SETTINGS/FORMAT/INTO, memory and time
bombs."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from typing import Any

import orjson
import pytest

from conftest import Heliograph
from heliograph.analytics.chdb_executor import ChdbExecutor
from records import stored_row

EXECUTE = "/v1/helicone-sql/execute"
# What a leaked engine error or file read would show.
ENGINE_TEXT = ("DB::", "Code:", "Exception", "/proc", "/tmp", "/etc", ".cpp", "Stack trace")


@pytest.fixture
def rival(heliograph: Heliograph, chdb_executor: ChdbExecutor) -> tuple[str, str]:
    """A second organization with rows, and a rollup row, of its own."""
    org, key = heliograph.new_organization("rival")
    rows = [
        stored_row(owner, model, user_id=model + "-user")
        for owner, model in ((heliograph.organization_id, "mine"), (org, "theirs-secret"))
    ]
    data = b"\n".join(orjson.dumps(row) for row in rows)
    chdb_executor.insert("request_response", data, uuid.uuid4().hex)
    return org, key


async def refused(
    heliograph: Heliograph, sql: str, status: int = 400, by_engine: bool = False
) -> str:
    """The console's refusal of `sql`: by its gate, so the engine never ran it (a query that got
    through would run: read a file, fetch a URL, sleep), or, with `by_engine`, by the engine."""
    engine = heliograph.running.services.store.engine
    ran: list[str] = []
    run = engine.console_rows

    async def recorded(statement: str, settings: dict[str, Any]) -> list[dict[str, Any]]:
        ran.append(statement)
        return await run(statement, settings)

    engine.console_rows = recorded  # type: ignore[method-assign, assignment]
    try:
        code, body = await heliograph.api_post(EXECUTE, {"sql": sql})
    finally:
        del engine.console_rows
    assert code == status, body
    assert bool(ran) is by_engine, ran
    error = str(body["error"])
    assert not any(text in error for text in ENGINE_TEXT), error
    return error


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
        "SELECT * FROM s3('http://127.0.0.1:9/b/k', 'CSV')",
        "SELECT * FROM remote('127.0.0.1', system.one)",
        "SELECT * FROM numbers(10)",
        "SELECT * FROM request_response WHERE 1 IN (SELECT * FROM numbers(1))",
    ],
)
async def test_table_functions_are_refused(heliograph: Heliograph, sql: str) -> None:
    assert "table functions" in await refused(heliograph, sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT file('/proc/self/environ') AS env",
        "SELECT lower(file('/proc/self/environ')) AS env",
        "SELECT `file`('/proc/self/environ') AS env",
        "SELECT FILE('/proc/self/environ') AS env",
        "SELECT arrayMap(p -> file(p), ['/proc/self/environ']) AS env",
        "SELECT model FROM request_response WHERE model != file('/etc/hostname')",
        "WITH file('/proc/self/environ') AS env SELECT env",
        "SELECT url('http://127.0.0.1:9/', 'LineAsString', 'x String') AS x",
        "SELECT getSetting('max_memory_usage') AS x",
        "SELECT dictGet('d', 'v', 1) AS x",
        "SELECT joinGet('request_rollup_hourly_mv', 'requests', 1) AS x",
        "SELECT sleep(1) AS x",
        "SELECT currentUser() AS x",
        "SELECT uniqCombinedState(user_id) AS x FROM request_response",
    ],
)
async def test_functions_outside_the_allow_list_are_refused_by_name(
    heliograph: Heliograph, sql: str
) -> None:
    error = await refused(heliograph, sql)
    assert "not available" in error or "not supported" in error, error
    assert os.environ.get("PATH", "PATH") not in error


@pytest.mark.parametrize(
    "sql",
    [
        # A CTE of that name exists, but not in scope where the table is read.
        "SELECT * FROM (WITH request_rollup_hourly_mv AS (SELECT 1 AS x) SELECT x FROM "
        "request_rollup_hourly_mv) AS a, request_rollup_hourly_mv",
        "SELECT model FROM request_response WHERE model IN (WITH heliograph_migrations AS "
        "(SELECT 'x') SELECT * FROM heliograph_migrations) OR model IN "
        "(SELECT name FROM heliograph_migrations)",
        # A scalar WITH names a value, not a table: the name still reads the table.
        "WITH (SELECT 1) AS request_rollup_hourly_mv SELECT * FROM request_rollup_hourly_mv",
        "WITH 'x' AS heliograph_migrations SELECT * FROM heliograph_migrations",
        "SELECT * FROM (WITH t AS (SELECT 1) SELECT * FROM t) UNION ALL "
        "SELECT toString(organization_id) FROM t",
        "SELECT model FROM request_response WHERE model IN system.tables",
        "SELECT model FROM request_response WHERE model IN heliograph_migrations",
        # The engine reads a lone name in parentheses after IN as a table, too.
        "SELECT model FROM request_response WHERE 'theirs-secret' IN (heliograph_migrations)",
        "SELECT model FROM request_response WHERE 'x' NOT IN ((system.tables))",
        "SELECT model FROM request_response AS r JOIN request_annotations AS a "
        "ON a.name IN (request_rollup_hourly_mv)",
        "SELECT model FROM request_response WHERE model IN (SELECT name FROM system.tables)",
        "SELECT * FROM request_rollup_hourly_mv",
        "SELECT * FROM `.inner_id.00000000-0000-0000-0000-000000000000`",
        "SELECT * FROM heliograph_migrations",
        "SELECT * FROM default.request_response",
        "SELECT system.tables.name FROM request_response",
    ],
)
async def test_tables_outside_the_allow_list_are_refused_wherever_they_appear(
    heliograph: Heliograph, rival: tuple[str, str], sql: str
) -> None:
    error = await refused(heliograph, sql)
    assert "theirs-secret" not in error


async def test_a_cte_is_only_a_cte_where_it_is_in_scope(
    heliograph: Heliograph, rival: tuple[str, str]
) -> None:
    sql = (
        "WITH request_response AS (SELECT 'cte' AS model) "
        "SELECT model FROM (SELECT model FROM request_response) "
        "UNION ALL SELECT model FROM request_response_rmt ORDER BY model"
    )
    code, body = await heliograph.api_post(EXECUTE, {"sql": sql})
    assert code == 200, body
    assert [row["model"] for row in body["data"]["rows"]] == ["cte", "mine"]


@pytest.mark.parametrize(
    ("sql", "said"),
    [
        ("SELECT * FROM request_response SETTINGS readonly = 0", "SETTINGS"),
        ("SELECT * FROM (SELECT * FROM request_response SETTINGS max_threads = 64)", "SETTINGS"),
        ("SELECT * FROM request_response FORMAT TabSeparated", "FORMAT"),
        ("SELECT * FROM request_response INTO OUTFILE '/tmp/heliograph-leak'", "INTO"),
        ("SELECT {org:String} AS x", "not supported"),
    ],
)
async def test_the_query_cannot_change_how_it_runs(
    heliograph: Heliograph, sql: str, said: str
) -> None:
    assert said in await refused(heliograph, sql)


@pytest.mark.parametrize(
    ("sql", "said"),
    [
        ("SELECT no_such_column FROM request_response", "unknown column or alias (no_such_column)"),
        ("SELECT toUInt8('x') AS v", "could not be converted"),
        ("SELECT lower(1) AS v", "wrong type"),
    ],
)
async def test_engine_errors_are_said_in_the_users_terms(
    heliograph: Heliograph, sql: str, said: str
) -> None:
    assert said in await refused(heliograph, sql, by_engine=True)


@pytest.fixture
def quick_limits(heliograph: Heliograph) -> None:
    """Engine limits small enough that a test hits them in about a second."""
    console = heliograph.running.services.sql
    console.limits = dataclasses.replace(console.limits, seconds=1)


async def test_a_memory_bomb_is_stopped_by_the_engine(
    heliograph: Heliograph, quick_limits: None
) -> None:
    sql = "SELECT length(arrayFlatten(arrayMap(x -> range(5000000), range(100)))) AS n"
    assert "memory" in await refused(heliograph, sql, by_engine=True)


async def test_a_long_query_is_stopped_by_the_engine(
    heliograph: Heliograph, quick_limits: None
) -> None:
    sql = (
        "SELECT sum(cityHash64(a, b)) AS h FROM (SELECT arrayJoin(range(100000)) AS a) AS x "
        "CROSS JOIN (SELECT arrayJoin(range(100000)) AS b) AS y"
    )
    started = time.perf_counter()
    code, body = await heliograph.api_post(EXECUTE, {"sql": sql})
    assert code == 400, body
    assert "longer than" in body["error"]  # the engine's time limit stopped it
    # Generous: proves the 1 s limit was the one applied, not the 5 s default (or none).
    assert time.perf_counter() - started < 3.0


async def test_results_are_capped_and_say_so(heliograph: Heliograph) -> None:
    code, body = await heliograph.api_post(EXECUTE, {"sql": "SELECT arrayJoin(range(20000)) AS n"})
    assert code == 200, body
    assert body["data"]["rowCount"] == 10_000
    assert body["data"]["truncated"] is True


async def test_the_documented_rollup_is_selectable(
    heliograph: Heliograph, rival: tuple[str, str]
) -> None:
    code, body = await heliograph.api_post(EXECUTE, {"sql": "SELECT * FROM request_rollup_hourly"})
    assert code == 200, body
    ((row,),) = [body["data"]["rows"]]
    assert row["model"] == "mine"
    assert row["requests"] == 1
    assert row["users"] == 1
    assert len(row["latency_digest"]) == 5
    sql = "SELECT model, sum(requests) AS n FROM request_rollup_hourly AS r GROUP BY r.model"
    code, body = await heliograph.api_post(EXECUTE, {"sql": sql})
    assert body["data"]["rows"] == [{"model": "mine", "n": 1}]


async def test_one_console_query_at_a_time_per_organization(
    heliograph: Heliograph, quick_limits: None
) -> None:
    slow = (
        "SELECT sum(cityHash64(a, b)) AS h FROM (SELECT arrayJoin(range(100000)) AS a) AS x "
        "CROSS JOIN (SELECT arrayJoin(range(100000)) AS b) AS y"
    )
    first = asyncio.create_task(heliograph.api_post(EXECUTE, {"sql": slow}))
    await _until_running(heliograph, first)
    code, body = await _post_with_headers(heliograph, "SELECT 1 AS one")
    assert code == 429, body
    assert body["headers"].get("Retry-After") == "1"
    assert (await first)[0] == 400  # stopped by the time limit
    code, body = await _post_with_headers(heliograph, "SELECT 1 AS one")
    assert code == 200, body


async def _post_with_headers(heliograph: Heliograph, sql: str) -> tuple[int, dict[str, Any]]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.post(
            heliograph.api + EXECUTE, json={"sql": sql}, headers=heliograph.auth()
        ) as response:
            body = await response.json()
            body["headers"] = dict(response.headers)
            return response.status, body


async def test_schema_lists_every_table_and_its_columns(heliograph: Heliograph) -> None:
    code, body = await heliograph.api_get("/v1/helicone-sql/schema")
    assert code == 200, body
    tables = {table["table_name"]: table["columns"] for table in body["data"]}
    assert set(tables) == {
        "request_response",
        "request_response_rmt",
        "request_annotations",
        "session_annotations",
        "request_rollup_hourly",
    }
    rollup = {column["name"]: column["type"] for column in tables["request_rollup_hourly"]}
    assert rollup["users"] == "Nullable(UInt64)"
    assert not any(kind.startswith("AggregateFunction") for kind in rollup.values())
    assert {"name": "model", "type": "LowCardinality(String)"} in tables["request_response"]


async def test_download_returns_the_result_as_csv(
    heliograph: Heliograph, rival: tuple[str, str]
) -> None:
    import aiohttp

    sql = {"sql": "SELECT model, count() AS n FROM request_response GROUP BY model"}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            heliograph.api + "/v1/helicone-sql/download", json=sql, headers=heliograph.auth()
        ) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/csv")
            assert "attachment" in response.headers["Content-Disposition"]
            assert await response.text() == '"model","n"\n"mine",1\n'
    code, body = await heliograph.api_post(
        "/v1/helicone-sql/download", {"sql": "SELECT file('/etc/passwd') AS x"}
    )
    assert code == 400
    assert "not available" in body["error"]


# An expression that fails only on a value another organization's rows hold: if the engine ran
# it on their rows, the failure itself would tell the value is there (an error oracle).
ORACLE = "intDiv(1, toInt64(position(user_id, 'theirs-secret') = 0)) >= 0"


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT count() AS n FROM request_response WHERE {ORACLE}",
        f"SELECT count() AS n FROM request_response AS a JOIN request_response AS b "
        f"ON a.request_id = b.request_id AND {ORACLE.replace('user_id', 'b.user_id')}",
        f"SELECT count() AS n FROM request_response WHERE user_id IN "
        f"(SELECT user_id FROM request_response WHERE {ORACLE})",
        f"SELECT count() AS n FROM request_response GROUP BY user_id "
        f"HAVING {ORACLE.replace('user_id', 'any(user_id)')}",
    ],
)
async def test_an_error_never_tells_what_other_organizations_rows_hold(
    heliograph: Heliograph, rival: tuple[str, str], sql: str
) -> None:
    code, body = await heliograph.api_post(EXECUTE, {"sql": sql})
    assert code == 200, body
    assert body["data"]["rows"], "the organization's own row is counted"


async def test_prewhere_is_refused(heliograph: Heliograph, rival: tuple[str, str]) -> None:
    error = await refused(heliograph, f"SELECT count() FROM request_response PREWHERE {ORACLE}")
    assert "PREWHERE" in error


async def test_deeply_nested_brackets_are_refused_before_parsing(heliograph: Heliograph) -> None:
    nested = "[" * 50 + ",".join(["1"] * 9900) + "]" * 50
    error = await refused(heliograph, f"SELECT {nested} AS x LIMIT 0")
    assert "nest" in error


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT leftPad('', 1000000, 'a') AS s",
        "SELECT positionCaseInsensitive(user_id, 'x') AS p FROM request_response",
    ],
)
async def test_functions_that_outrun_the_time_limit_are_refused(
    heliograph: Heliograph, sql: str
) -> None:
    assert "is not available in the console" in await refused(heliograph, sql)


async def _until_running(heliograph: Heliograph, first: asyncio.Task[Any]) -> None:
    """Until the engine lists the first query as running, so it holds the organization's turn."""
    engine = heliograph.running.services.store.engine
    scope = engine.scope(heliograph.organization_id)
    sql = (
        "SELECT count() AS n FROM system.processes "
        "WHERE query LIKE '%cityHash64(a, b)%' AND query NOT LIKE '%system.processes%'"
    )
    while not (await engine.read(scope, sql, {}))[0]["n"]:
        assert not first.done(), "the first query ended before it was seen running"
        await asyncio.sleep(0.01)
