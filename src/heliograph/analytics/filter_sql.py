"""A parsed filter (`domain.filter_tree`) as ClickHouse SQL: each column's expression, each
operator's comparison, and every value bound as a `{pN:Type}` parameter, never written into the
SQL text. Body searches use the bodies' n-gram text indexes; score, added-property and
session-tag conditions are subqueries held to the reader's `Scope` (whose parameter the
statement's own scoped `WHERE` binds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, assert_never
from uuid import UUID

from heliograph.analytics.definitions import USAGE_TOTAL_SQL
from heliograph.analytics.scope import Scope
from heliograph.domain.filter_tree import (
    AllRows,
    Branch,
    CachedCondition,
    ColumnCondition,
    Filter,
    Kind,
    Operator,
    PropertyCondition,
    ScoreCondition,
    SessionCondition,
    SessionTagCondition,
    Value,
)
from heliograph.domain.filters import COLUMNS
from heliograph.domain.session_filters import SESSION_COLUMNS
from heliograph.domain.times import stored_time

BODY_GRAM = 3  # the n of the bodies' n-gram text indexes (schema 0007)
ZERO_UUID_SQL = "toUUID('00000000-0000-0000-0000-000000000000')"

# Each filterable column's SQL; every request column is its own name but total tokens.
COLUMN_SQL: dict[str, str] = {name: name for name in COLUMNS} | {"total_tokens": USAGE_TOTAL_SQL}
SESSION_COLUMN_SQL: dict[str, str] = {
    "session_session_id": "session_id",
    "session_session_name": "any(session_name)",
    "session_total_cost": "sum(cost)",
    "session_total_tokens": f"sum({USAGE_TOTAL_SQL})",
    "session_prompt_tokens": "sum(ifNull(prompt_tokens, 0))",
    "session_completion_tokens": "sum(ifNull(completion_tokens, 0))",
    "session_total_requests": "count()",
    "session_created_at": "min(request_created_at)",
    "session_latest_request_created_at": "max(request_created_at)",
}
assert set(SESSION_COLUMN_SQL) == set(SESSION_COLUMNS)
CLICKHOUSE_TYPES = {
    Kind.TEXT: "String",
    Kind.BODY: "String",
    Kind.NUMBER: "Float64",
    Kind.COST: "UInt64",
    Kind.TIMESTAMP: "DateTime64(3, 'UTC')",
    Kind.BOOL: "Bool",
    Kind.UUID: "UUID",
}
COMPARISONS = {
    Operator.EQUALS: "=",
    Operator.NOT_EQUALS: "!=",
    Operator.GTE: ">=",
    Operator.LTE: "<=",
    Operator.LT: "<",
    Operator.GT: ">",
}


@dataclass
class SqlParams:
    """The `{pN:Type}` parameters of one statement's filters, numbered in the order bound."""

    scope: Scope
    params: dict[str, Any] = field(default_factory=dict)
    bound: int = 0

    def bind(self, value: Any, clickhouse_type: str) -> str:
        name = f"p{self.bound}"
        self.bound += 1
        self.params[name] = value
        return f"{{{name}:{clickhouse_type}}}"


def filter_sql(tree: Filter, scope: Scope) -> tuple[str, dict[str, Any]]:
    """A request filter as a SQL boolean expression (for `WHERE`) and its parameters."""
    target = SqlParams(scope)
    return where_sql(tree, target), target.params


def session_filter_sql(
    requests: Filter, sessions: Filter, scope: Scope
) -> tuple[str, str, dict[str, Any]]:
    """A session endpoint's filter as a `WHERE` and a `HAVING` condition, sharing parameters."""
    target = SqlParams(scope)
    where = where_sql(requests, target)
    return where, where_sql(sessions, target), target.params


