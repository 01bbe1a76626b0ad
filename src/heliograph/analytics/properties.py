"""Custom properties: which keys an organization uses, their values, and cost and requests per
value (as totals and over time). Scoped to one organization, like every analytics statement."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.aggregates import scoped_where
from heliograph.analytics.metrics import bucket
from heliograph.analytics.scope import Scope
from heliograph.domain.queries import AggregateQuery


def keys_sql(scope: Scope, query: AggregateQuery, hidden: list[str]) -> tuple[str, dict[str, Any]]:
    where, params = scoped_where(scope, query)
    params["hidden"] = hidden
    sql = (
        "SELECT key, count() AS requests FROM request_response "
        f"ARRAY JOIN mapKeys(properties) AS key WHERE {where} "
        "AND key NOT IN {hidden:Array(String)} "
        "GROUP BY key ORDER BY requests DESC, key LIMIT 1000"
    )
    return sql, params


def values_sql(
    scope: Scope, query: AggregateQuery, key: str, search: str
) -> tuple[str, dict[str, Any]]:
    where, params = scoped_where(scope, query, "mapContains(properties, {key:String})")
    params.update(key=key, search=search)
    sql = (
        "SELECT properties[{key:String}] AS value, count() AS requests FROM request_response "
        f"WHERE {where} AND positionCaseInsensitiveUTF8(properties[{{key:String}}], "
        "{search:String}) > 0 GROUP BY value ORDER BY requests DESC, value "
        "LIMIT {limit:UInt32}"
    )
    params["limit"] = query.limit
    return sql, params


def top_sql(scope: Scope, query: AggregateQuery, key: str, by: str) -> tuple[str, dict[str, Any]]:
    where, params = scoped_where(scope, query, "mapContains(properties, {key:String})")
    params["key"] = key
    order = "cost_nano" if by == "cost" else "requests"
    sql = (
        "SELECT properties[{key:String}] AS value, count() AS requests, sum(cost) AS cost_nano "
        f"FROM request_response WHERE {where} GROUP BY value "
        f"ORDER BY {order} DESC, value LIMIT {{limit:UInt32}}"
    )
    params["limit"] = query.limit
    return sql, params


def over_time_sql(
    scope: Scope, query: AggregateQuery, key: str, increment: str, tz_minutes: int
) -> tuple[str, dict[str, Any]]:
    where, params = scoped_where(scope, query, "mapContains(properties, {key:String})")
    params.update(key=key, tz=tz_minutes)
    sql = (
        f"SELECT {bucket(increment)} AS time, properties[{{key:String}}] AS value, "
        f"count() AS requests, sum(cost) AS cost_nano FROM request_response WHERE {where} "
        "GROUP BY time, value ORDER BY time, requests DESC, value LIMIT 100000"
    )
    return sql, params
