"""Custom properties: which keys an organization uses, their values, and cost and requests per
value (as totals and over time). A request's properties are those it was logged with, overridden
by any added after the fact (`request_properties`, newest value per key). Scoped to one
organization, like every analytics statement."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.aggregates import scoped_where
from heliograph.analytics.definitions import newest_values_sql
from heliograph.analytics.metrics import bucket
from heliograph.analytics.scope import Scope
from heliograph.domain.queries import AggregateQuery

# A request's properties as read: logged ones, with the newest added value of each key on top.
# Most organizations never add one, and the join costs about a third more, so a reader asks
# `has_added_sql` first and the builders join only when `added` is true.
WITH_ADDED = "mapUpdate(properties, added_properties)"


def has_added_sql(scope: Scope) -> tuple[str, dict[str, Any]]:
    """Whether the organization ever added a property to a request (one primary-key lookup)."""
    return f"SELECT 1 AS found FROM request_properties WHERE {scope.clause} LIMIT 1", scope.params()


def _source(scope: Scope, added: bool) -> tuple[str, str]:
    """The `FROM` of a property aggregate and the expression of a request's properties in it."""
    if not added:
        return "request_response", "properties"
    return _requests_with_added(scope), WITH_ADDED


def _requests_with_added(scope: Scope) -> str:
    """`request_response` joined to each request's added properties (an empty map when none);
    the organization's parameter is bound by the statement's scoped `WHERE`."""
    newest = newest_values_sql("request_properties", "key", scope.clause)
    added = (
        "SELECT request_id AS added_id, "
        "CAST((groupArray(name), groupArray(value)), 'Map(String, String)') AS added_properties "
        f"FROM ({newest}) GROUP BY request_id"
    )
    return f"request_response LEFT ANY JOIN ({added}) AS added ON request_id = added_id"


def keys_sql(
    scope: Scope, query: AggregateQuery, hidden: list[str], added: bool
) -> tuple[str, dict[str, Any]]:
    source, properties = _source(scope, added)
    where, params = scoped_where(scope, query)
    params["hidden"] = hidden
    sql = (
        f"SELECT arrayJoin(mapKeys({properties})) AS key, count() AS requests "
        f"FROM {source} WHERE {where} GROUP BY key HAVING key NOT IN {{hidden:Array(String)}} "
        "ORDER BY requests DESC, key LIMIT 1000"
    )
    return sql, params


def _with_key(
    scope: Scope, query: AggregateQuery, key: str, added: bool
) -> tuple[str, str, str, dict[str, Any]]:
    """The `FROM`, the `WHERE` (requests carrying `key`), the value's expression, parameters."""
    source, properties = _source(scope, added)
    where, params = scoped_where(scope, query, f"mapContains({properties}, {{key:String}})")
    params["key"] = key
    return source, where, f"{properties}[{{key:String}}]", params


def values_sql(
    scope: Scope, query: AggregateQuery, key: str, search: str, added: bool
) -> tuple[str, dict[str, Any]]:
    source, where, value, params = _with_key(scope, query, key, added)
    params.update(search=search, limit=query.limit)
    sql = (
        f"SELECT {value} AS value, count() AS requests FROM {source} "
        f"WHERE {where} AND positionCaseInsensitiveUTF8({value}, {{search:String}}) > 0 "
        "GROUP BY value ORDER BY requests DESC, value LIMIT {limit:UInt32}"
    )
    return sql, params


def top_sql(
    scope: Scope, query: AggregateQuery, key: str, by: str, added: bool
) -> tuple[str, dict[str, Any]]:
    source, where, value, params = _with_key(scope, query, key, added)
    params["limit"] = query.limit
    order = "cost_nano" if by == "cost" else "requests"
    sql = (
        f"SELECT {value} AS value, count() AS requests, sum(cost) AS cost_nano "
        f"FROM {source} WHERE {where} GROUP BY value "
        f"ORDER BY {order} DESC, value LIMIT {{limit:UInt32}}"
    )
    return sql, params


def over_time_sql(
    scope: Scope, query: AggregateQuery, key: str, increment: str, tz_minutes: int, added: bool
) -> tuple[str, dict[str, Any]]:
    source, where, value, params = _with_key(scope, query, key, added)
    params["tz"] = tz_minutes
    sql = (
        f"SELECT {bucket(increment)} AS time, {value} AS value, "
        f"count() AS requests, sum(cost) AS cost_nano FROM {source} "
        f"WHERE {where} GROUP BY time, value ORDER BY time, requests DESC, value LIMIT 100000"
    )
    return sql, params
