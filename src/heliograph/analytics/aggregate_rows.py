"""The rows aggregate reads return, as the services read them. The engine may print a 64-bit
integer as text, so counts and sums are `Number`s the services convert."""

from __future__ import annotations

from typing import Any, TypedDict

Number = int | float | str


class TokenSums(TypedDict):
    """`aggregates.TOKEN_SUMS` (and the metrics' `USAGE_TOTALS`)."""

    prompt_tokens: Number
    completion_tokens: Number
    prompt_cache_read_tokens: Number
    prompt_cache_write_tokens: Number
    reasoning_tokens: Number
    total_tokens: Number


class SessionRow(TokenSums):
    session_id: str
    session_name: str
    created_at: str
    latest_request_created_at: str
    total_requests: Number
    total_cost: Number
    avg_latency: Number
    total_latency: Number
    duration_ms: Number
    user_ids: list[str]


class SessionCountRow(TypedDict):
    count: Number
    total_cost: Number | None
    avg_cost: Number | None
    avg_latency: Number | None
    avg_requests: Number | None


class SessionNameRow(TypedDict):
    name: str
    first_used: str
    last_used: str
    session_count: Number
    total_requests: Number
    total_cost: Number
    avg_latency: Number


class UserRow(TokenSums):
    user_id: str
    total_requests: Number
    first_active: str
    last_active: str
    active_days: Number
    total_cost: Number


class UserTotalsRow(TokenSums):
    user_id: str
    count: Number
    cost: Number


class MetricTotalsRow(TokenSums):
    requests: Number
    cost_nano: Number
    avg_latency: Number | None
    avg_ttft: Number | None
    active_users: Number
    errors: Number
    cache_hits: Number
    cache_saved_cost_nano: Number
    cache_saved_latency_ms: Number


class QuantileRow(TypedDict):
    time: str
    values: list[float]


class ModelRow(TokenSums):
    model: str
    provider: str
    total_requests: Number
    cost_nano: Number
    avg_latency: Number | None


class PropertyKeyRow(TypedDict):
    key: str
    requests: Number


class PropertyValueRow(TypedDict):
    value: str
    requests: Number


class PropertyTopRow(TypedDict):
    value: str
    requests: Number
    cost_nano: Number


class PropertyOverTimeRow(TypedDict):
    time: str
    value: str
    requests: Number
    cost_nano: Number


# A series point: `time` and the series' own value fields (`metrics.SERIES`).
SeriesRow = dict[str, Any]
# The session charts' bounds and histograms, one field per chart (`sessions.DISTRIBUTIONS`).
DistributionRow = dict[str, Any]
