"""Rows shaped like `request_rollup_hourly` for any time range, the source every dashboard metric
reads: whole hours come from the rollup, the partial hours at either edge of the range from the
requests themselves, and a filter the rollup cannot answer sends the whole range to the requests.
"""

from __future__ import annotations

from typing import Any

from heliograph.analytics.aggregates import time_bounds
from heliograph.analytics.definitions import USAGE_TOTAL_SQL
from heliograph.analytics.filter_sql import filter_sql
from heliograph.analytics.scope import Scope
from heliograph.domain.filter_tree import AllRows, Branch, ColumnCondition, Filter
from heliograph.domain.queries import AggregateQuery

HOUR_MS = 3_600_000
# Request columns the rollup keeps, so filters on them can be answered from it.
DIMENSIONS = ("provider", "model", "status")
DIGEST = "quantilesTDigestState(0.5, 0.75, 0.9, 0.95, 0.99)"
# The same summaries `0009_rollup_every_token.sql` keeps, computed from requests.
SUMMARIES = (
    "count() AS requests, sum(cost) AS cost_nano, "
    "sum(ifNull(prompt_tokens, 0)) AS prompt_token_sum, "
    "sum(ifNull(completion_tokens, 0)) AS completion_token_sum, "
    "sum(prompt_cache_read_tokens) AS cache_read_token_sum, "
    "sum(prompt_cache_write_tokens) AS cache_write_token_sum, "
    "sum(reasoning_tokens) AS reasoning_token_sum, sum(latency) AS latency_sum, "
    "sum(ifNull(time_to_first_token, 0)) AS ttft_sum, count(time_to_first_token) AS ttft_count, "
    "countIf(cache_reference_id != toUUID('00000000-0000-0000-0000-000000000000')) AS cache_hits, "
    "sum(cache_saved_cost) AS saved_cost_nano, sum(cache_saved_latency) AS saved_latency_ms, "
    "uniqCombinedState(nullIf(user_id, '')) AS users, "
    f"{DIGEST}(latency) AS latency_digest, {DIGEST}(time_to_first_token) AS ttft_digest, "
    f"{DIGEST}({USAGE_TOTAL_SQL}) AS tokens_digest"
)
ROLLUP_COLUMNS = (
    "requests, cost_nano, prompt_token_sum, completion_token_sum, cache_read_token_sum, "
    "cache_write_token_sum, reasoning_token_sum, latency_sum, ttft_sum, ttft_count, cache_hits, "
    "saved_cost_nano, saved_latency_ms, users, latency_digest, ttft_digest, tokens_digest"
)


def summary_source(
    scope: Scope, query: AggregateQuery, by_minute: bool = False
) -> tuple[str, dict[str, Any]]:
    """A subquery of rows `(slot, provider, model, status, <summaries>)` covering exactly the
    query's requests; `slot` is the hour, or the minute with `by_minute`."""
    condition, params = filter_sql(query.filter, scope)
    start, end = query.time.start_ms, query.time.end_ms
    if by_minute or not answerable(query.filter):
        return _from_requests(scope, condition, start, end, by_minute, params, "all"), params
    first_hour = None if start is None else -(-start // HOUR_MS) * HOUR_MS
    last_hour = None if end is None else end // HOUR_MS * HOUR_MS
    if first_hour is not None and last_hour is not None and first_hour >= last_hour:
        return _from_requests(scope, condition, start, end, False, params, "all"), params
    parts = [_from_rollup(scope, condition, first_hour, last_hour, params)]
    if start is not None and first_hour is not None and start < first_hour:
        parts.append(_from_requests(scope, condition, start, first_hour, False, params, "head"))
    if end is not None and last_hour is not None and last_hour < end:
        parts.append(_from_requests(scope, condition, last_hour, end, False, params, "tail"))
    return " UNION ALL ".join(parts), params


def answerable(tree: Filter) -> bool:
    """Whether every leaf of the filter is on a column the rollup keeps."""
    if isinstance(tree, AllRows):
        return True
    if isinstance(tree, Branch):
        return answerable(tree.left) and answerable(tree.right)
    return isinstance(tree, ColumnCondition) and tree.column.name in DIMENSIONS


def _from_rollup(
    scope: Scope,
    condition: str,
    first_hour: int | None,
    last_hour: int | None,
    params: dict[str, Any],
) -> str:
    parts = [scope.bind(params), condition]
    parts += time_bounds("hour", first_hour, last_hour, params, "rollup")
    return (
        f"SELECT hour AS slot, provider, model, status, {ROLLUP_COLUMNS} "
        f"FROM request_rollup_hourly WHERE {' AND '.join(parts)}"
    )


def _from_requests(
    scope: Scope,
    condition: str,
    start: int | None,
    end: int | None,
    by_minute: bool,
    params: dict[str, Any],
    name: str,
) -> str:
    parts = [scope.bind(params), condition]
    parts += time_bounds("request_created_at", start, end, params, name)
    slot = "toStartOfMinute" if by_minute else "toStartOfHour"
    return (
        f"SELECT toDateTime({slot}(request_created_at), 'UTC') AS slot, provider, model, status, "
        f"{SUMMARIES} FROM request_response WHERE {' AND '.join(parts)} "
        "GROUP BY slot, provider, model, status"
    )
