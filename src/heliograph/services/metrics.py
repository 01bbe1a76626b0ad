"""Dashboard metrics in Helicone's shapes: totals, series over time, quantiles, per-model use."""

from __future__ import annotations

import math
from typing import Any, cast

from heliograph.analytics.aggregate_rows import MetricTotalsRow, SeriesRow
from heliograph.analytics.store import AnalyticsStore
from heliograph.domain.filter_tree import Filter
from heliograph.domain.money import nano_to_usd
from heliograph.domain.queries import AggregateQuery, check_span
from heliograph.domain.times import iso_time
from heliograph.services.token_counts import token_counts

# Helicone's route name -> (series, the value fields of each point)
OVER_TIME = {
    "requestOverTime": "requests",
    "costOverTime": "cost",
    "latencyOverTime": "latency",
    "tokensOverTime": "tokens",
    "timeToFirstToken": "ttft",
    "usersOverTime": "users",
    "errorOverTime": "errors",
    "requestStatusOverTime": "status",
    "detailedTokensOverTime": "tokens",
    "modelUsageOverTime": "model_usage",
}


class MetricsService:
    def __init__(self, store: AnalyticsStore) -> None:
        self._aggregates = store.aggregates
        self._requests = store.requests

    async def tokens_per_request(
        self, organization_id: str, query: AggregateQuery
    ) -> dict[str, float]:
        """Helicone's `TokensPerRequest`: average prompt, completion and total tokens (total by
        Heliograph's definition, with cached and reasoning tokens); 0 over no requests."""
        totals = await self.totals(organization_id, query)
        requests = max(totals["total_requests"], 1)
        return {
            "average_prompt_tokens_per_response": totals["prompt_tokens"] / requests,
            "average_completion_tokens_per_response": totals["completion_tokens"] / requests,
            "average_total_tokens_per_response": totals["total_tokens"] / requests,
        }

    async def providers(self, organization_id: str, query: AggregateQuery) -> list[dict[str, Any]]:
        rows = await self._aggregates.providers(organization_id, query)
        return [
            {"provider": row["provider"], "total_requests": int(row["total_requests"])}
            for row in rows
        ]

    async def scores_over_time(
        self, organization_id: str, query: AggregateQuery, increment: str, tz: int
    ) -> list[dict[str, Any]]:
        """Helicone's score chart: per bucket and score name, the average score."""
        check_span(query.time, increment)
        rows = await self._aggregates.scores_over_time(organization_id, query, increment, tz)
        return [
            {
                "created_at_trunc": iso_time(row["time"]),
                "score_key": row["score_key"],
                "score_sum": float(row["score_sum"]),
            }
            for row in rows
        ]

    async def request_count(self, organization_id: str, tree: Filter, cache_enabled: bool) -> int:
        """Helicone's `requestCount`: requests matching the filter over all time; with
        `cache_enabled`, only those that asked for the cache."""
        return await self._requests.count(organization_id, tree, cache_enabled)

    async def totals(self, organization_id: str, query: AggregateQuery) -> dict[str, Any]:
        return _totals(await self._aggregates.metric_totals(organization_id, query))

    async def dashboard(self, organization_id: str, query: AggregateQuery) -> dict[str, Any]:
        """The home page's numbers in one read: `totals`, and the `latency` and `ttft` p50 … p99
        over the whole range (None where nothing was measured)."""
        row = await self._aggregates.dashboard(organization_id, query)
        return {
            "totals": _totals(cast("MetricTotalsRow", row)),
            "latency": _quantiles(row["latency_quantiles"]),
            "ttft": _quantiles(row["ttft_quantiles"]),
        }

    async def dashboard_series(
        self, organization_id: str, query: AggregateQuery, increment: str, tz: int
    ) -> list[dict[str, Any]]:
        """The home page's charts in one read: per bucket, requests, errors, cost, tokens, time to
        first token, and latency p50 … p99."""
        check_span(query.time, increment)
        rows = await self._aggregates.dashboard_series(organization_id, query, increment, tz)
        points = []
        for row in rows:
            latency = _quantiles(row.pop("latency_quantiles"))  # before `_point` reads the rest
            points.append(_point(row) | latency)
        return points

    async def over_time(
        self, organization_id: str, query: AggregateQuery, route: str, increment: str, tz: int
    ) -> list[dict[str, Any]]:
        check_span(query.time, increment)
        rows = await self._aggregates.metric_series(
            organization_id, query, OVER_TIME[route], increment, tz
        )
        return [_point(row) for row in rows]

    async def cache_over_time(
        self, organization_id: str, query: AggregateQuery, increment: str, tz: int
    ) -> list[dict[str, Any]]:
        """Cache hits per bucket, with the cost (`cost`) and time (`saved_latency_ms`) saved."""
        check_span(query.time, increment)
        rows = await self._aggregates.metric_series(organization_id, query, "cache", increment, tz)
        return [_point(row) for row in rows]

    async def cached_requests(
        self, organization_id: str, query: AggregateQuery
    ) -> list[dict[str, Any]]:
        """The requests answered from the cache most often in the range, newest hit first
        among equals, each with its hits and savings (at most `query.limit`)."""
        rows = await self._aggregates.cached_requests(organization_id, query)
        return [
            {
                "request_id": row["cached_request_id"],
                "hits": int(row["hits"]),
                "saved_cost": nano_to_usd(row["saved_cost_nano"]),
                "saved_latency_ms": int(row["saved_latency_ms"]),
                "last_hit": row["last_hit"],
                "last_hit_id": row["last_hit_id"],
                "model": row["model"],
            }
            for row in rows
        ]

    async def quantiles(
        self, organization_id: str, query: AggregateQuery, metric: str, increment: str, tz: int
    ) -> list[dict[str, Any]]:
        check_span(query.time, increment)
        rows = await self._aggregates.metric_quantiles(
            organization_id, query, metric, increment, tz
        )
        return [
            {
                "time": iso_time(row["time"]),
                **dict(zip(("p50", "p75", "p90", "p95", "p99"), row["values"], strict=True)),
            }
            for row in rows
        ]

    async def models(self, organization_id: str, query: AggregateQuery) -> list[dict[str, Any]]:
        rows = await self._aggregates.model_breakdown(organization_id, query)
        return [
            {
                "model": row["model"],
                "provider": row["provider"],
                "total_requests": int(row["total_requests"]),
                **token_counts(row),
                # Helicone's `ModelMetric` names for the same sums
                "total_prompt_token": int(row["prompt_tokens"] or 0),
                "total_completion_tokens": int(row["completion_tokens"] or 0),
                "cost": nano_to_usd(row["cost_nano"]),
                "average_latency": _number(row["avg_latency"]),
            }
            for row in rows
        ]


