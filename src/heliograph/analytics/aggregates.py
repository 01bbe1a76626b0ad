"""Aggregate queries over requests: the shared query shape and organization scope, and users.
Every query is scoped to one organization here; callers pass validated parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from heliograph.domain.filters import USAGE_TOTAL_SQL, compile_filter

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


@dataclass(frozen=True, slots=True)
class TimeRange:
    start_ms: int | None = None
    end_ms: int | None = None


@dataclass(frozen=True, slots=True)
class AggregateQuery:
    filter: Any = "all"
    time: TimeRange = field(default_factory=TimeRange)
    search: str = ""
    name: str | None = None
    sort: str = ""
    descending: bool = True
    limit: int = 50
    offset: int = 0
    user_ids: tuple[str, ...] = ()


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
    organization_id: str, query: AggregateQuery, extra: str = ""
) -> tuple[str, dict[str, Any]]:
    condition, params = compile_filter(query.filter)
    return scope(organization_id, query, condition, params, extra), params


def scope(
    organization_id: str, query: AggregateQuery, condition: str, params: dict[str, Any], extra: str
) -> str:
    """AND the organization, the time range and `extra` onto a compiled condition."""
    params["org"] = organization_id
    parts = ["organization_id = {org:UUID}", condition]
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


def users_sql(organization_id: str, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    where, params = scoped_where(organization_id, query, "user_id != ''")
    order = USER_SORTS.get(query.sort, "last_active")
    direction = "DESC" if query.descending else "ASC"
    sql = (
        f"SELECT {USER_COLUMNS} FROM request_response WHERE {where} GROUP BY user_id "
        f"ORDER BY {order} {direction}, user_id LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}"
    )
    params.update(limit=query.limit, offset=query.offset)
    return sql, params


def user_count_sql(organization_id: str, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    where, params = scoped_where(organization_id, query, "user_id != ''")
    return f"SELECT uniqExact(user_id) AS count FROM request_response WHERE {where}", params


def user_totals_sql(organization_id: str, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    """Helicone's `/v1/user/query`: requests, tokens and cost per user, busiest first."""
    where, params = scoped_where(organization_id, query, "user_id != ''")
    if query.user_ids:
        where += " AND user_id IN {user_ids:Array(String)}"
        params["user_ids"] = list(query.user_ids)
    sql = (
        f"SELECT user_id, count() AS count, {TOKEN_SUMS}, sum(cost) AS cost "
        f"FROM request_response WHERE {where} GROUP BY user_id ORDER BY count DESC, user_id "
        "LIMIT {limit:UInt32} OFFSET {offset:UInt32}"
    )
    params.update(limit=query.limit, offset=query.offset)
    return sql, params
