"""The SQL console: read-only SELECTs over the caller's own rows, one at a time per organization,
within the engine's limits; every refusal or failure is a message about the query, never the
engine's own text."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

from heliograph.analytics.console import ConsoleLimits
from heliograph.analytics.executor import StoreUnavailable
from heliograph.analytics.store import AnalyticsStore
from heliograph.domain.errors import HeliographError, InvalidInput
from heliograph.domain.sql_console import TABLES, RejectedQuery, checked_select
from heliograph.services.export import inert_csv

RETRY_AFTER_S = 1


class ConsoleError(InvalidInput):
    """The query was rejected or failed; the message is for the person who wrote it."""


class ConsoleBusy(HeliographError, RuntimeError):
    """This organization already has a console query running."""


class SqlConsole:
    def __init__(self, store: AnalyticsStore, limits: ConsoleLimits | None = None) -> None:
        self._console = store.console
        self.limits = limits or ConsoleLimits()
        self._running: set[str] = set()

    async def execute(self, organization_id: str, sql: str) -> dict[str, Any]:
        started = time.perf_counter()
        async with self._turn(organization_id):
            checked = await _checked(sql)
            rows = await self._engine(self._console.rows(organization_id, checked, self.limits))
        return {
            "rows": rows,
            "rowCount": len(rows),
            "size": len(orjson.dumps(rows)),
            "elapsedMilliseconds": round((time.perf_counter() - started) * 1000, 1),
            "truncated": len(rows) >= self.limits.result_rows,
        }

    async def download(self, organization_id: str, sql: str) -> bytes:
        """The result as CSV with a header row, no cell of which a spreadsheet runs as a formula."""
        async with self._turn(organization_id):
            checked = await _checked(sql)
            csv: bytes = await self._engine(
                self._console.csv(organization_id, checked, self.limits)
            )
        return await asyncio.to_thread(inert_csv, csv)

    async def schema(self) -> list[dict[str, Any]]:
        """Every table the console reads, with its columns as a query sees them."""
        tables = []
        for name in TABLES:
            columns = await self._console.describe(checked_select(f"SELECT * FROM {name}"))
            tables.append(
                {
                    "table_name": name,
                    "columns": [{"name": c["name"], "type": c["type"]} for c in columns],
                }
            )
        return tables

    @asynccontextmanager
    async def _turn(self, organization_id: str) -> AsyncIterator[None]:
        """One console query at a time per organization; a second one is told to retry."""
        if organization_id in self._running:
            raise ConsoleBusy("a console query of your organization is still running")
        self._running.add(organization_id)
        try:
            yield
        finally:
            self._running.discard(organization_id)

    async def _engine(self, call: Any) -> Any:
        try:
            return await call
        except StoreUnavailable as error:
            raise ConsoleError(engine_message(str(error), self.limits)) from None


async def _checked(sql: str) -> str:
    # Parsing a long query takes a while: on a thread, so the API goes on serving meanwhile.
    try:
        return await asyncio.to_thread(checked_select, sql)
    except RejectedQuery as rejected:
        raise ConsoleError(str(rejected)) from None


_CODE = re.compile(r"\(([A-Z_]+)\)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"[`'](\w{1,64})[`']")


def engine_message(text: str, limits: ConsoleLimits) -> str:
    """What went wrong, said in terms of the query and the console's limits; engine text, file
    paths and stack traces never reach the caller."""
    code_match = _CODE.search(text)
    code = code_match.group(1) if code_match else ""
    if code == "TIMEOUT_EXCEEDED":
        return f"the query ran longer than the console's limit of {limits.seconds} s"
    if code == "MEMORY_LIMIT_EXCEEDED":
        mib = limits.memory_bytes // (1024 * 1024)
        return f"the query needed more than the console's limit of {mib} MiB of memory"
    if code in ("TOO_MANY_ROWS", "TOO_MANY_BYTES"):
        return f"the query would read more than the console's limit of {limits.rows_read:,} rows"
    if code in ("TOO_MANY_ROWS_OR_BYTES", "TOO_BIG_AST", "TOO_DEEP_AST"):
        return "the query or its result is larger than the console allows"
    # Only names from the query itself are repeated; a value could come from any row read.
    named = _QUOTED.search(text) if code in NAMED_IN_QUERY else None
    subject = f" ({named.group(1)})" if named else ""
    return FRIENDLY.get(code, "the query could not run") + subject


NAMED_IN_QUERY = frozenset({"UNKNOWN_IDENTIFIER", "UNKNOWN_TABLE", "UNKNOWN_FUNCTION"})


FRIENDLY = {
    "UNKNOWN_IDENTIFIER": "unknown column or alias",
    "UNKNOWN_TABLE": "unknown table",
    "UNKNOWN_FUNCTION": "unknown function",
    "ILLEGAL_TYPE_OF_ARGUMENT": "a function was given a value of the wrong type",
    "NUMBER_OF_ARGUMENTS_DOESNT_MATCH": "a function was given the wrong number of arguments",
    "TYPE_MISMATCH": "values of incompatible types were compared or combined",
    "CANNOT_PARSE_TEXT": "a value could not be converted",
    "CANNOT_PARSE_DATETIME": "a value could not be read as a date or time",
    "ILLEGAL_AGGREGATION": "an aggregate was used where it is not allowed",
    "NOT_AN_AGGREGATE": "a column must be aggregated or appear in GROUP BY",
    "SYNTAX_ERROR": "the query has a syntax error",
    "AMBIGUOUS_COLUMN_NAME": "a column name is ambiguous; qualify it with its table",
    "ILLEGAL_DIVISION": "division by zero",
    "BAD_ARGUMENTS": "a function was given an invalid argument",
    "NUMBER_OF_COLUMNS_DOESNT_MATCH": "the two sides of IN or UNION have different columns",
    "INVALID_JOIN_ON_EXPRESSION": "the JOIN condition is not supported",
}
