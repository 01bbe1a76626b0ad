"""`/v1/user/*`: per-user activity (with Helicone's sorts), per-user totals, and how requests and
cost spread over users."""

from __future__ import annotations

from fastapi import APIRouter

from heliograph.api.deps import Reader, ServicesDep
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.schemas import UserMetricsBody, UserOverviewBody, UserQueryBody, time_range
from heliograph.domain.queries import AggregateQuery
from heliograph.domain.sorts import USER_SORT_KEYS

router = APIRouter(prefix="/v1/user", tags=["users"])


@router.post("/metrics/query", operation_id="queryUserMetrics")
async def user_metrics(
    body: UserMetricsBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    sort, descending = "last_active", True
    if body.sort:
        ((sort, direction),) = body.sort.items()
        if sort not in USER_SORT_KEYS:
            return fail(400, f"unknown sort key {sort!r}; use one of {', '.join(USER_SORT_KEYS)}")
        descending = direction == "desc"
    query = AggregateQuery(
        filter=body.filter,
        time=time_range(body.timeFilter),
        sort=sort,
        descending=descending,
        limit=body.limit,
        offset=body.offset,
    )
    return ok(await services.users.metrics(caller.organization_id, query))


@router.post("/query", operation_id="queryUsers")
async def query_users(body: UserQueryBody, caller: Reader, services: ServicesDep) -> JsonResponse:
    query = AggregateQuery(
        time=time_range(body.timeFilter),
        user_ids=tuple(body.userIds or ()),
        limit=body.limit,
        offset=body.offset,
    )
    return ok(await services.users.totals(caller.organization_id, query))


@router.post("/metrics-overview/query", operation_id="userMetricsOverview")
async def user_metrics_overview(
    body: UserOverviewBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    """Helicone's `{request_count, user_cost}`: ten-bin histograms of requests and of cost (USD)
    per user."""
    query = AggregateQuery(filter=body.filter, time=time_range(body.timeFilter))
    overview = await services.users.overview(
        caller.organization_id, query, body.pSize, body.useInterquartile
    )
    return ok(overview)
