"""`/v1/request/*`: search, count and read logged requests (by filter or by ids), their prompt
inputs; feedback, scores and properties added after the fact; exports (each in the audit log)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from heliograph.api.deps import Reader, ServicesDep, Writer, actor_of
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.schemas import (
    CountQueryParams,
    ExportBody,
    FeedbackBody,
    PageBody,
    PropertyValueBody,
    RequestIdsBody,
    RequestQueryParams,
    ScoresBody,
)
from heliograph.domain.filters import FEEDBACK_SCORE, check_text
from heliograph.domain.queries import RequestQuery
from heliograph.services.export import csv_lines, jsonl
from heliograph.services.requests import canonical_id

router = APIRouter(prefix="/v1/request", tags=["request"])
MAX_SCORE_NAME_CHARS = 100


async def _query(params: RequestQueryParams, caller: Reader, services: ServicesDep) -> JsonResponse:
    query = RequestQuery(
        filter=params.filter,
        sort=params.sort,
        limit=params.limit,
        offset=params.offset,
        include_bodies=params.includeBodies,
    )
    rows = await services.requests.query(caller.organization_id, query)
    return ok(rows)


router.add_api_route(
    "/query-clickhouse", _query, methods=["POST"], operation_id="queryRequestsClickhouse"
)
router.add_api_route("/query", _query, methods=["POST"], operation_id="queryRequests")


@router.post("/page", operation_id="pageRequests")
async def page_requests(body: PageBody, caller: Reader, services: ServicesDep) -> JsonResponse:
    """Newest first with a keyset cursor: pages stay stable while new requests arrive."""
    page = await services.requests.page(
        caller.organization_id, body.filter, body.limit, body.cursor
    )
    return ok(page)


EXPORT_CONTENT: dict[str, Any] = {"application/x-ndjson": {}, "text/csv": {}}


@router.post(
    "/export",
    operation_id="exportRequests",
    response_model=None,
    responses={200: {"description": "JSON lines or CSV", "content": EXPORT_CONTENT}},
)
async def export_requests(
    body: ExportBody, request: Request, caller: Reader, services: ServicesDep
) -> StreamingResponse | JsonResponse:
    """Every matching request, newest first, streamed as JSON lines or CSV with no row limit."""
    actor, target = actor_of(request, caller), ("requests", "")
    details = {"format": body.format}
    await run_in_threadpool(
        services.audit.record, actor, "export.requests", caller.organization_id, target, details
    )
    rows = services.requests.export(caller.organization_id, body.filter)
    if body.format == "csv":
        return StreamingResponse(csv_lines(rows), media_type="text/csv")
    return StreamingResponse(jsonl(rows), media_type="application/x-ndjson")


@router.post("/count/query", operation_id="countRequests")
async def count_requests(
    params: CountQueryParams, caller: Reader, services: ServicesDep
) -> JsonResponse:
    count = await services.requests.count(caller.organization_id, params.filter)
    return ok(count)


@router.post("/query-ids", operation_id="queryRequestsByIds")
async def query_by_ids(body: RequestIdsBody, caller: Reader, services: ServicesDep) -> JsonResponse:
    """Helicone's lookup by id: the organization's requests among `requestIds`, newest first,
    with bodies; ids of other organizations' requests are simply not found."""
    return ok(await services.requests.by_ids(caller.organization_id, body.requestIds))


@router.get("/{request_id}", operation_id="getRequest")
async def get_request(
    request_id: str, caller: Reader, services: ServicesDep, includeBody: bool = False
) -> JsonResponse:
    canonical = canonical_id(request_id)
    row = await services.requests.get(caller.organization_id, canonical, includeBody)
    if row is None:
        return fail(404, f"no request {canonical}")
    return ok(row)


@router.get("/{request_id}/inputs", operation_id="getRequestInputs")
async def get_inputs(request_id: str, caller: Reader, services: ServicesDep) -> JsonResponse:
    """The prompt inputs of a request as Helicone shapes them, `data: null` when it used no
    prompt (they come from the properties the gateway set when it compiled one, or from
    Helicone's legacy prompt tags in the body)."""
    canonical = canonical_id(request_id)
    inputs = await services.requests.inputs(caller.organization_id, canonical)
    if inputs is None:
        return fail(404, f"no request {canonical}")
    return ok(inputs or None)


@router.put("/{request_id}/property", operation_id="putRequestProperty")
async def put_property(
    request_id: str, body: PropertyValueBody, caller: Writer, services: ServicesDep
) -> JsonResponse:
    """Add a property to a logged request, or replace one: stored beside the request (newest
    value per key wins over the logged one) and seen by reads, filters and property lists."""
    canonical = canonical_id(request_id)
    if not await services.requests.add_property(
        caller.organization_id, canonical, body.key, body.value
    ):
        return fail(404, f"no request {canonical}")
    return ok(None)


@router.post("/{request_id}/feedback", operation_id="addFeedback", status_code=201)
async def add_feedback(
    request_id: str, body: FeedbackBody, caller: Writer, services: ServicesDep
) -> JsonResponse:
    canonical = canonical_id(request_id)
    value = 1.0 if body.rating else 0.0
    await services.requests.annotate(
        caller.organization_id, canonical, {FEEDBACK_SCORE: value}, "feedback"
    )
    return ok({"request_id": canonical, "rating": body.rating}, status_code=201)


@router.post("/{request_id}/score", operation_id="addScores", status_code=201)
async def add_scores(
    request_id: str, body: ScoresBody, caller: Writer, services: ServicesDep
) -> JsonResponse:
    canonical = canonical_id(request_id)
    scores: dict[str, float] = {}
    for name, value in body.scores.items():
        number = float(value)
        if not name.strip():
            return fail(400, "score names cannot be blank")
        check_text("a score name", name, MAX_SCORE_NAME_CHARS)
        if not math.isfinite(number):
            return fail(400, f"score {name!r} must be a finite number")
        scores[name] = number
    await services.requests.annotate(caller.organization_id, canonical, scores, "api")
    return ok({"request_id": canonical, "scores": scores}, status_code=201)
