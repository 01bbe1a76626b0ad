"""Aggregate queries over requests: sessions and users. Every query is scoped to one organization
here; callers pass validated parameters and a compiled request filter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from heliograph.domain.filters import compile_filter

SESSION_SORTS = {
    "latest_request_created_at": "latest_request_created_at",
    "created_at": "created_at",
    "total_cost": "total_cost",
    "total_requests": "total_requests",
    "avg_latency": "avg_latency",
}
USER_SORTS = {
    "last_active": "last_active",
    "first_active": "first_active",
    "total_requests": "total_requests",
    "cost": "total_cost",
    "total_prompt_tokens": "total_prompt_tokens",
    "total_completion_tokens": "total_completion_tokens",
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


def scoped_where(
    organization_id: str, query: AggregateQuery, extra: str = ""
) -> tuple[str, dict[str, Any]]:
    condition, params = compile_filter(query.filter)
    params["org"] = organization_id
    parts = ["organization_id = {org:UUID}", condition]
    if query.time.start_ms is not None:
        parts.append("request_created_at >= fromUnixTimestamp64Milli({start_ms:Int64})")
        params["start_ms"] = query.time.start_ms
    if query.time.end_ms is not None:
        parts.append("request_created_at < fromUnixTimestamp64Milli({end_ms:Int64})")
        params["end_ms"] = query.time.end_ms
    if extra:
        parts.append(extra)
    return " AND ".join(parts), params


SESSION_COLUMNS = (
    "session_id, any(session_name) AS session_name, "
    "min(request_created_at) AS created_at, max(request_created_at) AS latest_request_created_at, "
    "count() AS total_requests, sum(cost) AS total_cost, "
    "sum(ifNull(prompt_tokens, 0)) AS prompt_tokens, "
    "sum(ifNull(completion_tokens, 0)) AS completion_tokens, "
    "avg(latency) AS avg_latency, groupUniqArray(100)(user_id) AS user_ids"
)


def sessions_sql(organization_id: str, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    where, params = scoped_where(organization_id, query, "session_id != ''")
    if query.name is not None:
        where += " AND session_name = {name:String}"
        params["name"] = query.name
    if query.search:
        where += (
            " AND (positionCaseInsensitiveUTF8(session_id, {search:String}) > 0"
            " OR positionCaseInsensitiveUTF8(session_name, {search:String}) > 0)"
        )
        params["search"] = query.search
    order = SESSION_SORTS.get(query.sort, "latest_request_created_at")
    direction = "DESC" if query.descending else "ASC"
    sql = (
        f"SELECT {SESSION_COLUMNS} FROM request_response WHERE {where} GROUP BY session_id "
        f"ORDER BY {order} {direction}, session_id LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}"
    )
    params.update(limit=query.limit, offset=query.offset)
    return sql, params


def session_count_sql(organization_id: str, query: AggregateQuery) -> tuple[str, dict[str, Any]]:
    inner, params = sessions_sql(organization_id, query)
    inner = inner.split(" ORDER BY ")[0]
    sql = (
        "SELECT count() AS count, sum(total_cost) AS total_cost, avg(total_cost) AS avg_cost, "
        f"avg(avg_latency) AS avg_latency, avg(total_requests) AS avg_requests FROM ({inner})"
    )
    params.pop("limit"), params.pop("offset")
    return sql, params


def session_requests_sql(organization_id: str, session_id: str) -> tuple[str, dict[str, Any]]:
    sql = (
        "SELECT toString(request_id) AS request_id, session_path, session_name, "
        "toUnixTimestamp64Milli(request_created_at) AS created_ms, latency, cost, "
        "ifNull(prompt_tokens, 0) + ifNull(completion_tokens, 0) + prompt_cache_read_tokens "
        "+ prompt_cache_write_tokens + reasoning_tokens AS total_tokens, model, status, user_id "
        "FROM request_response WHERE organization_id = {org:UUID} "
        "AND session_id = {session:String} ORDER BY request_created_at, request_id LIMIT 10000"
    )
    return sql, {"org": organization_id, "session": session_id}


USER_COLUMNS = (
    "user_id, count() AS total_requests, min(request_created_at) AS first_active, "
    "max(request_created_at) AS last_active, uniqExact(toDate(request_created_at)) AS active_days, "
    "sum(ifNull(prompt_tokens, 0)) AS total_prompt_tokens, "
    "sum(ifNull(completion_tokens, 0)) AS total_completion_tokens, sum(cost) AS total_cost"
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
