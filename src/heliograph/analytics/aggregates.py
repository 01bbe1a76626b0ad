"""Aggregate queries over requests: the shared `WHERE` (organization, filter, time range), and
users. Every builder takes the reader's `Scope`; callers pass validated parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from heliograph.analytics.definitions import USAGE_TOTAL_SQL
from heliograph.analytics.filter_sql import filter_sql
from heliograph.analytics.scope import Scope
from heliograph.domain.queries import AggregateQuery, RequestQuery
from heliograph.domain.sorts import USER_SORT_KEYS

USER_SORTS = {
    "last_active": "last_active",
    "first_active": "first_active",
    "total_requests": "total_requests",
    "cost": "total_cost",
    "total_prompt_tokens": "prompt_tokens",
    "total_completion_tokens": "completion_tokens",
    "total_tokens": "total_tokens",
    "user_id": "user_id",
}

assert tuple(USER_SORTS) == USER_SORT_KEYS


def time_bounds(
    column: str,
    start_ms: int | None,
    end_ms: int | None,
    params: dict[str, Any],
    name: str = "time",
) -> list[str]:
    """Conditions keeping `column` in `[start_ms, end_ms)` (unix ms; `None` leaves that end open),
    bound as `{name}_from` and `{name}_to`."""
    conditions = []
    if start_ms is not None:
        conditions.append(f"{column} >= fromUnixTimestamp64Milli({{{name}_from:Int64}})")
        params[f"{name}_from"] = start_ms
    if end_ms is not None:
        conditions.append(f"{column} < fromUnixTimestamp64Milli({{{name}_to:Int64}})")
        params[f"{name}_to"] = end_ms
    return conditions


def scoped_where(
    scope: Scope, query: AggregateQuery, extra: str = ""
) -> tuple[str, dict[str, Any]]:
    condition, params = filter_sql(query.filter, scope)
    return held(scope, query, condition, params, extra), params


def paged(
    sql: str, params: dict[str, Any], query: AggregateQuery | RequestQuery
) -> tuple[str, dict[str, Any]]:
    """`sql` cut to the query's page, its limit and offset bound as parameters."""
    params.update(limit=query.limit, offset=query.offset)
    return f"{sql} LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}", params


def held(
    scope: Scope, query: AggregateQuery, condition: str, params: dict[str, Any], extra: str
) -> str:
    """AND the organization, the time range and `extra` onto a compiled condition."""
    parts = [scope.bind(params), condition]
    parts += time_bounds("request_created_at", query.time.start_ms, query.time.end_ms, params)
    if extra:
        parts.append(extra)
    return " AND ".join(parts)


# Every token count of a group of requests, and their total by the one definition.
TOKEN_SUMS = (
    "sum(ifNull(prompt_tokens, 0)) AS prompt_tokens, "
    "sum(ifNull(completion_tokens, 0)) AS completion_tokens, "
    "sum(prompt_cache_read_tokens) AS prompt_cache_read_tokens, "
    "sum(prompt_cache_write_tokens) AS prompt_cache_write_tokens, "
    "sum(reasoning_tokens) AS reasoning_tokens, "
    f"sum({USAGE_TOTAL_SQL}) AS total_tokens"
)
USER_COLUMNS = (
    "user_id, count() AS total_requests, min(request_created_at) AS first_active, "
    "max(request_created_at) AS last_active, uniqExact(toDate(request_created_at)) AS active_days, "
    f"{TOKEN_SUMS}, sum(cost) AS total_cost"
)


def users_sql(scope: Scope, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    where, params = scoped_where(scope, query, "user_id != ''")
    order = USER_SORTS.get(query.sort, "last_active")
    direction = "DESC" if query.descending else "ASC"
    sql = (
        f"SELECT {USER_COLUMNS} FROM request_response WHERE {where} GROUP BY user_id "
        f"ORDER BY {order} {direction}, user_id"
    )
    return paged(sql, params, query)


def user_count_sql(scope: Scope, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    where, params = scoped_where(scope, query, "user_id != ''")
    return f"SELECT uniqExact(user_id) AS count FROM request_response WHERE {where}", params


def top_users_sql(scope: Scope, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    """The busiest users' requests and cost: two columns read, for the home page's list."""
    where, params = scoped_where(scope, query, "user_id != ''")
    sql = (
        "SELECT user_id, count() AS count, sum(cost) AS cost FROM request_response "
        f"WHERE {where} GROUP BY user_id ORDER BY count DESC, user_id"
    )
    return paged(sql, params, query)


def user_totals_sql(scope: Scope, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    """Helicone's `/v1/user/query`: requests, tokens and cost per user, busiest first."""
    where, params = scoped_where(scope, query, "user_id != ''")
    if query.user_ids:
        where += " AND user_id IN {user_ids:Array(String)}"
        params["user_ids"] = list(query.user_ids)
    sql = (
        f"SELECT user_id, count() AS count, {TOKEN_SUMS}, sum(cost) AS cost "
        f"FROM request_response WHERE {where} GROUP BY user_id ORDER BY count DESC, user_id"
    )
    return paged(sql, params, query)


# What each chart of Helicone's user overview measures, per user.
USER_DISTRIBUTIONS = {"request_count": "requests", "user_cost": "cost_nano / 1e9"}


def _per_user(scope: Scope, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    where, params = scoped_where(scope, query, "user_id != ''")
    sql = (
        "SELECT user_id, count() AS requests, sum(cost) AS cost_nano "
        f"FROM request_response WHERE {where} GROUP BY user_id"
    )
    return sql, params


def user_distribution_bounds_sql(
    scope: Scope, query: AggregateQuery, upper: float, lower: float | None
) -> tuple[str, dict[str, Any]]:
    """Per chart: the quantile bounds that trim the histogram's outliers (as sessions do)."""
    grouped, params = _per_user(scope, query)
    columns = bound_columns(USER_DISTRIBUTIONS, upper, lower)
    return f"SELECT count() AS users, {', '.join(columns)} FROM ({grouped})", params


def user_distribution_histograms_sql(
    scope: Scope, query: AggregateQuery, bounds: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Ten adaptive bins per chart over the users inside each chart's bounds."""
    grouped, params = _per_user(scope, query)
    columns = histogram_columns(USER_DISTRIBUTIONS, bounds, params)
    return f"SELECT {', '.join(columns)} FROM ({grouped})", params


def bound_columns(distributions: Mapping[str, str], upper: float, lower: float | None) -> list[str]:
    """`<name>_upper` and `<name>_lower` per chart: the quantiles between which a histogram
    keeps its values (the minimum when no lower quantile trims it)."""
    columns = []
    for name, value in distributions.items():
        columns.append(f"quantile({upper})({value}) AS {name}_upper")
        low = f"quantile({lower})({value})" if lower is not None else f"min({value})"
        columns.append(f"{low} AS {name}_lower")
    return columns


def histogram_columns(
    distributions: Mapping[str, str], bounds: Mapping[str, Any], params: dict[str, Any]
) -> list[str]:
    """Ten adaptive bins per chart over the values inside its `bounds` (bound into `params`)."""
    columns = []
    for name, value in distributions.items():
        low, high = f"{name}_lower", f"{name}_upper"
        params[low], params[high] = float(bounds[low]), float(bounds[high])
        columns.append(
            f"histogramIf(10)({value}, {value} BETWEEN {{{low}:Float64}} AND {{{high}:Float64}}) "
            f"AS {name}"
        )
    return columns
