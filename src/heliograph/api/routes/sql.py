"""Helicone's SQL console routes: `execute` (rows as JSON), `download` (the result as a CSV file)
and `schema` (the tables and columns a query can read). Refusals are 400s, a second concurrent
query of the same organization a 429. A download is an export: it is in the audit log."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from heliograph.api.deps import Reader, ServicesDep, actor_of
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.schemas import SqlBody
from heliograph.services.sql_console import RETRY_AFTER_S, ConsoleBusy, ConsoleError

router = APIRouter(prefix="/v1/helicone-sql", tags=["sql"])
AUDITED_SQL_CHARS = 1000


@router.post("/execute", operation_id="executeSql")
async def execute(body: SqlBody, caller: Reader, services: ServicesDep) -> Response:
    """One SELECT over the console's tables (see `schema`), with allow-listed functions only; the
    engine limits it to your organization's rows, 10,000 result rows, 5 seconds and 256 MiB."""
    try:
        return ok(await services.sql.execute(caller.organization_id, body.sql))
    except ConsoleError as error:
        return fail(400, str(error))
    except ConsoleBusy as busy:
        return _busy(busy)


@router.post("/download", operation_id="downloadSql")
async def download(
    body: SqlBody, request: Request, caller: Reader, services: ServicesDep
) -> Response:
    """The same query's result as a CSV file with a header row."""
    try:
        csv = await services.sql.download(caller.organization_id, body.sql)
    except ConsoleError as error:
        return fail(400, str(error))
    except ConsoleBusy as busy:
        return _busy(busy)
    actor, target = actor_of(request, caller), ("sql", "")
    details = {"sql": body.sql[:AUDITED_SQL_CHARS]}
    await run_in_threadpool(
        services.audit.record, actor, "export.sql", caller.organization_id, target, details
    )
    disposition = 'attachment; filename="heliograph-query.csv"'
    return Response(csv, media_type="text/csv", headers={"Content-Disposition": disposition})


@router.get("/schema", operation_id="getSqlSchema")
async def schema(_caller: Reader, services: ServicesDep) -> JsonResponse:
    """The tables a console query can read, each with its columns' names and types."""
    return ok(await services.sql.schema())


def _busy(busy: ConsoleBusy) -> JsonResponse:
    response = fail(429, f"{busy}; retry in a moment")
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response
