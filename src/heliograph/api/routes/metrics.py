"""`/v1/metrics/*`: Helicone's dashboard metrics (single numbers, series over time, quantiles,
per-model breakdowns, request counts) and Heliograph's totals in one read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from heliograph.api.deps import Reader, ServicesDep
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.schemas import DataOverTimeBody, IsoTimeFilter, MetricsBody, RequestCountBody
from heliograph.domain.filters import show
from heliograph.domain.queries import AggregateQuery, TimeRange, check_span
from heliograph.domain.times import as_utc
from heliograph.services.metrics import OVER_TIME

router = APIRouter(tags=["metrics"])  # `/v1/metrics/*` and Helicone's `/v1/dashboard/*`
SINGLE = {
    "totalRequests": "total_requests",
    "totalCost": "total_cost",
    "averageLatency": "average_latency",
    "averageTimeToFirstToken": "average_time_to_first_token",
    "activeUsers": "active_users",
}
# Helicone's threat detection and request countries have nothing behind them here: Heliograph
# flags no prompt as a threat and stores no client country, so these answer zero or nothing.
NOTHING_STORED: dict[str, Any] = {"totalThreats": 0, "threatsOverTime": [], "country": []}


def iso_range(time_filter: IsoTimeFilter | None) -> TimeRange:
    """An ISO `timeFilter` (naive times are UTC) as the domain's range; none is all time."""
    if time_filter is None:
        return TimeRange()
    start, end = as_utc(time_filter.start), as_utc(time_filter.end)
    return TimeRange(int(start.timestamp() * 1000), int(end.timestamp() * 1000))


def metrics_query(body: MetricsBody) -> AggregateQuery:
    time = iso_range(body.timeFilter)
    return AggregateQuery(filter=body.filter, time=time, limit=body.limit, offset=body.offset)


@router.post("/v1/metrics/totals", operation_id="metricTotals")
async def totals(body: MetricsBody, caller: Reader, services: ServicesDep) -> JsonResponse:
    return ok(await services.metrics.totals(caller.organization_id, metrics_query(body)))


@router.post("/v1/metrics/quantiles", operation_id="metricQuantiles")
async def quantiles(body: MetricsBody, caller: Reader, services: ServicesDep) -> JsonResponse:
    points = await services.metrics.quantiles(
        caller.organization_id,
        metrics_query(body),
        body.metric,
        body.dbIncrement,
        body.timeZoneDifference,
    )
    return ok(points)


@router.post("/v1/metrics/models", operation_id="metricModels")
async def models(body: MetricsBody, caller: Reader, services: ServicesDep) -> JsonResponse:
    return ok(await services.metrics.models(caller.organization_id, metrics_query(body)))


@router.post("/v1/metrics/averageTokensPerRequest", operation_id="metricTokensPerRequest")
async def tokens_per_request(
    body: MetricsBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    """Helicone's `TokensPerRequest`: average prompt, completion and total tokens."""
    query = metrics_query(body)
    return ok(await services.metrics.tokens_per_request(caller.organization_id, query))


@router.post("/v1/metrics/requestCount", operation_id="metricRequestCount")
async def request_count(
    body: RequestCountBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    """Requests matching the filter over all time (`isCached`: only those that asked for the
    cache)."""
    count = await services.metrics.request_count(caller.organization_id, body.filter, body.isCached)
    return ok(count)


@router.post("/v1/providers", operation_id="providerMetrics")
async def providers(body: MetricsBody, caller: Reader, services: ServicesDep) -> JsonResponse:
    """Helicone's `ProviderMetric[]`: requests per provider in the range, busiest first."""
    return ok(await services.metrics.providers(caller.organization_id, metrics_query(body)))


@router.post("/v1/dashboard/scores/query", operation_id="dashboardScores")
async def dashboard_scores(
    body: DataOverTimeBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    """Helicone's score chart: `{created_at_trunc, score_key, score_sum}` per bucket and score
    name, where `score_sum` is (as in Helicone) the average of the requests' scores."""
    query = AggregateQuery(filter=body.userFilter, time=iso_range(body.timeFilter))
    points = await services.metrics.scores_over_time(
        caller.organization_id, query, body.dbIncrement, body.timeZoneDifference
    )
    return ok(points)


METRIC_NAMES = (*SINGLE, *OVER_TIME, *NOTHING_STORED)
MetricName = Annotated[str, Path(max_length=100, description="one of " + ", ".join(METRIC_NAMES))]


@router.post("/v1/metrics/{name}", operation_id="metric")
async def metric(
    name: MetricName, body: MetricsBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    """Helicone's single-number metrics (`totalRequests` ...) and series (`costOverTime` ...)."""
    if name in SINGLE:
        totals = await services.metrics.totals(caller.organization_id, metrics_query(body))
        return ok(totals[SINGLE[name]])
    if name in OVER_TIME:
        points = await services.metrics.over_time(
            caller.organization_id,
            metrics_query(body),
            name,
            body.dbIncrement,
            body.timeZoneDifference,
        )
        return ok(points)
    if name in NOTHING_STORED:
        if name == "threatsOverTime":  # the body is checked as any series' is
            check_span(metrics_query(body).time, body.dbIncrement)
        return ok(NOTHING_STORED[name])
    others = ["averageTokensPerRequest", "requestCount", "totals", "quantiles", "models"]
    known = ", ".join([*METRIC_NAMES, *others])
    return fail(404, f"no metric {show(name)}; use one of {known}")
