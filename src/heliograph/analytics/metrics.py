"""Dashboard metrics: totals, series bucketed by minute to year in the caller's time zone,
quantiles and per-model breakdowns. Every statement reads `rollup.summary_source`, which is
scoped to one organization and takes whole hours from the hourly rollup."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.aggregates import paged, scoped_where
from heliograph.analytics.definitions import newest_values_sql
from heliograph.analytics.filter_sql import ZERO_UUID_SQL
from heliograph.analytics.rollup import summary_source
from heliograph.analytics.scope import Scope
from heliograph.domain.queries import INCREMENTS, QUANTILE_METRICS, AggregateQuery

BUCKETS = {
    "min": "toStartOfMinute",
    "hour": "toStartOfHour",
    "day": "toStartOfDay",
    "week": "toMonday",
    "month": "toStartOfMonth",
    "year": "toStartOfYear",
}
assert tuple(BUCKETS) == INCREMENTS
# Every token count over summary rows; the total adds the five sums, as `USAGE_TOTAL_SQL` adds
# a request's five counts.
USAGE_TOTALS = (
    "sum(prompt_token_sum) AS prompt_tokens, sum(completion_token_sum) AS completion_tokens, "
    "sum(cache_read_token_sum) AS prompt_cache_read_tokens, "
    "sum(cache_write_token_sum) AS prompt_cache_write_tokens, "
    "sum(reasoning_token_sum) AS reasoning_tokens, "
    "sum(prompt_token_sum + completion_token_sum + cache_read_token_sum + cache_write_token_sum "
    "+ reasoning_token_sum) AS total_tokens"
)
# name -> (SELECT expressions over summary rows, HAVING condition that drops empty buckets)
SERIES = {
    "requests": ("sum(requests) AS count", ""),
    "cost": ("sum(cost_nano) AS cost_nano", ""),
    "latency": ("sum(latency_sum) / sum(requests) AS duration", ""),
    "tokens": (USAGE_TOTALS, ""),
    "ttft": ("sum(ttft_sum) / sum(ttft_count) AS ttft", "sum(ttft_count) > 0"),
    "users": ("ifNull(uniqCombinedMerge(users), 0) AS count", "count > 0"),
    "errors": ("sumIf(requests, status >= 400 OR status < 0) AS count", "count > 0"),
    "status": ("status, sum(requests) AS count", ""),
    "model_usage": (
        "model, sum(requests) AS request_count, sum(prompt_token_sum + completion_token_sum "
        "+ cache_read_token_sum + cache_write_token_sum + reasoning_token_sum) AS total_tokens",
        "",
    ),
    "cache": (
        "sum(cache_hits) AS hits, sum(saved_cost_nano) AS cost_nano, "
        "sum(saved_latency_ms) AS saved_latency_ms",
        "",
    ),
}
# Series with more than one point per bucket, and what else they group by.
SERIES_GROUPS = {"status": "time, status", "model_usage": "time, model"}
QUANTILE_DIGESTS = {
    "latency": ("latency_digest", ""),
    "time_to_first_token": ("ttft_digest", "sum(ttft_count) > 0"),
    "total_tokens": ("tokens_digest", ""),
}
assert tuple(QUANTILE_DIGESTS) == QUANTILE_METRICS
MERGE_QUANTILES = "quantilesTDigestMerge(0.5, 0.75, 0.9, 0.95, 0.99)"

TOTALS = (
    f"sum(requests) AS requests, sum(cost_nano) AS cost_nano, {USAGE_TOTALS}, "
    "if(sum(requests) = 0, NULL, sum(latency_sum) / sum(requests)) AS avg_latency, "
    "if(sum(ttft_count) = 0, NULL, sum(ttft_sum) / sum(ttft_count)) AS avg_ttft, "
    "ifNull(uniqCombinedMerge(users), 0) AS active_users, "
    "sumIf(requests, status >= 400 OR status < 0) AS errors, sum(cache_hits) AS cache_hits, "
    "sum(saved_cost_nano) AS cache_saved_cost_nano, "
    "sum(saved_latency_ms) AS cache_saved_latency_ms"
)


def bucket(increment: str, column: str = "request_created_at") -> str:
    """The start of `column`'s `increment` in the caller's time zone, as a UTC time."""
    function = BUCKETS[increment]
    return (
        f"addMinutes(toDateTime({function}(addMinutes({column}, -{{tz:Int32}})), 'UTC'), "
        "{tz:Int32})"
    )


def _source(
    scope: Scope, query: AggregateQuery, increment: str = "hour", tz_minutes: int = 0
) -> tuple[str, dict[str, Any]]:
    # Hour summaries fit every bucket of an hour or more when the zone is whole hours from UTC.
    by_minute = increment == "min" or tz_minutes % 60 != 0
    return summary_source(scope, query, by_minute)


def totals_sql(scope: Scope, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    source, params = _source(scope, query)
    return f"SELECT {TOTALS} FROM ({source})", params


def series_sql(
    scope: Scope, query: AggregateQuery, name: str, increment: str, tz_minutes: int
) -> tuple[str, dict[str, Any]]:
    columns, having = SERIES[name]
    group = SERIES_GROUPS.get(name, "time")
    return _per_bucket(scope, query, increment, tz_minutes, columns, having, group)


def quantiles_sql(
    scope: Scope, query: AggregateQuery, metric: str, increment: str, tz_minutes: int
) -> tuple[str, dict[str, Any]]:
    digest, having = QUANTILE_DIGESTS[metric]
    columns = f"{MERGE_QUANTILES}({digest}) AS values"
    return _per_bucket(scope, query, increment, tz_minutes, columns, having)


# The home page's charts in one pass over the summaries: each bucket's requests, errors, cost,
# tokens, time to first token and latency quantiles (seven series, one statement).
DASHBOARD_SERIES = (
    "sum(requests) AS count, sumIf(requests, status >= 400 OR status < 0) AS errors, "
    "sum(cost_nano) AS cost_nano, sum(prompt_token_sum) AS prompt_tokens, "
    "sum(completion_token_sum) AS completion_tokens, "
    "if(sum(ttft_count) = 0, NULL, sum(ttft_sum) / sum(ttft_count)) AS ttft, "
    f"{MERGE_QUANTILES}(latency_digest) AS latency_quantiles"
)


def dashboard_sql(scope: Scope, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    """The totals with the latency and time-to-first-token quantiles, in one statement."""
    source, params = _source(scope, query)
    quantiles = (
        f"{MERGE_QUANTILES}(latency_digest) AS latency_quantiles, "
        f"{MERGE_QUANTILES}(ttft_digest) AS ttft_quantiles"
    )
    return f"SELECT {TOTALS}, {quantiles} FROM ({source})", params


def dashboard_series_sql(
    scope: Scope, query: AggregateQuery, increment: str, tz_minutes: int
) -> tuple[str, dict[str, Any]]:
    return _per_bucket(scope, query, increment, tz_minutes, DASHBOARD_SERIES, "")


def _per_bucket(
    scope: Scope,
    query: AggregateQuery,
    increment: str,
    tz_minutes: int,
    columns: str,
    having: str,
    group: str = "time",
) -> tuple[str, dict[str, Any]]:
    """`columns` per `increment` bucket in the caller's time zone, oldest first; a non-empty
    `having` drops the buckets it refuses."""
    source, params = _source(scope, query, increment, tz_minutes)
    params["tz"] = tz_minutes
    sql = (
        f"SELECT {bucket(increment, 'slot')} AS time, {columns} FROM ({source}) "
        f"GROUP BY {group} {'HAVING ' + having if having else ''} ORDER BY {group} LIMIT 100000"
    )
    return sql, params


def models_sql(scope: Scope, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    source, params = _source(scope, query)
    sql = (
        f"SELECT model, provider, sum(requests) AS total_requests, {USAGE_TOTALS}, "
        "sum(cost_nano) AS cost_nano, sum(latency_sum) / sum(requests) AS avg_latency "
        f"FROM ({source}) GROUP BY model, provider "
        "ORDER BY sum(cost_nano) DESC, sum(requests) DESC, model"
    )
    return paged(sql, params, query)


def cached_requests_sql(scope: Scope, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    """The requests whose cached answers were replayed most often in the range, with what the
    replays saved; only cache hits are grouped, and at most `query.limit` of them come back."""
    where, params = scoped_where(scope, query, f"cache_reference_id != {ZERO_UUID_SQL}")
    sql = (
        "SELECT toString(cache_reference_id) AS cached_request_id, count() AS hits, "
        "sum(cache_saved_cost) AS saved_cost_nano, sum(cache_saved_latency) AS saved_latency_ms, "
        "max(request_created_at) AS last_hit, "
        "toString(argMax(request_id, request_created_at)) AS last_hit_id, any(model) AS model "
        f"FROM request_response WHERE {where} GROUP BY cached_request_id "
        "ORDER BY hits DESC, last_hit DESC, cached_request_id LIMIT {limit:UInt32}"
    )
    params["limit"] = query.limit
    return sql, params


def scores_over_time_sql(
    scope: Scope, query: AggregateQuery, increment: str, tz_minutes: int
) -> tuple[str, dict[str, Any]]:
    """Helicone's `/v1/dashboard/scores/query`: per bucket and score name, the average of the
    matching requests' newest values (Helicone calls it `score_sum`)."""
    where, params = scoped_where(scope, query)
    params["tz"] = tz_minutes
    requests = f"SELECT request_id AS rid, request_created_at FROM request_response WHERE {where}"
    in_range = f" AND request_id IN (SELECT rid FROM ({requests}))"  # not every score ever given
    newest = newest_values_sql("request_annotations", "name", scope.clause, in_range)
    sql = (
        f"SELECT {bucket(increment)} AS time, name AS score_key, avg(value) AS score_sum "
        f"FROM ({newest}) AS scores INNER JOIN ({requests}) AS requests ON request_id = rid "
        "GROUP BY time, score_key ORDER BY time, score_key LIMIT 100000"
    )
    return sql, params


def providers_sql(scope: Scope, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    """Helicone's `/v1/providers`: requests per provider, busiest first."""
    source, params = _source(scope, query)
    sql = (
        f"SELECT provider, sum(requests) AS total_requests FROM ({source}) "
        "GROUP BY provider ORDER BY total_requests DESC, provider"
    )
    return paged(sql, params, query)