def where_sql(tree: Filter, target: SqlParams) -> str:
    match tree:
        case AllRows():
            return "1"
        case Branch(operator, left, right):
            return f"({where_sql(left, target)} {operator.upper()} {where_sql(right, target)})"
        case ColumnCondition():
            return condition_sql(COLUMN_SQL[tree.column.name], tree, target)
        case PropertyCondition():
            return _property(tree, target)
        case ScoreCondition():
            return _score(tree, target)
        case CachedCondition(cached):
            return f"(cache_reference_id {'!=' if cached else '='} {ZERO_UUID_SQL})"
        case SessionCondition(condition):
            return condition_sql(SESSION_COLUMN_SQL[condition.column.name], condition, target)
        case SessionTagCondition(condition):
            tag = condition_sql("argMax(value, created_at)", condition, target)
            return (
                "session_id IN (SELECT session_id FROM session_annotations "
                f"WHERE {target.scope.clause} AND kind = 'tag' "
                f"GROUP BY session_id HAVING {tag})"
            )
        case _:
            assert_never(tree)


def _property(prop: PropertyCondition, target: SqlParams) -> str:
    """Requests whose property matches: the newest value added after the fact
    (`request_properties`) when there is one, else the value logged with the request."""
    key = target.bind(prop.key, "String")
    added = f"SELECT request_id FROM request_properties WHERE {target.scope.clause} AND key = {key}"
    logged = condition_sql(f"properties[{key}]", prop.condition, target)
    newest = condition_sql("argMax(value, created_at)", prop.condition, target)
    return (
        f"((mapContains(properties, {key}) AND {logged} AND request_id NOT IN ({added})) "
        f"OR request_id IN ({added} GROUP BY request_id HAVING {newest}))"
    )


def _score(score: ScoreCondition, target: SqlParams) -> str:
    """Requests whose newest value for the score matches."""
    number = target.bind(score.value, "Float64")
    key = target.bind(score.name, "String")
    return (
        "request_id IN (SELECT request_id FROM request_annotations "
        f"WHERE {target.scope.clause} AND name = {key} GROUP BY request_id "
        f"HAVING argMax(value, created_at) {COMPARISONS[score.operator]} {number})"
    )


def condition_sql(sql: str, condition: ColumnCondition, target: SqlParams) -> str:
    """`condition` on the column (or aggregate) whose SQL is `sql`."""
    kind, operator, value = condition.column.kind, condition.operator, condition.value
    if kind == Kind.BODY and operator == Operator.CONTAINS:
        return _body_contains(sql, str(value), target)
    if kind in (Kind.TEXT, Kind.BODY):
        return _text(sql, condition, target)
    bound = target.bind(_param(value), CLICKHOUSE_TYPES[kind])
    return f"{sql} {COMPARISONS[operator]} {bound}"


def _text(sql: str, condition: ColumnCondition, target: SqlParams) -> str:
    operator, value = condition.operator, str(condition.value)
    if condition.means_empty:
        return f"{'' if operator == Operator.EQUALS else 'NOT '}empty({sql})"
    if operator in (Operator.CONTAINS, Operator.NOT_CONTAINS):
        bound = target.bind(f"%{_escape_like(value)}%", "String")
        return f"{sql} {'NOT ILIKE' if operator == Operator.NOT_CONTAINS else 'ILIKE'} {bound}"
    bound = target.bind(value, "String")
    if operator in (Operator.LIKE, Operator.ILIKE):
        return f"{sql} {operator.upper()} {bound}"
    return f"{sql} {COMPARISONS[operator]} {bound}"


def _body_contains(sql: str, value: str, target: SqlParams) -> str:
    """A body search: the body's text index (lower-cased 3-grams) picks the rows that hold every
    3-gram of the search text, then ILIKE checks the substring itself."""
    bound = target.bind(f"%{_escape_like(value)}%", "String")
    exact = f"{sql} ILIKE {bound}"
    if len(value) < BODY_GRAM:
        return exact  # no whole 3-gram to look up; every body is read
    needle = target.bind(value, "String")
    grams = f"tokens(lowerUTF8({needle}), 'ngrams', {BODY_GRAM})"
    return f"(hasAllTokens({sql}, {grams}) AND {exact})"


def _param(value: Value) -> Any:
    if isinstance(value, datetime):
        return stored_time(value)
    if isinstance(value, UUID):
        return str(value)
    return value


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
