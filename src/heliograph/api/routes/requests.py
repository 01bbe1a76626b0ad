"""`/v1/request/*`: search, count and read logged requests."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from heliograph.analytics.store import RequestQuery
from heliograph.api.deps import IdentityDep, ServicesDep
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.schemas import CountQueryParams, RequestQueryParams
from heliograph.domain.filters import FilterError
from heliograph.services.requests import QueryError

router = APIRouter(prefix="/v1/request", tags=["request"])


async def _query(
    params: RequestQueryParams, identity: IdentityDep, services: ServicesDep
) -> JsonResponse:
    query = RequestQuery(
        filter=params.filter,
        sort=params.sort,
        limit=params.limit,
        offset=params.offset,
        include_bodies=params.includeBodies,
    )
    try:
        rows = await services.requests.query(identity.organization_id, query)
    except (FilterError, QueryError) as error:
        return fail(400, str(error))
    return ok(rows)


router.add_api_route(
    "/query-clickhouse", _query, methods=["POST"], operation_id="queryRequestsClickhouse"
)
router.add_api_route("/query", _query, methods=["POST"], operation_id="queryRequests")


@router.post("/count/query", operation_id="countRequests")
async def count_requests(
    params: CountQueryParams, identity: IdentityDep, services: ServicesDep
) -> JsonResponse:
    try:
        count = await services.requests.count(identity.organization_id, params.filter)
    except FilterError as error:
        return fail(400, str(error))
    return ok(count)


@router.get("/{request_id}", operation_id="getRequest")
async def get_request(
    request_id: str, identity: IdentityDep, services: ServicesDep, includeBody: bool = False
) -> JsonResponse:
    try:
        canonical = str(uuid.UUID(request_id))
    except ValueError:
        return fail(400, f"request id must be a UUID, got {request_id!r}")
    row = await services.requests.get(identity.organization_id, canonical, includeBody)
    if row is None:
        return fail(404, f"no request {canonical}")
    return ok(row)
