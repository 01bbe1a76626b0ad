"""Helicone's `FilterNode` JSON grammar, parsed and turned into parameterised ClickHouse SQL.

A filter is a leaf (`{table: {column: {operator: value}}}`), a binary branch
(`{left, operator: "and"|"or", right}`) or `"all"`. Every value is bound as a `{pN:Type}`
parameter; column and operator names only ever select from the tables below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from heliograph.domain.money import NANO_PER_USD

MAX_DEPTH = 64
# Input caps: a filter is written by a person or a UI, so these are far above real use while
# keeping one request's SQL, parameters and error messages small.
MAX_LEAVES = 200
MAX_TERM_CHARS = 1000
MAX_KEY_CHARS = 500
MAX_NUMBER_CHARS = 40
MAX_NUMBER = Decimal("1e18")  # beyond every count, duration and cost a row can hold
FEEDBACK_SCORE = "helicone-score-feedback"
REQUEST_TABLES = ("request_response_rmt", "request_response", "request", "response")
SESSION_TABLE = "sessions_request_response_rmt"

TEXT_OPS = ("equals", "not-equals", "like", "ilike", "contains", "not-contains")
NUMBER_OPS = ("equals", "not-equals", "gte", "lte", "lt", "gt")
TIMESTAMP_OPS = ("equals", "gte", "lte", "lt", "gt")
BOOL_OPS = ("equals",)
UUID_OPS = ("equals", "not-equals")

BODY_GRAM = 3  # the n of the bodies' n-gram text indexes (schema 0007)

UINT64_MAX = 2**64 - 1
COMPARISONS = {"equals": "=", "not-equals": "!=", "gte": ">=", "lte": "<=", "lt": "<", "gt": ">"}


class FilterError(ValueError):
    """The filter is not valid; the message says what is wrong and where."""


@dataclass(frozen=True, slots=True)
class Column:
    sql: str
    kind: str  # text | body | number | timestamp | bool | uuid | cost


# The one definition of a request's total tokens, used by every endpoint (README, "Tokens"):
# stored `prompt_tokens` leave out cache reads and writes and `completion_tokens` leave out
# reasoning, as Helicone stores them, so the total adds all five.
USAGE_TOTAL_SQL = (
    "(ifNull(prompt_tokens, 0) + ifNull(completion_tokens, 0) + prompt_cache_read_tokens"
    " + prompt_cache_write_tokens + reasoning_tokens)"
)

COLUMNS: dict[str, Column] = {
    "request_id": Column("request_id", "uuid"),
    "request_created_at": Column("request_created_at", "timestamp"),
    "response_created_at": Column("response_created_at", "timestamp"),
    "latency": Column("latency", "number"),
    "time_to_first_token": Column("time_to_first_token", "number"),
    "status": Column("status", "number"),
    "cost": Column("cost", "cost"),
    "provider": Column("provider", "text"),
    "model": Column("model", "text"),
    "request_model": Column("request_model", "text"),
    "response_model": Column("response_model", "text"),
    "user_id": Column("user_id", "text"),
    "target_url": Column("target_url", "text"),
    "request_path": Column("request_path", "text"),
    "request_body": Column("request_body", "body"),
    "response_body": Column("response_body", "body"),
    "session_id": Column("session_id", "text"),
    "session_path": Column("session_path", "text"),
    "session_name": Column("session_name", "text"),
    "prompt_tokens": Column("prompt_tokens", "number"),
    "completion_tokens": Column("completion_tokens", "number"),
    "prompt_cache_read_tokens": Column("prompt_cache_read_tokens", "number"),
    "prompt_cache_write_tokens": Column("prompt_cache_write_tokens", "number"),
    "reasoning_tokens": Column("reasoning_tokens", "number"),
    "total_tokens": Column(USAGE_TOTAL_SQL, "number"),
    "cache_enabled": Column("cache_enabled", "bool"),
    "cache_reference_id": Column("cache_reference_id", "uuid"),
    "is_stream": Column("is_stream", "bool"),
    "attempts": Column("attempts", "number"),
    "cache_saved_cost": Column("cache_saved_cost", "cost"),
    "cache_saved_latency": Column("cache_saved_latency", "number"),
}

OPERATORS_BY_KIND = {
    "text": TEXT_OPS,
    "body": TEXT_OPS,
    "number": NUMBER_OPS,
    "cost": NUMBER_OPS,
    "timestamp": TIMESTAMP_OPS,
    "bool": BOOL_OPS,
    "uuid": UUID_OPS,
}

CLICKHOUSE_TYPES = {
    "text": "String",
    "body": "String",
    "number": "Float64",
    "cost": "UInt64",
    "timestamp": "DateTime64(3, 'UTC')",
    "bool": "Bool",
    "uuid": "UUID",
}

SORT_KEYS: dict[str, str] = {
    "created_at": "request_created_at",
    "latency": "latency",
    "total_tokens": USAGE_TOTAL_SQL,
    "completion_tokens": "completion_tokens",
    "prompt_tokens": "prompt_tokens",
    "cost": "cost",
    "time_to_first_token": "time_to_first_token",
    "user_id": "user_id",
    "body_model": "model",
    "model": "model",
    "status": "status",
    "provider": "provider",
}


@dataclass
class SqlFilter:
    """SQL text with `{pN:Type}` placeholders and the values to bind to them."""

    params: dict[str, Any] = field(default_factory=dict)
    leaves: int = 0

    def bind(self, value: Any, clickhouse_type: str) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"{{{name}:{clickhouse_type}}}"


LeafCompiler = Callable[[Mapping[str, Any], "SqlFilter"], str]


def compile_filter(node: Any, sql_filter: SqlFilter | None = None) -> tuple[str, dict[str, Any]]:
    """Compile a `FilterNode` into a SQL boolean expression and its parameters."""
    target = sql_filter or SqlFilter()
    return compile_tree(node, target, _leaf), target.params


def compile_tree(node: Any, target: SqlFilter, leaf: LeafCompiler, depth: int = 0) -> str:
    """Compile the branches of a filter tree, handing each leaf to `leaf`."""
    if depth > MAX_DEPTH:
        raise FilterError(f"filter is nested deeper than {MAX_DEPTH} levels")
    if node == "all" or node == {}:
        return "1"
    if not isinstance(node, Mapping):
        raise FilterError(f'a filter node must be an object or "all", got {show(node)}')
    if is_branch(node):
        return _branch(node, target, leaf, depth)
    target.leaves += 1
    if target.leaves > MAX_LEAVES:
        raise FilterError(f"a filter has at most {MAX_LEAVES} conditions")
    return leaf(node, target)


def leaves(node: Any, depth: int = 0) -> Iterator[Any]:
    """Every leaf of a filter tree (malformed ones included, for the compiler to reject)."""
    if depth > MAX_DEPTH:
        raise FilterError(f"filter is nested deeper than {MAX_DEPTH} levels")
    if node == "all" or node == {}:
        return
    if is_branch(node):
        yield from leaves(node.get("left"), depth + 1)
        yield from leaves(node.get("right"), depth + 1)
    else:
        yield node


def is_branch(node: Any) -> bool:
    return isinstance(node, Mapping) and ("left" in node or "right" in node or "operator" in node)


def _branch(node: Mapping[str, Any], target: SqlFilter, leaf: LeafCompiler, depth: int) -> str:
    extra = set(node) - {"left", "right", "operator"}
    if extra or "left" not in node or "right" not in node:
        raise FilterError("a filter branch needs exactly the keys left, operator and right")
    operator = node["operator"]
    if operator not in ("and", "or"):
        raise FilterError(f'branch operator must be "and" or "or", got {show(operator)}')
    left = compile_tree(node["left"], target, leaf, depth + 1)
    right = compile_tree(node["right"], target, leaf, depth + 1)
    return f"({left} {operator.upper()} {right})"


def _leaf(node: Mapping[str, Any], target: SqlFilter) -> str:
    table, columns = single(node, "table")
    if table in ("properties", "values"):
        return _property(columns, target)
    if table == SESSION_TABLE:
        raise FilterError(f"{SESSION_TABLE} filters apply only to the session endpoints")
    if table not in REQUEST_TABLES:
        raise FilterError(f"unknown table {show(table)}; use request_response_rmt or properties")
    column, predicate = single(columns, f"column of {table}")
    if column == "properties":
        return _property(predicate, target)
    if column == "cached":
        return _cached(predicate)
    if column == "scores":
        name, score_condition = single(predicate, "score name")
        return _score(name, score_condition, target)
    if column == FEEDBACK_SCORE:
        return _score(FEEDBACK_SCORE, predicate, target)
    spec = COLUMNS.get(column)
    if spec is None:
        raise FilterError(f"unknown column {show(column)} in {table}")
    operator, value = single(predicate, f"operator for {column}")
    return condition(spec, column, operator, value, target)


def check_text(name: str, value: str, limit: int = MAX_TERM_CHARS) -> str:
    """`value` when it is at most `limit` characters of valid Unicode (JSON can carry lone
    surrogates, which no engine can store or compare); a `FilterError` naming the rule if not."""
    if len(value) > limit:
        raise FilterError(f"{name} takes at most {limit} characters, got {len(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FilterError(f"{name} is not valid Unicode text (a lone surrogate)") from None
    return value


def _property(columns: Any, target: SqlFilter) -> str:
    key, predicate = single(columns, "property key")
    check_text("a property key", key, MAX_KEY_CHARS)
    operator, value = single(predicate, f"operator for property {key}")
    key_param = target.bind(key, "String")
    spec = Column(f"properties[{key_param}]", "text")
    expression = condition(spec, f"property {key}", operator, value, target)
    return f"(mapContains(properties, {key_param}) AND {expression})"


def _score(name: str, predicate: Any, target: SqlFilter) -> str:
    """Requests whose newest value for score `name` matches; `{org:UUID}` is bound by the store."""
    check_text("a score name", name, MAX_KEY_CHARS)
    operator, value = single(predicate, f"operator for score {show(name)}")
    if operator not in NUMBER_OPS:
        raise FilterError(
            f"operator {show(operator)} is not valid for scores; use {', '.join(NUMBER_OPS)}"
        )
    if isinstance(value, bool):
        value = int(value)
    number = target.bind(float(_number(f"score {name}", value)), "Float64")
    key = target.bind(name, "String")
    return (
        "request_id IN (SELECT request_id FROM request_annotations "
        f"WHERE organization_id = {{org:UUID}} AND name = {key} GROUP BY request_id "
        f"HAVING argMax(value, created_at) {COMPARISONS[operator]} {number})"
    )


def _cached(predicate: Any) -> str:
    operator, value = single(predicate, "operator for cached")
    if operator != "equals" or not isinstance(value, bool):
        raise FilterError('cached takes {"equals": true|false}')
    zero = "toUUID('00000000-0000-0000-0000-000000000000')"
    return f"(cache_reference_id {'!=' if value else '='} {zero})"


def condition(spec: Column, name: str, operator: str, value: Any, target: SqlFilter) -> str:
    allowed = OPERATORS_BY_KIND[spec.kind]
    if operator not in allowed:
        raise FilterError(
            f"operator {show(operator)} is not valid for {name}; use one of {', '.join(allowed)}"
        )
    if spec.kind == "body" and operator == "contains" and isinstance(value, str):
        return _body_contains(spec.sql, name, value, target)
    if spec.kind in ("text", "body"):
        return text_condition(spec.sql, name, operator, value, target)
    bound = target.bind(_coerce(spec.kind, name, value), CLICKHOUSE_TYPES[spec.kind])
    return f"{spec.sql} {COMPARISONS[operator]} {bound}"


def text_condition(sql: str, name: str, operator: str, value: Any, target: SqlFilter) -> str:
    if not isinstance(value, str):
        raise FilterError(f"{name} {operator} takes a string, got {show(value)}")
    check_text(f"{name} {operator}", value)
    if value in ("null", "__empty__") and operator in ("equals", "not-equals"):
        return f"{'' if operator == 'equals' else 'NOT '}empty({sql})"
    if operator in ("contains", "not-contains"):
        bound = target.bind(f"%{_escape_like(value)}%", "String")
        return f"{sql} {'NOT ILIKE' if operator == 'not-contains' else 'ILIKE'} {bound}"
    bound = target.bind(value, "String")
    if operator in ("like", "ilike"):
        return f"{sql} {operator.upper()} {bound}"
    return f"{sql} {COMPARISONS[operator]} {bound}"


def _body_contains(sql: str, name: str, value: str, target: SqlFilter) -> str:
    """A body search: the body's text index (lower-cased 3-grams) picks the rows that hold every
    3-gram of the search text, then ILIKE checks the substring itself."""
    exact = text_condition(sql, name, "contains", value, target)
    if len(value) < BODY_GRAM:
        return exact  # no whole 3-gram to look up; every body is read
    needle = target.bind(value, "String")
    grams = f"tokens(lowerUTF8({needle}), 'ngrams', {BODY_GRAM})"
    return f"(hasAllTokens({sql}, {grams}) AND {exact})"


def _coerce(kind: str, name: str, value: Any) -> Any:
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise FilterError(f"{name} takes true or false, got {show(value)}")
    if kind == "timestamp":
        return _timestamp(name, value)
    if kind == "uuid":
        try:
            return str(UUID(str(value)))
        except ValueError:
            raise FilterError(f"{name} takes a UUID, got {show(value)}") from None
    number = _number(name, value)
    if kind == "cost":  # USD in the API, nano-USD in the store (UInt64)
        return min(max(0, int(number * NANO_PER_USD)), UINT64_MAX)
    return float(number)


def _number(name: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FilterError(f"{name} takes a number, got {show(value)}")
    text = str(value)
    if len(text) > MAX_NUMBER_CHARS:
        raise FilterError(f"{name} takes a number of at most {MAX_NUMBER_CHARS} characters")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise FilterError(f"{name} takes a number, got {show(value)}") from None
    if not number.is_finite() or abs(number) > MAX_NUMBER:
        raise FilterError(f"{name} takes a finite number below 1e18, got {show(value)}")
    return number


def _timestamp(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise FilterError(f"{name} takes an ISO 8601 timestamp string, got {show(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FilterError(f"{name} takes an ISO 8601 timestamp, got {show(value)}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not 1900 < moment.year < 2299:  # inside ClickHouse's DateTime64 range
        raise FilterError(f"{name} must be between the years 1901 and 2298, got {show(value)}")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def single(mapping: Any, what: str) -> tuple[str, Any]:
    if not isinstance(mapping, Mapping) or len(mapping) != 1:
        raise FilterError(f"expected an object with exactly one {what}, got {show(mapping)}")
    ((key, value),) = mapping.items()
    return str(key), value


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def compile_sort(sort: Any) -> str:
    """Compile Helicone's `SortLeafRequest` (one key, asc|desc) into an ORDER BY clause."""
    if sort is None or sort == {}:
        return "request_created_at DESC, request_id DESC"
    key, direction = single(sort, "sort key")
    column = SORT_KEYS.get(key)
    if column is None:
        raise FilterError(f"unknown sort key {show(key)}; use one of {', '.join(SORT_KEYS)}")
    if direction not in ("asc", "desc"):
        raise FilterError(f'sort direction must be "asc" or "desc", got {show(direction)}')
    tie = "request_id DESC" if direction == "desc" else "request_id ASC"
    return f"{column} {direction.upper()}, {tie}"
