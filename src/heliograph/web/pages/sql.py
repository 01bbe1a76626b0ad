"""`/sql`: the SQL console. The query lives in the URL (`?q=`), so a link reproduces it; the page
runs it through `services.sql` (read-only, scoped to the organization) and shows the rows, or the
console's message; `/sql/download` gives the same result as CSV and records it as an export."""

from __future__ import annotations

from typing import Annotated, Any
from weakref import WeakKeyDictionary

import orjson
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from heliograph.api.deps import ServicesDep, actor_of
from heliograph.domain.sql_console import MAX_SQL_CHARS
from heliograph.services.sql_console import ConsoleBusy, ConsoleError, SqlConsole
from heliograph.web.templating import TemplatesDep
from heliograph.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)
SHOWN_ROWS = 200  # rows drawn as a table; the CSV download has all of them
AUDITED_SQL_CHARS = 1000  # as much of the query as the REST download keeps in the audit log
EXAMPLE = "SELECT model, count() AS n FROM request_response GROUP BY model ORDER BY n DESC"
Sql = Annotated[str, Query(max_length=MAX_SQL_CHARS)]
# The console's tables and columns are fixed while the server runs: described once per console.
_schemas: WeakKeyDictionary[SqlConsole, list[dict[str, Any]]] = WeakKeyDictionary()


@router.get("/sql")
async def sql_page(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
    q: Sql = "",
) -> Response:
    schema = await _schema(services.sql)
    result, error = None, None
    if q.strip():
        try:
            result = await services.sql.execute(viewer.organization_id, q)
        except (ConsoleError, ConsoleBusy) as refused:
            error = str(refused)
    return templates.render(
        request,
        "sql.html",
        viewer,
        q=q,
        example=EXAMPLE,
        schema=schema,
        error=error,
        result=result,
        columns=_columns(result["rows"]) if result else [],
        shown=result["rows"][:SHOWN_ROWS] if result else [],
        max_chars=MAX_SQL_CHARS,
        cell=cell,
        is_number=is_number,
    )


@router.get("/sql/download")
async def sql_download(
    request: Request, viewer: ViewerDep, services: ServicesDep, q: Sql = ""
) -> Response:
    """The query's result as a CSV file; a refused query is the HTML 400 page."""
    try:
        csv = await services.sql.download(viewer.organization_id, q)
    except ConsoleBusy as busy:
        raise ConsoleError(f"{busy}; retry in a moment") from None
    details = {"sql": q[:AUDITED_SQL_CHARS]}
    await run_in_threadpool(
        services.audit.record,
        actor_of(request, viewer.caller),
        "export.sql",
        viewer.organization_id,
        ("sql", ""),
        details,
    )
    disposition = 'attachment; filename="heliograph-query.csv"'
    return Response(
        csv,
        media_type="text/csv",
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )


async def _schema(console: SqlConsole) -> list[dict[str, Any]]:
    if console not in _schemas:  # two first visits at once both describe: harmless
        _schemas[console] = await console.schema()
    return _schemas[console]


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every column name, in the order the rows first show them."""
    names: dict[str, None] = {}
    for row in rows[:SHOWN_ROWS]:
        names.update(dict.fromkeys(row))
    return list(names)


def cell(value: Any) -> str:
    """A result value as the table shows it: JSON for arrays and maps, `NULL` for nothing."""
    if value is None:
        return "NULL"
    if isinstance(value, (dict, list, tuple)):
        return orjson.dumps(value, default=str).decode()
    return str(value)


def is_number(value: Any) -> bool:
    """Whether a result value is a number, which the table aligns right."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)
