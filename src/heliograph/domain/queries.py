"""What a read asks for, as typed values built once at the API edge: a request list
(`RequestQuery`), an aggregate (`AggregateQuery`: sessions, users, metrics, properties), their
time range and bucket sizes, and `QueryError` for paging, ranges and keys that are refused."""

from __future__ import annotations

from dataclasses import dataclass, field

from heliograph.domain.errors import InvalidInput
from heliograph.domain.filter_tree import ALL_ROWS, Filter
from heliograph.domain.sorts import NEWEST_FIRST, Sort


class QueryError(InvalidInput):
    """The query parameters are invalid; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    start_ms: int | None = None
    end_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RequestQuery:
    filter: Filter = ALL_ROWS
    sort: Sort = NEWEST_FIRST
    limit: int = 10
    offset: int = 0
    include_bodies: bool = True


@dataclass(frozen=True, slots=True)
class AggregateQuery:
    """`filter` picks requests; `sessions` (session endpoints only) picks whole sessions."""

    filter: Filter = ALL_ROWS
    time: TimeRange = field(default_factory=TimeRange)
    search: str = ""
    name: str | None = None
    sort: str = ""
    descending: bool = True
    limit: int = 50
    offset: int = 0
    user_ids: tuple[str, ...] = ()
    sessions: Filter = ALL_ROWS


# A series' bucket sizes (Helicone's `dbIncrement`), in minutes, and the most buckets one asks for.
BUCKET_MINUTES = {"min": 1, "hour": 60, "day": 1440, "week": 10080, "month": 43200, "year": 525600}
INCREMENTS = tuple(BUCKET_MINUTES)
MAX_BUCKETS = 100_000
# What `/v1/metrics/quantiles` measures, and where the session charts trim (`pSize`).
QUANTILE_METRICS = ("latency", "time_to_first_token", "total_tokens")
SESSION_PERCENTILES = {"p50": 0.5, "p75": 0.75, "p95": 0.95, "p99": 0.99, "p99.9": 0.999}


def check_span(time: TimeRange, increment: str) -> None:
    """A series needs a bounded, ordered range of at most `MAX_BUCKETS` buckets."""
    start, end = time.start_ms, time.end_ms
    if start is None or end is None:
        raise QueryError("series need a timeFilter with start and end")
    if start >= end:
        raise QueryError("timeFilter.start must be before timeFilter.end")
    buckets = (end - start) / 60_000 / BUCKET_MINUTES[increment]
    if buckets > MAX_BUCKETS:
        raise QueryError(f"{buckets:.0f} {increment} buckets is too many; use a larger dbIncrement")
