"""The SQL for sessions: the list and its totals, names, the distributions behind the session
charts, one session's requests for the tree, and session tags and feedback. A session is every
request of an organization that carries the same `Helicone-Session-Id`."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.aggregates import (
    TOKEN_SUMS,
    bound_columns,
    held,
    histogram_columns,
    paged,
)
from heliograph.analytics.definitions import SESSION_DURATION_SQL, USAGE_TOTAL_SQL
from heliograph.analytics.filter_sql import session_filter_sql
from heliograph.analytics.scope import Scope
from heliograph.domain.queries import SESSION_PERCENTILES, AggregateQuery
from heliograph.domain.sorts import SESSION_SORT_KEYS

SESSION_COLUMNS = (
    "session_id, any(session_name) AS session_name, "
    "min(request_created_at) AS created_at, max(request_created_at) AS latest_request_created_at, "
    f"count() AS total_requests, sum(cost) AS total_cost, {TOKEN_SUMS}, "
    "avg(latency) AS avg_latency, sum(latency) AS total_latency, "
    f"{SESSION_DURATION_SQL} AS duration_ms, groupUniqArray(100)(user_id) AS user_ids"
)
QUANTILES = SESSION_PERCENTILES
# What each session chart measures, per session, from the grouped sessions.
DISTRIBUTIONS = {
    "session_count": "total_requests",
    "session_duration": "duration_ms / 1000",
    "session_cost": "total_cost / 1e9",
}


def grouped_sessions_sql(scope: Scope, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    """One row per session that matches the query: request conditions narrow the requests,
    session conditions (`sessions_request_response_rmt`) narrow the sessions."""
    condition, having, params = session_filter_sql(query.filter, query.sessions, scope)
    where = held(scope, query, condition, params, "session_id != ''")
    if query.name is not None:
        where += " AND session_name = {name:String}"
        params["name"] = query.name
    if query.search:
        where += (
            " AND (positionCaseInsensitiveUTF8(session_id, {search:String}) > 0"
            " OR positionCaseInsensitiveUTF8(session_name, {search:String}) > 0)"
        )
        params["search"] = query.search
    sql = (
        f"SELECT {SESSION_COLUMNS} FROM request_response WHERE {where} "
        f"GROUP BY session_id HAVING {having}"
    )
    return sql, params


def sessions_sql(scope: Scope, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    grouped, params = grouped_sessions_sql(scope, query)
    # The sort keys are the list's own column names, so a known key is its ORDER BY.
    order = query.sort if query.sort in SESSION_SORT_KEYS else "latest_request_created_at"
    direction = "DESC" if query.descending else "ASC"
    return paged(f"{grouped} ORDER BY {order} {direction}, session_id", params, query)


def session_count_sql(scope: Scope, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    grouped, params = grouped_sessions_sql(scope, query)
    sql = (
        "SELECT count() AS count, sum(total_cost) AS total_cost, avg(total_cost) AS avg_cost, "
        f"avg(avg_latency) AS avg_latency, avg(total_requests) AS avg_requests FROM ({grouped})"
    )
    return sql, params


def session_names_sql(
    scope: Scope, query: AggregateQuery, name_contains: str
) -> tuple[str, dict[str, Any]]:
    """Helicone's `/v1/session/name/query`: per session name, its sessions and their totals."""
    grouped, params = grouped_sessions_sql(scope, query)
    name_filter = ""
    if name_contains:
        name_filter = "WHERE positionCaseInsensitiveUTF8(session_name, {name_contains:String}) > 0"
        params["name_contains"] = name_contains
    sql = (
        "SELECT session_name AS name, min(created_at) AS first_used, "
        "max(latest_request_created_at) AS last_used, count() AS session_count, "
        "sum(total_requests) AS total_requests, sum(total_cost) AS total_cost, "
        "sum(total_latency) / sum(total_requests) AS avg_latency "
        f"FROM ({grouped}) {name_filter} GROUP BY name ORDER BY last_used DESC, name"
    )
    return paged(sql, params, query)


def distribution_bounds_sql(
    scope: Scope, query: AggregateQuery, upper: float, lower: float | None
) -> tuple[str, dict[str, Any]]:
    """Per chart: the average and the quantile bounds that trim the histogram's outliers."""
    grouped, params = grouped_sessions_sql(scope, query)
    averages = [f"avg({value}) AS {name}_average" for name, value in DISTRIBUTIONS.items()]
    columns = averages + bound_columns(DISTRIBUTIONS, upper, lower)
    sql = f"SELECT count() AS sessions, {', '.join(columns)} FROM ({grouped})"
    return sql, params


def distribution_histograms_sql(
    scope: Scope, query: AggregateQuery, bounds: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Ten adaptive bins per chart over the sessions inside each chart's bounds."""
    grouped, params = grouped_sessions_sql(scope, query)
    columns = histogram_columns(DISTRIBUTIONS, bounds, params)
    sql = f"SELECT {', '.join(columns)} FROM ({grouped})"
    return sql, params


def session_requests_sql(scope: Scope, session_id: str) -> tuple[str, dict[str, Any]]:
    params = {"session": session_id}
    sql = (
        "SELECT toString(request_id) AS request_id, session_path, session_name, "
        "toUnixTimestamp64Milli(request_created_at) AS created_ms, latency, cost, "
        f"{USAGE_TOTAL_SQL} AS total_tokens, model, status, user_id "
        f"FROM request_response WHERE {scope.where('session_id = {session:String}', params)} "
        "ORDER BY request_created_at, request_id LIMIT 10000"
    )
    return sql, params


def session_annotation_sql(scope: Scope, session_id: str) -> tuple[str, dict[str, Any]]:
    """The newest tag and feedback of one session."""
    params = {"session": session_id}
    sql = (
        "SELECT kind, argMax(value, created_at) AS value FROM session_annotations "
        f"WHERE {scope.where('session_id = {session:String}', params)} GROUP BY kind"
    )
    return sql, params


def session_exists_sql(scope: Scope, session_id: str) -> tuple[str, dict[str, Any]]:
    params = {"session": session_id}
    where = scope.where("session_id = {session:String}", params)
    return f"SELECT 1 AS found FROM request_response WHERE {where} LIMIT 1", params
