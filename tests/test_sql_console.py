"""The SQL console: SELECTs over the caller's own rows only, enforced by the engine; everything
else is a 400 that says why."""

from __future__ import annotations

import uuid

import orjson
import pytest

from conftest import Heliograph
from heliograph.analytics.chdb_executor import ChdbExecutor
from heliograph.domain.sql_console import RejectedQuery, checked_select
from records import stored_row


@pytest.fixture
def two_orgs(heliograph: Heliograph, chdb_executor: ChdbExecutor) -> str:
    other_org, other_key = heliograph.new_organization("rival")
    lines = []
    for org, model, count in ((heliograph.organization_id, "mine", 3), (other_org, "theirs", 2)):
        for _ in range(count):
            lines.append(orjson.dumps(stored_row(org, model)))
    chdb_executor.insert("request_response", b"\n".join(lines), uuid.uuid4().hex)
    return other_key


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT model, count() AS n FROM request_response GROUP BY model",
        "SELECT model, count() AS n FROM request_response_rmt GROUP BY model",
        "SELECT model, count() AS n FROM (SELECT * FROM request_response) GROUP BY model",
        "WITH r AS (SELECT model FROM request_response AS x) "
        "SELECT model, count() AS n FROM r GROUP BY model",
        "SELECT model, count() AS n FROM request_response "
        "WHERE organization_id != toUUID('00000000-0000-0000-0000-000000000000') GROUP BY model",
    ],
)
async def test_only_the_callers_rows_are_visible(
    heliograph: Heliograph, two_orgs: str, sql: str
) -> None:
    status, body = await heliograph.api_post("/v1/helicone-sql/execute", {"sql": sql})
    assert status == 200, body
    assert body["data"]["rows"] == [{"model": "mine", "n": 3}]
    assert body["data"]["rowCount"] == 1
    status, body = await heliograph.api_post("/v1/helicone-sql/execute", {"sql": sql}, key=two_orgs)
    assert body["data"]["rows"] == [{"model": "theirs", "n": 2}]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("INSERT INTO request_response (model) VALUES ('x')", "only SELECT"),
        ("DROP TABLE request_response", "only SELECT"),
        ("SELECT 1; SELECT 2", "exactly one"),
        ("SELECT * FROM system.tables", "only your own tables"),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table functions"),
        ("SELECT * FROM numbers(10)", "table functions"),
        ("SELECT * FROM heliograph_migrations", "unknown table"),
        ("SELECT * FROM request_response SETTINGS additional_table_filters = {}", "SETTINGS"),
        ("SELECT no_such_column FROM request_response", "no_such_column"),
        ("SELEC broken", "only SELECT"),
        ("SELECT (", "parse"),
    ],
)
async def test_everything_else_is_a_clear_400(
    heliograph: Heliograph, two_orgs: str, sql: str, message: str
) -> None:
    status, body = await heliograph.api_post("/v1/helicone-sql/execute", {"sql": sql})
    assert status == 400, body
    assert message.lower() in body["error"].lower()


def test_what_runs_is_the_checked_tree() -> None:
    assert checked_select("select 1 as x -- comment") == "SELECT 1 AS x"
    with pytest.raises(RejectedQuery):
        checked_select("SELECT * FROM (SELECT * FROM remote('h', db.t))")


async def test_session_annotations_are_scoped_too(
    heliograph: Heliograph, chdb_executor: ChdbExecutor
) -> None:
    other_org, other_key = heliograph.new_organization("rival")
    rows = [
        {
            "organization_id": org,
            "session_id": name,
            "kind": "tag",
            "value": name,
            "created_at": "2026-03-10 10:00:00.000",
        }
        for org, name in ((heliograph.organization_id, "mine"), (other_org, "theirs"))
    ]
    data = b"\n".join(orjson.dumps(row) for row in rows)
    chdb_executor.insert("session_annotations", data, uuid.uuid4().hex)
    sql = {"sql": "SELECT session_id FROM session_annotations"}
    _, body = await heliograph.api_post("/v1/helicone-sql/execute", sql)
    assert body["data"]["rows"] == [{"session_id": "mine"}]
    _, body = await heliograph.api_post("/v1/helicone-sql/execute", sql, key=other_key)
    assert body["data"]["rows"] == [{"session_id": "theirs"}]
