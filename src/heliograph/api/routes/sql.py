"""`POST /v1/helicone-sql/execute`: read-only SQL over the caller's own requests."""

from __future__ import annotations

from fastapi import APIRouter

from heliograph.api.deps import IdentityDep, ServicesDep
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.schemas import SqlBody
from heliograph.services.sql_console import ConsoleError

router = APIRouter(prefix="/v1/helicone-sql", tags=["sql"])


@router.post("/execute", operation_id="executeSql")
async def execute(body: SqlBody, identity: IdentityDep, services: ServicesDep) -> JsonResponse:
    """One SELECT over `request_response` (or `request_response_rmt`) and `request_annotations`;
    the engine limits it to your organization's rows, 10,000 rows and 10 seconds."""
    try:
        return ok(await services.sql.execute(identity.organization_id, body.sql))
    except ConsoleError as error:
        return fail(400, str(error))
