"""`ConsoleReads`: SQL console queries (already checked by `domain.sql_console`) run as the
console: held to the organization's rows by the engine, read-only, within `ConsoleLimits`, on
one core at the lowest priority."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from heliograph.analytics.engine import AnalyticsEngine
from heliograph.analytics.scope import Scope


@dataclass(frozen=True, slots=True)
class ConsoleLimits:
    """What the engine allows one console query: it stops the query cleanly past any of these."""

    seconds: int = 5
    memory_bytes: int = 256 * 1024 * 1024
    rows_read: int = 50_000_000
    result_rows: int = 10_000
    result_bytes: int = 64 * 1024 * 1024


class ConsoleReads:
    def __init__(self, engine: AnalyticsEngine) -> None:
        self._engine = engine

    async def rows(
        self, organization_id: str, sql: str, limits: ConsoleLimits
    ) -> list[dict[str, Any]]:
        statement, settings = self._statement(organization_id, sql, limits)
        return await self._engine.console_rows(statement, settings)

    async def csv(self, organization_id: str, sql: str, limits: ConsoleLimits) -> bytes:
        """The same query's result as CSV with a header row."""
        statement, settings = self._statement(organization_id, sql, limits)
        return await self._engine.console_bytes(statement, "CSVWithNames", settings)

    async def describe(self, sql: str) -> list[dict[str, Any]]:
        """Column names and types of a query's result, without running it."""
        return await self._engine.describe(sql)

    def _statement(
        self, organization_id: str, sql: str, limits: ConsoleLimits
    ) -> tuple[str, dict[str, Any]]:
        scope = self._engine.scope(organization_id)
        statement = f"SELECT * FROM ({sql}) LIMIT {int(limits.result_rows)}"
        return statement, console_settings(scope, limits, self._engine.server)


def console_settings(scope: Scope, limits: ConsoleLimits, server: bool) -> dict[str, Any]:
    """The organization filter and every engine limit a console query runs under."""
    settings: dict[str, Any] = {
        **scope.engine_settings(),
        "max_execution_time": limits.seconds,
        "timeout_overflow_mode": "throw",
        "max_memory_usage": limits.memory_bytes,
        "max_rows_to_read": limits.rows_read,
        "read_overflow_mode": "throw",
        "max_result_rows": limits.result_rows,
        "max_result_bytes": limits.result_bytes,
        "result_overflow_mode": "break",
        "max_threads": 1,  # one core: the other serves everyone else's reads
        # The organization filter must run before any expression of the query: a condition
        # moved to PREWHERE would be evaluated on other organizations' rows, and its errors
        # (division by zero, a failed conversion) would reveal what those rows hold.
        "optimize_move_to_prewhere": 0,
        "query_plan_filter_push_down": 0,
        # Behind every API read: paused while one runs, and at the lowest OS priority.
        "priority": 10,
        "os_thread_priority": 19,
        "output_format_json_validate_utf8": 1,
    }
    if server:  # the console user's row policies read the organization from this setting
        settings["SQL_heliograph_organization_id"] = scope.organization_id
    else:  # on a server the console user is read-only by its grants
        settings["readonly"] = 1
    return settings
