"""Dashboard metrics: totals, series bucketed by minute to year in the caller's time zone,
quantiles and per-model breakdowns. Built on `aggregates.scoped_where`, so every statement is
scoped to one organization."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.aggregates import AggregateQuery, scoped_where

BUCKETS = {
    "min": "toStartOfMinute",
    "hour": "toStartOfHour",
    "day": "toStartOfDay",
    "week": "toMonday",
    "month": "toStartOfMonth",
    "year": "toStartOfYear",
}
# name -> (SELECT expressions, extra WHERE condition)
SERIES = {
    "requests": ("count() AS count", ""),
    "cost": ("sum(cost) AS cost_nano", ""),
    "latency": ("avg(latency) AS duration", ""),
    "tokens": (
        "sum(ifNull(prompt_tokens, 0)) AS prompt_tokens, "
        "sum(ifNull(completion_tokens, 0)) AS completion_tokens",
        "",
    ),
    "ttft": ("avg(time_to_first_token) AS ttft", "time_to_first_token IS NOT NULL"),
    "users": ("uniqExact(user_id) AS count", "user_id != ''"),
    "errors": ("count() AS count", "(status >= 400 OR status < 0)"),
    "status": ("status, count() AS count", ""),
}
QUANTILE_METRICS = {
    "latency": "latency",
    "time_to_first_token": "time_to_first_token",
    "total_tokens": "ifNull(prompt_tokens, 0) + ifNull(completion_tokens, 0)",
}
QUANTILES = "quantiles(0.5, 0.75, 0.9, 0.95, 0.99)"

TOTALS = (
    "count() AS requests, sum(cost) AS cost_nano, "
    "sum(ifNull(prompt_tokens, 0)) AS prompt_tokens, "
    "sum(ifNull(completion_tokens, 0)) AS completion_tokens, "
    "avg(latency) AS avg_latency, avg(time_to_first_token) AS avg_ttft, "
    "uniqExactIf(user_id, user_id != '') AS active_users, "
    "countIf(status >= 400 OR status < 0) AS errors, "
    "countIf(cache_reference_id != toUUID('00000000-0000-0000-0000-000000000000')) AS cache_hits, "
    "sum(cache_saved_cost) AS cache_saved_cost_nano, "
    "sum(cache_saved_latency) AS cache_saved_latency_ms"
)


def bucket(increment: str) -> str:
    """The start of the request's `increment` in the caller's time zone, as a UTC time."""
    function = BUCKETS[increment]
    return (
        f"addMinutes(toDateTime({function}(addMinutes(request_created_at, -{{tz:Int32}})), 'UTC'), "
        "{tz:Int32})"
    )


def totals_sql(organization_id: str, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    where, params = scoped_where(organization_id, query)
    return f"SELECT {TOTALS} FROM request_response WHERE {where}", params


def series_sql(
    organization_id: str, query: AggregateQuery, name: str, increment: str, tz_minutes: int
) -> tuple[str, dict[str, Any]]:
    columns, condition = SERIES[name]
    where, params = scoped_where(organization_id, query, condition)
    params["tz"] = tz_minutes
    group = "time, status" if name == "status" else "time"
    sql = (
        f"SELECT {bucket(increment)} AS time, {columns} FROM request_response WHERE {where} "
        f"GROUP BY {group} ORDER BY {group} LIMIT 100000"
    )
    return sql, params


def quantiles_sql(
    organization_id: str, query: AggregateQuery, metric: str, increment: str, tz_minutes: int
) -> tuple[str, dict[str, Any]]:
    expression = QUANTILE_METRICS[metric]
    where, params = scoped_where(organization_id, query, f"({expression}) IS NOT NULL")
    params["tz"] = tz_minutes
    sql = (
        f"SELECT {bucket(increment)} AS time, {QUANTILES}({expression}) AS values "
        f"FROM request_response WHERE {where} GROUP BY time ORDER BY time LIMIT 100000"
    )
    return sql, params


def models_sql(organization_id: str, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    where, params = scoped_where(organization_id, query)
    sql = (
        "SELECT model, provider, count() AS total_requests, "
        "sum(ifNull(prompt_tokens, 0)) AS prompt_tokens, "
        "sum(ifNull(completion_tokens, 0)) AS completion_tokens, sum(cost) AS cost_nano, "
        f"avg(latency) AS avg_latency FROM request_response WHERE {where} "
        "GROUP BY model, provider ORDER BY cost_nano DESC, total_requests DESC, model "
        "LIMIT {limit:UInt32} OFFSET {offset:UInt32}"
    )
    params.update(limit=query.limit, offset=query.offset)
    return sql, params
