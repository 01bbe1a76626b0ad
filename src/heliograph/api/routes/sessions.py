"""`/v1/session/*` and `/v1/user/*`: sessions (with the tree) and users."""

from __future__ import annotations

from fastapi import APIRouter

from heliograph.analytics.aggregates import USER_SORTS, AggregateQuery, TimeRange
from heliograph.api.deps import IdentityDep, ServicesDep
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.schemas import SessionQueryBody, TimeFilter, UserMetricsBody

router = APIRouter(tags=["sessions"])


def _time(time_filter: TimeFilter | None) -> TimeRange:
    if time_filter is None:
        return TimeRange()
    return TimeRange(time_filter.startTimeUnixMs, time_filter.endTimeUnixMs)


def _session_query(body: SessionQueryBody) -> AggregateQuery:
    return AggregateQuery(
        filter=body.filter,
        time=_time(body.timeFilter),
        search=body.search,
        name=body.nameEquals,
        limit=body.limit,
        offset=body.offset,
    )


@router.post("/v1/session/query", operation_id="querySessions")
async def query_sessions(
    body: SessionQueryBody, identity: IdentityDep, services: ServicesDep
) -> JsonResponse:
    sessions = await services.aggregates.sessions(identity.organization_id, _session_query(body))
    return ok(sessions)


@router.post("/v1/session/count", operation_id="countSessions")
async def count_sessions(
    body: SessionQueryBody, identity: IdentityDep, services: ServicesDep
) -> JsonResponse:
    counts = await services.aggregates.session_count(identity.organization_id, _session_query(body))
    return ok(counts)


@router.get("/v1/session/{session_id}/tree", operation_id="getSessionTree")
async def session_tree(
    session_id: str, identity: IdentityDep, services: ServicesDep
) -> JsonResponse:
    tree = await services.aggregates.session_tree(identity.organization_id, session_id)
    if tree is None:
        return fail(404, f"no session {session_id!r}")
    return ok(tree)


@router.post("/v1/user/metrics/query", operation_id="queryUserMetrics")
async def user_metrics(
    body: UserMetricsBody, identity: IdentityDep, services: ServicesDep
) -> JsonResponse:
    sort, descending = "last_active", True
    if body.sort:
        ((sort, direction),) = body.sort.items()
        if sort not in USER_SORTS:
            return fail(400, f"unknown sort key {sort!r}; use one of {', '.join(USER_SORTS)}")
        descending = direction == "desc"
    query = AggregateQuery(
        filter=body.filter,
        time=_time(body.timeFilter),
        sort=sort,
        descending=descending,
        limit=body.limit,
        offset=body.offset,
    )
    users = await services.aggregates.users(identity.organization_id, query)
    return ok(users)
