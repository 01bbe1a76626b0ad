"""The hourly rollup's backfill (schema 0009, which rebuilt 0006's) summarises stored requests
exactly as its materialized view summarises new ones."""

from __future__ import annotations

import uuid

import orjson

from heliograph.analytics.chdb_executor import ChdbExecutor
from heliograph.analytics.migrate import apply_migrations, schema_files, statements

SUMS = (
    "requests, cost_nano, prompt_token_sum, completion_token_sum, cache_read_token_sum, "
    "cache_write_token_sum, reasoning_token_sum, latency_sum, ttft_sum, ttft_count, cache_hits"
)


def backfill_for(organization_id: str) -> str:
    """The latest backfill statement, limited to one organization so other tests' rows stay as
    they are in the shared store."""
    (sql,) = [sql for number, _, sql in schema_files() if number == 9]
    backfill = statements(sql)[-1]
    assert backfill.startswith("INSERT INTO request_rollup_hourly")
    scoped = f"FROM request_response\nWHERE organization_id = toUUID('{organization_id}')\nGROUP BY"
    limited = backfill.replace("FROM request_response\nGROUP BY", scoped)
    assert scoped in limited
    return limited


def test_backfill_adds_what_the_view_added(chdb_executor: ChdbExecutor) -> None:
    apply_migrations(chdb_executor)
    org = str(uuid.uuid4())
    rows = [
        {
            "request_id": str(uuid.uuid4()),
            "organization_id": org,
            "request_created_at": f"2026-02-0{1 + index % 3} 1{index % 4}:00:00.000",
            "provider": "OPENAI",
            "model": ["gpt-4o", "gpt-4o-mini"][index % 2],
            "status": [200, 500][index % 5 == 0],
            "latency": 10 * index,
            "time_to_first_token": None if index % 3 else index,
            "is_stream": False,
            "user_id": f"user-{index % 4}",
            "prompt_tokens": index,
            "completion_tokens": 2 * index,
            "prompt_cache_read_tokens": index % 7,
            "prompt_cache_write_tokens": index % 5,
            "reasoning_tokens": index % 3,
            "cost": 1000 * index,
            "pricing_status": "priced",
        }
        for index in range(60)
    ]
    chdb_executor.insert("request_response", b"\n".join(map(orjson.dumps, rows)), org)
    sums = ", ".join(f"sum({column}) AS {column}" for column in SUMS.split(", "))
    by_group = (
        f"SELECT hour, provider, model, status, {sums}, "
        "uniqCombinedMerge(users) AS users FROM request_rollup_hourly "
        "WHERE organization_id = {org:UUID} GROUP BY hour, provider, model, status "
        "ORDER BY hour, provider, model, status"
    )
    from_view = chdb_executor.query(by_group, {"org": org})
    assert sum(group["requests"] for group in from_view) == len(rows)

    chdb_executor.command(backfill_for(org))
    doubled = chdb_executor.query(by_group, {"org": org})
    assert len(doubled) == len(from_view)
    for view_group, both in zip(from_view, doubled, strict=True):
        for column in SUMS.split(", "):
            assert both[column] == 2 * view_group[column], column
        assert both["users"] == view_group["users"]
