"""Hypothesis over the console's grammar: random SELECTs (every table, columns, allowed functions,
CTEs, subqueries, IN, joins, UNION ALL) run as organization B never return, nor mention in an
error, a value that only organization A's rows hold."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heliograph.analytics.chdb_executor import ChdbExecutor, open_chdb, release_chdb
from heliograph.analytics.console import ConsoleLimits, console_settings
from heliograph.analytics.executor import StoreUnavailable
from heliograph.analytics.migrate import apply_migrations
from heliograph.analytics.scope import scope_of
from heliograph.domain.sql_console import RejectedQuery, checked_select
from heliograph.services.sql_console import engine_message

ORG_A, ORG_B = str(uuid.uuid4()), str(uuid.uuid4())
MARK_A, MARK_B = "alpha" + uuid.uuid4().hex[:10], "bravo" + uuid.uuid4().hex[:10]
LIMITS = ConsoleLimits(seconds=2, result_rows=1000)

# String-valued expressions per table, as a query over that table can write them.
COLUMNS = {
    "request_response": [
        "model",
        "user_id",
        "request_body",
        "session_id",
        "toString(properties)",
        "toString(organization_id)",
        "toString(request_id)",
    ],
    "request_response_rmt": ["model", "user_id", "response_body", "toString(organization_id)"],
    "request_annotations": ["name", "toString(request_id)", "toString(organization_id)"],
    "session_annotations": ["session_id", "value", "toString(organization_id)"],
    "request_rollup_hourly": ["model", "provider", "toString(organization_id)", "toString(users)"],
}
# Names a CTE or IN may use: the console's tables and tables it must never reach.
NAMES = [
    "c",
    "request_response",
    "request_annotations",
    "request_rollup_hourly_mv",
    "heliograph_migrations",
]
SCALARS = ["lower({})", "upper({})", "concat({}, '-')", "substring({}, 1, 40)", "trim({})", "{}"]
AGGREGATES = ["any({})", "max({})", "toString(groupArray({}))", "argMax({}, {})", "min({})"]


@pytest.fixture(scope="module")
def executor(analytics_dir: Path) -> Iterator[ChdbExecutor]:
    executor = open_chdb(analytics_dir)
    apply_migrations(executor)
    seed(executor)
    yield executor
    release_chdb(executor)


def seed(executor: ChdbExecutor) -> None:
    requests, annotations, sessions = [], [], []
    for org, mark in ((ORG_A, MARK_A), (ORG_B, MARK_B)):
        for index in range(3):
            request_id = str(uuid.uuid4())
            requests.append(
                {
                    "request_id": request_id,
                    "organization_id": org,
                    "request_created_at": f"2026-03-10 1{index}:00:00.000",
                    "provider": "OPENAI",
                    "model": f"{mark}-model",
                    "status": 200,
                    "latency": 5,
                    "is_stream": False,
                    "pricing_status": "priced",
                    "user_id": f"{mark}-user",
                    "session_id": f"{mark}-session",
                    "properties": {"team": f"{mark}-team"},
                    "request_body": f'{{"q": "{mark}-body"}}',
                    "response_body": f'{{"a": "{mark}-answer"}}',
                }
            )
            annotations.append(
                {
                    "organization_id": org,
                    "request_id": request_id,
                    "name": f"{mark}-score",
                    "value": 1.0,
                    "created_at": "2026-03-10 10:00:00.000",
                    "source": "api",
                }
            )
        sessions.append(
            {
                "organization_id": org,
                "session_id": f"{mark}-session",
                "kind": "tag",
                "value": f"{mark}-tag",
                "created_at": "2026-03-10 10:00:00.000",
            }
        )
    for table, rows in (
        ("request_response", requests),
        ("request_annotations", annotations),
        ("session_annotations", sessions),
    ):
        data = b"\n".join(orjson.dumps(row) for row in rows)
        executor.insert(table, data, uuid.uuid4().hex)


@st.composite
def selects(draw: st.DrawFn, depth: int = 2) -> str:
    """`SELECT <string> AS v FROM <source> [WHERE ...] [LIMIT n]`, sources nesting to `depth`."""
    source, columns = draw(sources(depth))
    column = draw(st.sampled_from(columns))
    if draw(st.booleans()):
        expression = draw(st.sampled_from(AGGREGATES)).format(column, column)
    else:
        expression = draw(st.sampled_from(SCALARS)).format(column)
    sql = f"SELECT toString({expression}) AS v FROM {source}"
    if depth > 0 and draw(st.booleans()):
        other = draw(selects(depth - 1))
        sql += f" WHERE {column} {draw(st.sampled_from(['IN', 'NOT IN']))} ({other})"
    elif draw(st.integers(0, 5)) == 5:  # the engine reads `IN (name)` as a whole table
        sql += f" WHERE {column} IN ({draw(st.sampled_from(NAMES))})"
    if depth > 0 and draw(st.booleans()):
        sql = f"{sql} UNION ALL {draw(selects(depth - 1))}"
    return sql


@st.composite
def sources(draw: st.DrawFn, depth: int) -> tuple[str, list[str]]:
    kinds = ["table", "join"] + (["subquery", "cte"] if depth > 0 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "table":
        table = draw(st.sampled_from(sorted(COLUMNS)))
        return table, COLUMNS[table]
    if kind == "join":
        left = draw(st.sampled_from(["request_response", "request_response_rmt"]))
        how = draw(st.sampled_from(["JOIN", "LEFT JOIN", "FULL JOIN"]))
        joined = f"{left} AS l {how} request_annotations AS r ON l.request_id = r.request_id"
        return joined, ["l.model", "r.name", "toString(r.organization_id)", "l.user_id"]
    inner = draw(selects(depth - 1))
    if kind == "subquery":
        return f"({inner}) AS s", ["v"]
    name = draw(st.sampled_from(NAMES))
    if draw(st.integers(0, 3)) == 3:  # a scalar WITH names a value, never a table
        return f"(WITH ({inner}) AS {name} SELECT v FROM {name}) AS w", ["v"]
    return f"(WITH {name} AS ({inner}) SELECT v FROM {name}) AS w", ["v"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sql=selects())
def test_random_selects_never_see_another_organization(executor: ChdbExecutor, sql: str) -> None:
    try:
        checked = checked_select(sql)
    except RejectedQuery:
        return  # the gate answers from the query's text alone
    statement = f"SELECT * FROM ({checked}) LIMIT {LIMITS.result_rows}"
    try:
        rows = executor.query(
            statement, {}, console_settings(scope_of(ORG_B), LIMITS, server=False)
        )
    except StoreUnavailable as error:
        message = engine_message(str(error), LIMITS)
        assert MARK_A not in message
        assert ORG_A not in message
        return
    seen = orjson.dumps(rows).decode()
    assert MARK_A not in seen, (sql, seen[:500])
    assert ORG_A not in seen, (sql, seen[:500])


def test_each_organization_sees_its_own_markers(executor: ChdbExecutor) -> None:
    """The same shapes do return the caller's own rows, so the test above could see a leak."""
    sql = checked_select(
        "SELECT DISTINCT model AS v FROM request_response WHERE model LIKE '%-model'"
    )
    for org, mark in ((ORG_A, MARK_A), (ORG_B, MARK_B)):
        rows = executor.query(sql, {}, console_settings(scope_of(org), LIMITS, server=False))
        assert rows == [{"v": f"{mark}-model"}]
