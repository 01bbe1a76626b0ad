"""A parsed filter: a tree of frozen values that says what rows to keep and nothing about SQL.

`domain.filters` builds it from Helicone's `FilterNode` JSON, with every value already checked and
converted (cost in nano-USD, times in UTC, UUIDs canonical); `analytics.filter_sql` alone turns
it into SQL. Columns know their name and kind, operators their name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID


class Kind(StrEnum):
    """What a column holds, which decides its operators and how a value is checked."""

    TEXT = "text"
    BODY = "body"
    NUMBER = "number"
    COST = "cost"
    TIMESTAMP = "timestamp"
    BOOL = "bool"
    UUID = "uuid"


class Operator(StrEnum):
    EQUALS = "equals"
    NOT_EQUALS = "not-equals"
    LIKE = "like"
    ILIKE = "ilike"
    CONTAINS = "contains"
    NOT_CONTAINS = "not-contains"
    GTE = "gte"
    LTE = "lte"
    LT = "lt"
    GT = "gt"


TEXT_OPS = (
    Operator.EQUALS,
    Operator.NOT_EQUALS,
    Operator.LIKE,
    Operator.ILIKE,
    Operator.CONTAINS,
    Operator.NOT_CONTAINS,
)
NUMBER_OPS = (
    Operator.EQUALS,
    Operator.NOT_EQUALS,
    Operator.GTE,
    Operator.LTE,
    Operator.LT,
    Operator.GT,
)
TIMESTAMP_OPS = (Operator.EQUALS, Operator.GTE, Operator.LTE, Operator.LT, Operator.GT)
OPERATORS_BY_KIND: dict[Kind, tuple[Operator, ...]] = {
    Kind.TEXT: TEXT_OPS,
    Kind.BODY: TEXT_OPS,
    Kind.NUMBER: NUMBER_OPS,
    Kind.COST: NUMBER_OPS,
    Kind.TIMESTAMP: TIMESTAMP_OPS,
    Kind.BOOL: (Operator.EQUALS,),
    Kind.UUID: (Operator.EQUALS, Operator.NOT_EQUALS),
}
# Text a caller sends to mean "no value" (Helicone's spelling), with equals or not-equals.
EMPTY_MARKERS = ("null", "__empty__")

# A checked value: text, a number (float; cost as nano-USD int), a UTC time, a flag or a UUID.
Value = str | float | int | bool | datetime | UUID


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class AllRows:
    """No condition: every row."""


ALL_ROWS = AllRows()


@dataclass(frozen=True, slots=True)
class ColumnCondition:
    """A condition on one column of a request (or, in `SessionCondition`, of a session)."""

    column: Column
    operator: Operator
    value: Value

    @property
    def means_empty(self) -> bool:
        """Text equal (or not) to Helicone's "no value" markers tests for an empty column."""
        return (
            self.column.kind in (Kind.TEXT, Kind.BODY)
            and self.operator in (Operator.EQUALS, Operator.NOT_EQUALS)
            and self.value in EMPTY_MARKERS
        )


@dataclass(frozen=True, slots=True)
class PropertyCondition:
    """Requests carrying custom property `key`, its value matching `condition` (a text one)."""

    key: str
    condition: ColumnCondition


@dataclass(frozen=True, slots=True)
class ScoreCondition:
    """Requests whose newest value for score `name` compares to `value`."""

    name: str
    operator: Operator
    value: float


@dataclass(frozen=True, slots=True)
class CachedCondition:
    """Requests answered from the cache (or not)."""

    cached: bool


@dataclass(frozen=True, slots=True)
class SessionCondition:
    """A condition on a whole session (its total cost, request count…), not on one request."""

    condition: ColumnCondition


@dataclass(frozen=True, slots=True)
class SessionTagCondition:
    """Sessions whose newest tag matches."""

    condition: ColumnCondition


Leaf = (
    ColumnCondition
    | PropertyCondition
    | ScoreCondition
    | CachedCondition
    | SessionCondition
    | SessionTagCondition
)


@dataclass(frozen=True, slots=True)
class Branch:
    operator: Literal["and", "or"]
    left: Filter
    right: Filter


Filter = AllRows | Branch | Leaf


def both(left: Filter, right: Filter) -> Filter:
    """`left AND right`, leaving out a side that keeps every row."""
    if isinstance(left, AllRows):
        return right
    if isinstance(right, AllRows):
        return left
    return Branch("and", left, right)


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """A session endpoint's filter, split: `requests` picks the requests counted in a session
    (SQL `WHERE`), `sessions` the sessions themselves (SQL `HAVING`)."""

    requests: Filter = ALL_ROWS
    sessions: Filter = ALL_ROWS
