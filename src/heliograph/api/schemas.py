"""Request bodies of the public API (Helicone's shapes). A body's `filter` and `sort` are parsed
here, once, into the domain's typed values; the OpenAPI document still shows them as the JSON
they arrive as."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from heliograph.domain.filter_tree import Filter, SessionFilter
from heliograph.domain.filters import parse_filter
from heliograph.domain.queries import TimeRange
from heliograph.domain.session_filters import parse_session_filter
from heliograph.domain.sorts import Sort, parse_sort

if TYPE_CHECKING:  # what the routes receive
    RequestFilter = Filter
    SessionFilterField = SessionFilter
    RequestSort = Sort
else:  # what pydantic validates (and documents), then parses; a refusal is a `FilterError`
    RequestFilter = Annotated[Any, AfterValidator(parse_filter)]
    SessionFilterField = Annotated[Any, AfterValidator(parse_session_filter)]
    RequestSort = Annotated[dict[str, Any] | None, AfterValidator(parse_sort)]


class HeliconeBody(BaseModel):
    """A body in Helicone's shape: fields Heliograph does not read are ignored, since Helicone's
    clients send them."""

    model_config = ConfigDict(extra="ignore")


class StrictBody(BaseModel):
    """A body of Heliograph's own: an unknown field is refused, naming it."""

    model_config = ConfigDict(extra="forbid")


class RequestQueryParams(HeliconeBody):
    """Helicone's `RequestQueryParams`: a `FilterNode`, sort, limit (0 to 1000) and offset."""

    filter: RequestFilter = Field(
        default="all",
        description="FilterNode: leaf, {left, operator, right} or 'all'",
        validate_default=True,
    )
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=10, ge=0, le=1000)
    sort: RequestSort = Field(
        default=None, description="one key, 'asc' or 'desc'", validate_default=True
    )
    includeBodies: bool = True


class CountQueryParams(HeliconeBody):
    filter: RequestFilter = Field(default="all", validate_default=True)


class RateLimitRuleBody(StrictBody):
    """An organization rule: applies to requests that send no `Helicone-RateLimit-Policy`."""

    name: str = Field(min_length=1, max_length=200)
    quota: float = Field(gt=0)
    window_seconds: int
    unit: Literal["request", "cents"] = "request"
    segment: str | None = Field(default=None, description="'user', a property name, or none")


class FeedbackBody(StrictBody):
    rating: StrictBool


class ScoresBody(StrictBody):
    """Scores by name; numbers may be floats (Helicone took integers only), booleans are 1 or 0."""

    scores: dict[str, float | bool] = Field(min_length=1, max_length=50)


class RedactionBody(StrictBody):
    """Kinds of personal data to redact from stored bodies: email, phone, card, secret."""

    kinds: list[str] = Field(max_length=10)


class TimeFilter(BaseModel):
    startTimeUnixMs: int | None = None
    endTimeUnixMs: int | None = None


def time_range(time_filter: TimeFilter | None) -> TimeRange:
    """A `timeFilter` (unix ms, either end open) as the domain's range."""
    if time_filter is None:
        return TimeRange()
    return TimeRange(time_filter.startTimeUnixMs, time_filter.endTimeUnixMs)


SESSION_FILTER_HELP = (
    "FilterNode; leaves on sessions_request_response_rmt (session_total_cost, session_tag...) "
    "select sessions, the others select the requests counted in them"
)


class SessionQueryBody(HeliconeBody):
    """Helicone's session query: search, time range, name, a filter, paging."""

    search: str = Field(default="", max_length=200)
    timeFilter: TimeFilter | None = None
    nameEquals: str | None = Field(default=None, max_length=1000)
    filter: SessionFilterField = Field(
        default="all", description=SESSION_FILTER_HELP, validate_default=True
    )
    sort: Literal[
        "latest_request_created_at", "created_at", "total_cost", "total_requests", "avg_latency"
    ] = "latest_request_created_at"
    sortDirection: Literal["asc", "desc"] = "desc"
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=50, ge=1, le=1000)


class SessionSelection(HeliconeBody):
    """The fields the session names and charts share: a name search, a time range, a filter."""

    nameContains: str = Field(default="", max_length=200)
    timeFilter: TimeFilter | None = None
    filter: SessionFilterField = Field(
        default="all", description=SESSION_FILTER_HELP, validate_default=True
    )


