"""`/v1/session/*`: the session list and totals, names, charts, one session's tree, and the tag and
feedback a person gives a session."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Path

from heliograph.api.deps import Reader, ServicesDep, Writer
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.schemas import (
    FeedbackBody,
    SessionMetricsBody,
    SessionNameBody,
    SessionQueryBody,
    SessionSelection,
    SessionTagBody,
    time_range,
)
from heliograph.domain.filters import MAX_TERM_CHARS, show
from heliograph.domain.queries import AggregateQuery

router = APIRouter(prefix="/v1/session", tags=["sessions"])
SessionId = Annotated[str, Path(min_length=1, max_length=MAX_TERM_CHARS)]


def _selected(body: SessionQueryBody | SessionSelection) -> AggregateQuery:
    """The requests and sessions a body's filter and time range select; each route adds the rest."""
    return AggregateQuery(
        filter=body.filter.requests,
        sessions=body.filter.sessions,
        time=time_range(body.timeFilter),
    )


def _session_query(body: SessionQueryBody) -> AggregateQuery:
    return replace(
        _selected(body),
        search=body.search,
        name=body.nameEquals,
        sort=body.sort,
        descending=body.sortDirection == "desc",
        limit=body.limit,
        offset=body.offset,
    )


def _no_session(session_id: str) -> JsonResponse:
    return fail(404, f"no session {show(session_id)}")


@router.post("/query", operation_id="querySessions")
async def query_sessions(
    body: SessionQueryBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    return ok(await services.sessions.sessions(caller.organization_id, _session_query(body)))


@router.post("/count", operation_id="countSessions")
async def count_sessions(
    body: SessionQueryBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    return ok(await services.sessions.count(caller.organization_id, _session_query(body)))


@router.post("/name/query", operation_id="querySessionNames")
async def query_session_names(
    body: SessionNameBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    query = replace(_selected(body), limit=body.limit, offset=body.offset)
    return ok(await services.sessions.names(caller.organization_id, query, body.nameContains))


@router.post("/metrics/query", operation_id="querySessionMetrics")
async def query_session_metrics(
    body: SessionMetricsBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    query = replace(_selected(body), name=body.nameContains or None)
    charts = await services.sessions.metrics(
        caller.organization_id, query, body.pSize, body.useInterquartile
    )
    return ok(charts)


@router.get("/{session_id}/tree", operation_id="getSessionTree")
async def session_tree(
    session_id: SessionId, caller: Reader, services: ServicesDep
) -> JsonResponse:
    tree = await services.sessions.tree(caller.organization_id, session_id)
    return _no_session(session_id) if tree is None else ok(tree)


@router.get("/{session_id}/tag", operation_id="getSessionTag")
async def get_session_tag(
    session_id: SessionId, caller: Reader, services: ServicesDep
) -> JsonResponse:
    annotations = await services.sessions.annotations(caller.organization_id, session_id)
    return ok(annotations["tag"])


@router.post("/{session_id}/tag", operation_id="setSessionTag")
async def set_session_tag(
    session_id: SessionId, body: SessionTagBody, caller: Writer, services: ServicesDep
) -> JsonResponse:
    tagged = await services.sessions.set_tag(caller.organization_id, session_id, body.tag)
    return ok(None) if tagged else _no_session(session_id)


@router.post("/{session_id}/feedback", operation_id="setSessionFeedback")
async def set_session_feedback(
    session_id: SessionId, body: FeedbackBody, caller: Writer, services: ServicesDep
) -> JsonResponse:
    rated = await services.sessions.set_feedback(caller.organization_id, session_id, body.rating)
    return ok(None) if rated else _no_session(session_id)
