"""`/v1/metrics/*`: totals, series over time, quantiles and per-model breakdowns."""

from __future__ import annotations

from datetime import UTC

from fastapi import APIRouter

from heliograph.api.deps import Reader, ServicesDep
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.schemas import MetricsBody
from heliograph.domain.filters import show
from heliograph.domain.queries import AggregateQuery, TimeRange
from heliograph.services.metrics import OVER_TIME

router = APIRouter(prefix="/v1/metrics", tags=["metrics"])
SINGLE = {
    "totalRequests": "total_requests",
    "totalCost": "total_cost",
    "averageLatency": "average_latency",
    "averageTimeToFirstToken": "average_time_to_first_token",
    "activeUsers": "active_users",
    "averageTokensPerRequest": "average_tokens_per_request",
}


def metrics_query(body: MetricsBody) -> AggregateQuery:
    time = TimeRange()
    if body.timeFilter is not None:
        start, end = body.timeFilter.start, body.timeFilter.end
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
        end = end if end.tzinfo else end.replace(tzinfo=UTC)
        time = TimeRange(int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    return AggregateQuery(filter=body.filter, time=time, limit=body.limit, offset=body.offset)


@router.post("/totals", operation_id="metricTotals")
async def totals(body: MetricsBody, caller: Reader, services: ServicesDep) -> JsonResponse:
    return ok(await services.metrics.totals(caller.organization_id, metrics_query(body)))


@router.post("/quantiles", operation_id="metricQuantiles")
async def quantiles(body: MetricsBody, caller: Reader, services: ServicesDep) -> JsonResponse:
    points = await services.metrics.quantiles(
        caller.organization_id,
        metrics_query(body),
        body.metric,
        body.dbIncrement,
        body.timeZoneDifference,
    )
    return ok(points)


@router.post("/models", operation_id="metricModels")
async def models(body: MetricsBody, caller: Reader, services: ServicesDep) -> JsonResponse:
    return ok(await services.metrics.models(caller.organization_id, metrics_query(body)))


@router.post("/{name}", operation_id="metric")
async def metric(
    name: str, body: MetricsBody, caller: Reader, services: ServicesDep
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
    known = ", ".join([*SINGLE, *OVER_TIME, "totals", "quantiles", "models"])
    return fail(404, f"no metric {show(name)}; use one of {known}")
