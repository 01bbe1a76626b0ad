"""The SQL console: read-only SELECTs over the caller's own requests and annotations."""

from __future__ import annotations

import time
from typing import Any

import orjson

from heliograph.analytics.executor import StoreUnavailable
from heliograph.analytics.store import AnalyticsStore
from heliograph.domain.sql_console import RejectedQuery, checked_select

MAX_ROWS = 10_000
MAX_SECONDS = 10


class ConsoleError(ValueError):
    """The query was rejected or failed; the message is for the person who wrote it."""


class SqlConsole:
    def __init__(self, store: AnalyticsStore) -> None:
        self._store = store

    async def execute(self, organization_id: str, sql: str) -> dict[str, Any]:
        try:
            checked = checked_select(sql)
        except RejectedQuery as rejected:
            raise ConsoleError(str(rejected)) from None
        started = time.perf_counter()
        try:
            rows = await self._store.console(organization_id, checked, MAX_ROWS, MAX_SECONDS)
        except StoreUnavailable as error:
            raise ConsoleError(_first_line(str(error))) from None
        return {
            "rows": rows,
            "rowCount": len(rows),
            "size": len(orjson.dumps(rows)),
            "elapsedMilliseconds": round((time.perf_counter() - started) * 1000, 1),
            "truncated": len(rows) >= MAX_ROWS,
        }


def _first_line(message: str) -> str:
    line = message.strip().splitlines()[0] if message.strip() else "the query failed"
    return line[:500]