class SessionNameBody(SessionSelection):
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=50, ge=1, le=1000)


class SessionMetricsBody(SessionSelection):
    """The session charts: requests, duration and cost per session as trimmed histograms."""

    pSize: Literal["p50", "p75", "p95", "p99", "p99.9"] = "p75"
    useInterquartile: bool = False


class SessionTagBody(StrictBody):
    tag: str = Field(max_length=200)


class UserQueryBody(HeliconeBody):
    """Helicone's `/v1/user/query`: totals for some users (or all), busiest first."""

    userIds: list[Annotated[str, Field(max_length=1000)]] | None = Field(
        default=None, max_length=1000
    )
    timeFilter: TimeFilter | None = None
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=1000)


class PropertyKeyBody(StrictBody):
    key: str = Field(min_length=1, max_length=500)


class UserMetricsBody(HeliconeBody):
    filter: RequestFilter = Field(default="all", validate_default=True)
    timeFilter: TimeFilter | None = None
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=50, ge=1, le=1000)
    sort: dict[str, Literal["asc", "desc"]] | None = Field(default=None, max_length=1)


class ExportBody(StrictBody):
    filter: RequestFilter = Field(default="all", validate_default=True)
    format: Literal["jsonl", "csv"] = "jsonl"


class IsoTimeFilter(BaseModel):
    start: datetime
    end: datetime


class MetricsBody(HeliconeBody):
    """Helicone's metrics request: filter, ISO time range, bucket size, client time-zone offset."""

    filter: RequestFilter = Field(default="all", validate_default=True)
    timeFilter: IsoTimeFilter | None = None
    dbIncrement: Literal["min", "hour", "day", "week", "month", "year"] = "hour"
    timeZoneDifference: int = Field(default=0, ge=-14 * 60, le=14 * 60)
    metric: Literal["latency", "time_to_first_token", "total_tokens"] = "latency"
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=1000)


class PropertyBody(MetricsBody):
    """A properties request: the metrics request plus a value search term."""

    searchTerm: str = Field(default="", max_length=200)


class SqlBody(StrictBody):
    sql: str = Field(min_length=1, max_length=20_000)


class PageBody(StrictBody):
    """A page of the request list by keyset cursor (newest first)."""

    filter: RequestFilter = Field(default="all", validate_default=True)
    limit: int = 100
    cursor: str | None = Field(default=None, max_length=500)


class RequestIdsBody(HeliconeBody):
    """Helicone's `/v1/request/query-ids`: up to 1,000 request ids (UUIDs)."""

    requestIds: list[Annotated[str, Field(max_length=64)]] = Field(max_length=1000)


class PropertyValueBody(HeliconeBody):
    """A property added to a logged request: a key as `Helicone-Property-*` names go, a value."""

    key: str = Field(min_length=1, max_length=256)
    value: str = Field(max_length=10_000)


class RequestCountBody(HeliconeBody):
    """Helicone's `/v1/metrics/requestCount`: a filter over all time, cache-enabled only or not."""

    filter: RequestFilter = Field(default="all", validate_default=True)
    isCached: bool = False


class DataOverTimeBody(HeliconeBody):
    """Helicone's `DataOverTimeRequest`: a series' range, filter (called `userFilter`), bucket
    size and the client's time-zone offset in minutes."""

    timeFilter: IsoTimeFilter
    userFilter: RequestFilter = Field(default="all", validate_default=True)
    dbIncrement: Literal["min", "hour", "day", "week", "month", "year"] = "hour"
    timeZoneDifference: int = Field(default=0, ge=-14 * 60, le=14 * 60)


class PropertiesOverTimeBody(DataOverTimeBody):
    """Helicone's `/v1/property/properties/over-time`: requests and cost per value of one
    property per bucket."""

    propertyKey: str = Field(min_length=1, max_length=500)


class UserOverviewBody(HeliconeBody):
    """Helicone's `/v1/user/metrics-overview/query`: the distributions of requests and cost over
    users, trimmed at `pSize` (or to the interquartile-like range)."""

    filter: RequestFilter = Field(default="all", validate_default=True)
    pSize: Literal["p50", "p75", "p95", "p99", "p99.9"] = "p75"
    useInterquartile: bool = False
    timeFilter: TimeFilter | None = None
