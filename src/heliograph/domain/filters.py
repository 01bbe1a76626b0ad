"""Helicone's `FilterNode` JSON grammar, parsed once into a `filter_tree.Filter`.

A filter is a leaf (`{table: {column: {operator: value}}}`), a binary branch
(`{left, operator: "and"|"or", right}`) or `"all"`. The parser checks every rule in one walk
(depth, number of conditions, names, operators, values) and converts each value to what the
store compares it with; a refusal is a `FilterError` saying what is wrong and where.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from heliograph.domain.errors import InvalidInput
from heliograph.domain.filter_tree import (
    ALL_ROWS,
    NUMBER_OPS,
    OPERATORS_BY_KIND,
    Branch,
    CachedCondition,
    Column,
    ColumnCondition,
    Filter,
    Kind,
    Leaf,
    Operator,
    PropertyCondition,
    ScoreCondition,
    Value,
)
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
UINT64_MAX = 2**64 - 1


class FilterError(InvalidInput):
    """The filter is not valid; the message says what is wrong and where."""


def _columns(kinds: Mapping[str, Kind]) -> dict[str, Column]:
    return {name: Column(name, kind) for name, kind in kinds.items()}


# Every request column a filter can name, and what it holds (its SQL is `analytics.filter_sql`'s).
COLUMNS: dict[str, Column] = _columns(
    {
        "request_id": Kind.UUID,
        "request_created_at": Kind.TIMESTAMP,
        "response_created_at": Kind.TIMESTAMP,
        "latency": Kind.NUMBER,
        "time_to_first_token": Kind.NUMBER,
        "status": Kind.NUMBER,
        "cost": Kind.COST,
        "provider": Kind.TEXT,
        "model": Kind.TEXT,
        "request_model": Kind.TEXT,
        "response_model": Kind.TEXT,
        "user_id": Kind.TEXT,
        "target_url": Kind.TEXT,
        "request_path": Kind.TEXT,
        "request_body": Kind.BODY,
        "response_body": Kind.BODY,
        "session_id": Kind.TEXT,
        "session_path": Kind.TEXT,
        "session_name": Kind.TEXT,
        "prompt_tokens": Kind.NUMBER,
        "completion_tokens": Kind.NUMBER,
        "prompt_cache_read_tokens": Kind.NUMBER,
        "prompt_cache_write_tokens": Kind.NUMBER,
        "reasoning_tokens": Kind.NUMBER,
        "total_tokens": Kind.NUMBER,
        "cache_enabled": Kind.BOOL,
        "cache_reference_id": Kind.UUID,
        "is_stream": Kind.BOOL,
        "attempts": Kind.NUMBER,
        "cache_saved_cost": Kind.COST,
        "cache_saved_latency": Kind.NUMBER,
    }
)
PROPERTY = Column("properties", Kind.TEXT)

# A leaf on `sessions_request_response_rmt`, parsed by `session_filters` on the session endpoints.
SessionLeafParser = Callable[[Any], Leaf]


def parse_filter(node: Any, session_leaf: SessionLeafParser | None = None) -> Filter:
    """A request filter: leaves on requests, their properties, scores and cache use (and, with
    `session_leaf`, on sessions)."""
    return _Parser(session_leaf).tree(node, 0)


@dataclass
class _Parser:
    session_leaf: SessionLeafParser | None
    leaves: int = 0

    def tree(self, node: Any, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            raise FilterError(f"filter is nested deeper than {MAX_DEPTH} levels")
        if node == "all" or node == {}:
            return ALL_ROWS
        if not isinstance(node, Mapping):
            raise FilterError(f'a filter node must be an object or "all", got {show(node)}')
        if is_branch(node):
            return self.branch(node, depth)
        self.leaves += 1
        if self.leaves > MAX_LEAVES:
            raise FilterError(f"a filter has at most {MAX_LEAVES} conditions")
        return self.leaf(node)

    def branch(self, node: Mapping[str, Any], depth: int) -> Branch:
        extra = set(node) - {"left", "right", "operator"}
        if extra or "left" not in node or "right" not in node:
            raise FilterError("a filter branch needs exactly the keys left, operator and right")
        operator = node["operator"]
        if operator not in ("and", "or"):
            raise FilterError(f'branch operator must be "and" or "or", got {show(operator)}')
        left = self.tree(node["left"], depth + 1)
        right = self.tree(node["right"], depth + 1)
        return Branch("and" if operator == "and" else "or", left, right)

    def leaf(self, node: Mapping[str, Any]) -> Leaf:
        table, columns = single(node, "table")
        if table in ("properties", "values"):
            return _property(columns)
        if table == SESSION_TABLE:
            if self.session_leaf is None:
                raise FilterError(f"{SESSION_TABLE} filters apply only to the session endpoints")
            return self.session_leaf(columns)
        if table not in REQUEST_TABLES:
            raise FilterError(
                f"unknown table {show(table)}; use request_response_rmt or properties"
            )
        column, predicate = single(columns, f"column of {table}")
        if column == "properties":
            return _property(predicate)
        if column == "cached":
            return _cached(predicate)
        if column == "scores":
            name, score_condition = single(predicate, "score name")
            return _score(name, score_condition)
        if column == FEEDBACK_SCORE:
            return _score(FEEDBACK_SCORE, predicate)
        spec = COLUMNS.get(column)
        if spec is None:
            raise FilterError(f"unknown column {show(column)} in {table}")
        operator, value = single(predicate, f"operator for {column}")
        return condition(spec, column, operator, value)


def is_branch(node: Any) -> bool:
    return isinstance(node, Mapping) and ("left" in node or "right" in node or "operator" in node)


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


def _property(columns: Any) -> PropertyCondition:
    key, predicate = single(columns, "property key")
    check_text("a property key", key, MAX_KEY_CHARS)
    operator, value = single(predicate, f"operator for property {key}")
    return PropertyCondition(key, condition(PROPERTY, f"property {key}", operator, value))


def _score(name: str, predicate: Any) -> ScoreCondition:
    check_text("a score name", name, MAX_KEY_CHARS)
    operator, value = single(predicate, f"operator for score {show(name)}")
    if operator not in NUMBER_OPS:
        raise FilterError(
            f"operator {show(operator)} is not valid for scores; use {', '.join(NUMBER_OPS)}"
        )
    if isinstance(value, bool):
        value = int(value)
    return ScoreCondition(name, Operator(operator), float(_number(f"score {name}", value)))


def _cached(predicate: Any) -> CachedCondition:
    operator, value = single(predicate, "operator for cached")
    if operator != "equals" or not isinstance(value, bool):
        raise FilterError('cached takes {"equals": true|false}')
    return CachedCondition(value)


def condition(
    spec: Column, name: str, operator: str, value: Any, allowed: tuple[Operator, ...] = ()
) -> ColumnCondition:
    """A checked condition on `spec` (called `name` in errors); `allowed` overrides the
    operators its kind takes."""
    allowed = allowed or OPERATORS_BY_KIND[spec.kind]
    if operator not in allowed:
        raise FilterError(
            f"operator {show(operator)} is not valid for {name}; use one of {', '.join(allowed)}"
        )
    return ColumnCondition(spec, Operator(operator), _coerce(spec.kind, name, operator, value))


def _coerce(kind: Kind, name: str, operator: str, value: Any) -> Value:
    if kind in (Kind.TEXT, Kind.BODY):
        if not isinstance(value, str):
            raise FilterError(f"{name} {operator} takes a string, got {show(value)}")
        return check_text(f"{name} {operator}", value)
    if kind == Kind.BOOL:
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return bool(value == "true")
        raise FilterError(f"{name} takes true or false, got {show(value)}")
    if kind == Kind.TIMESTAMP:
        return _timestamp(name, value)
    if kind == Kind.UUID:
        try:
            return UUID(str(value))
        except ValueError:
            raise FilterError(f"{name} takes a UUID, got {show(value)}") from None
    number = _number(name, value)
    if kind == Kind.COST:  # USD in the API, nano-USD in the store (UInt64)
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


def _timestamp(name: str, value: Any) -> datetime:
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
    return moment.astimezone(UTC)


def single(mapping: Any, what: str) -> tuple[str, Any]:
    if not isinstance(mapping, Mapping) or len(mapping) != 1:
        raise FilterError(f"expected an object with exactly one {what}, got {show(mapping)}")
    ((key, value),) = mapping.items()
    return str(key), value


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
