"""`AnalyticsEngine`: the executor behind every analytics read and write, on its own worker pools
(reads, console queries and writes apart, so a slow read never queues the writer and the console
never takes every reader). Every read names a `Scope`, made here, which the engine enforces as
`additional_table_filters` besides the statement's own clause."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from heliograph.analytics.executor import Executor
from heliograph.analytics.migrate import apply_migrations
from heliograph.analytics.scope import Scope, scope_of

READ_TIMEOUT_S = 30
T = TypeVar("T")


class AnalyticsEngine:
    def __init__(
        self,
        executor: Executor,
        readers: int = 4,
        console_slots: int = 1,
        read_timeout_s: int = READ_TIMEOUT_S,
        server: bool = False,
    ) -> None:
        self.executor = executor
        self.server = server
        self._read_timeout_s = read_timeout_s
        self._reads = ThreadPoolExecutor(readers, thread_name_prefix="analytics-read")
        self._console = ThreadPoolExecutor(console_slots, thread_name_prefix="analytics-console")
        self._writes = ThreadPoolExecutor(1, thread_name_prefix="analytics-write")

    def scope(self, organization_id: str) -> Scope:
        """The wall around `organization_id`'s reads (`ValueError` if it is not a UUID)."""
        return scope_of(organization_id)

    async def _call(self, pool: ThreadPoolExecutor, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, function, *args)

    async def read(self, scope: Scope, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The one path every read takes: the engine filters every table to the organization and
        stops the query after the read timeout."""
        return await self._call(
            self._reads, self.executor.query, sql, params, self.read_settings(scope)
        )

    def read_blocking(self, scope: Scope, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """`read` for callers already on a worker thread (the ingest writer)."""
        return self.executor.query(sql, params, self.read_settings(scope))

    def read_settings(self, scope: Scope) -> dict[str, Any]:
        # Priority 1 pauses console queries (10) while the read runs; 0 would mean "none".
        timeout = self._read_timeout_s
        return {**scope.engine_settings(), "max_execution_time": timeout, "priority": 1}

    async def console_rows(self, sql: str, settings: dict[str, Any]) -> list[dict[str, Any]]:
        """A console query (settings from `analytics.console`), on the console's pool."""
        return await self._call(self._console, self._console_executor().query, sql, {}, settings)

    async def console_bytes(self, sql: str, fmt: str, settings: dict[str, Any]) -> bytes:
        executor = self._console_executor()
        return await self._call(self._console, executor.query_bytes, sql, {}, fmt, settings)

    def _console_executor(self) -> Executor:
        """On a server, console queries run as the read-only console user (row policies)."""
        for_console = getattr(self.executor, "for_console", None)
        return for_console() if for_console is not None else self.executor

    async def describe(self, sql: str) -> list[dict[str, Any]]:
        """Column names and types of a query's result, without running it."""
        return await self._call(self._reads, self.executor.query, f"DESCRIBE ({sql})", {})

    async def insert(self, table: str, json_rows: bytes, dedup_token: str) -> None:
        await self._call(self._writes, self.executor.insert, table, json_rows, dedup_token)

    def insert_blocking(self, table: str, json_rows: bytes, dedup_token: str) -> None:
        """For callers already on a worker thread (the ingest writer)."""
        self.executor.insert(table, json_rows, dedup_token)

    async def migrate(self) -> list[str]:
        values: dict[str, str] = getattr(self.executor, "migration_values", dict)()
        return await self._call(self._writes, apply_migrations, self.executor, self.server, values)

    async def ping(self) -> bool:
        rows = await self._call(self._reads, self.executor.query, "SELECT 1 AS ok", {})
        return bool(rows and rows[0]["ok"] == 1)

    def ping_blocking(self) -> bool:
        """`ping` for callers already on a worker thread (the ingest writer)."""
        rows = self.executor.query("SELECT 1 AS ok", {})
        return bool(rows and rows[0]["ok"] == 1)

    async def close(self) -> None:
        await self._call(self._writes, self.executor.close)
        for pool in (self._reads, self._console, self._writes):
            pool.shutdown(wait=True)
