"""The SQL console's saved queries, in Helicone's paths and shapes (`HqlSavedQuery`): list and
read with READ, create, change and delete with WRITE. The SQL is checked by the console's gate
when saved. Plain `def` routes: FastAPI runs them on its thread pool, so app DB calls never block
the event loop."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import Field

from heliograph.api.deps import Reader, ServicesDep, Writer, actor_of
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.schemas import StrictBody
from heliograph.services.saved_queries import MAX_BULK_IDS, MAX_NAME_CHARS, SavedQueryInfo

router = APIRouter(prefix="/v1/helicone-sql", tags=["sql"])

QueryId = Annotated[str, Path(min_length=1, max_length=64)]
# Generous on characters: the service counts the SQL's bytes and runs the console's gate.
Sql = Annotated[str, Field(min_length=1, max_length=64 * 1024)]


class SavedQueryBody(StrictBody):
    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
    sql: Sql
    id: Annotated[str | None, Field(max_length=64)] = None  # Helicone's client may repeat it


class BulkDeleteBody(StrictBody):
    ids: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=MAX_BULK_IDS)]


def _shape(query: SavedQueryInfo) -> dict[str, Any]:
    return {
        "id": query.id,
        "organization_id": query.organization_id,
        "name": query.name,
        "sql": query.sql,
        "created_at": _iso(query.created_at),
        "updated_at": _iso(query.updated_at),
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


@router.get("/saved-queries", operation_id="listSavedQueries")
def list_queries(caller: Reader, services: ServicesDep) -> JsonResponse:
    """The organization's saved queries, oldest first."""
    return ok(
        [_shape(query) for query in services.saved_queries.list_queries(caller.organization_id)]
    )


@router.get("/saved-query/{query_id}", operation_id="getSavedQuery")
def get_query(query_id: QueryId, caller: Reader, services: ServicesDep) -> JsonResponse:
    query = services.saved_queries.get(caller.organization_id, query_id)
    return fail(404, f"no saved query {query_id}") if query is None else ok(_shape(query))


@router.post("/saved-query", operation_id="createSavedQuery")
def create_query(
    body: SavedQueryBody, request: Request, caller: Writer, services: ServicesDep
) -> JsonResponse:
    """Save a query; as in Helicone the answer is a list holding the new query."""
    actor = actor_of(request, caller)
    query = services.saved_queries.create(caller.organization_id, body.name, body.sql, actor)
    return ok([_shape(query)], status_code=201)


@router.put("/saved-query/{query_id}", operation_id="updateSavedQuery")
def update_query(
    query_id: QueryId,
    body: SavedQueryBody,
    request: Request,
    caller: Writer,
    services: ServicesDep,
) -> JsonResponse:
    if body.id is not None and body.id != query_id:
        return fail(400, "the body's id differs from the path's")
    actor = actor_of(request, caller)
    query = services.saved_queries.update(
        caller.organization_id, query_id, body.name, body.sql, actor
    )
    return fail(404, f"no saved query {query_id}") if query is None else ok(_shape(query))


@router.delete(
    "/saved-query/{query_id}", operation_id="deleteSavedQuery", status_code=204, response_model=None
)
def delete_query(
    query_id: QueryId, request: Request, caller: Writer, services: ServicesDep
) -> Response:
    actor = actor_of(request, caller)
    if not services.saved_queries.delete(caller.organization_id, [query_id], actor):
        return fail(404, f"no saved query {query_id}")
    return Response(status_code=204)


@router.post("/saved-queries/bulk-delete", operation_id="bulkDeleteSavedQueries")
def bulk_delete(
    body: BulkDeleteBody, request: Request, caller: Writer, services: ServicesDep
) -> JsonResponse:
    """Delete those of `ids` the organization has (others are ignored, as in Helicone)."""
    actor = actor_of(request, caller)
    deleted = services.saved_queries.delete(caller.organization_id, body.ids, actor)
    return ok({"deleted": deleted})