def _totals(row: MetricTotalsRow) -> dict[str, Any]:
    return {
        "total_requests": int(row["requests"]),
        "total_cost": nano_to_usd(row["cost_nano"]),
        **token_counts(row),
        "average_tokens_per_request": int(row["total_tokens"]) / max(int(row["requests"]), 1),
        "average_latency": _number(row["avg_latency"]),
        "average_time_to_first_token": _number(row["avg_ttft"]),
        "active_users": int(row["active_users"]),
        "errors": int(row["errors"]),
        "cache_hits": int(row["cache_hits"]),
        "cache_saved_cost": nano_to_usd(row["cache_saved_cost_nano"]),
        "cache_saved_latency_ms": int(row["cache_saved_latency_ms"]),
    }


def _quantiles(values: list[float | None]) -> dict[str, float | None]:
    names = ("p50", "p75", "p90", "p95", "p99")
    return {
        name: None if value is None or math.isnan(value) else float(value)
        for name, value in zip(names, values, strict=True)
    }


def _point(row: SeriesRow) -> dict[str, Any]:
    point: dict[str, Any] = {"time": iso_time(row.pop("time"))}
    for name, value in row.items():
        if name == "cost_nano":
            point["cost"] = nano_to_usd(value)
        else:
            point[name] = value if isinstance(value, str) else _number(value)
    return point


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number
