"""`AnalyticsStore`: the analytics engine and the readers over it, as the rest of Heliograph
holds them: `requests`, `annotations`, `aggregates` and `console`, plus the writes and checks the
ingest writer calls. `open_store` is the one constructor.

Every read is scoped to one organization by the readers themselves, never by their callers:
besides each statement's own clause, the engine filters every table to the organization
(`additional_table_filters`), so a builder that forgot its clause still reads only that
organization's rows.
"""

from __future__ import annotations

from pathlib import Path

from heliograph.analytics.aggregate_reads import Aggregates
from heliograph.analytics.annotations import Annotations
from heliograph.analytics.chdb_executor import open_chdb
from heliograph.analytics.console import ConsoleReads
from heliograph.analytics.engine import AnalyticsEngine
from heliograph.analytics.request_reads import REQUESTS, RequestReads


class AnalyticsStore:
    def __init__(self, engine: AnalyticsEngine) -> None:
        self.engine = engine
        self.requests = RequestReads(engine)
        self.annotations = Annotations(engine)
        self.aggregates = Aggregates(engine)
        self.console = ConsoleReads(engine)

    async def migrate(self) -> list[str]:
        return await self.engine.migrate()

    async def ping(self) -> bool:
        return await self.engine.ping()

    async def close(self) -> None:
        await self.engine.close()

    async def insert_requests(self, json_rows: bytes, dedup_token: str) -> None:
        await self.engine.insert(REQUESTS, json_rows, dedup_token)

    def insert_requests_blocking(self, json_rows: bytes, dedup_token: str) -> None:
        """For callers already on a worker thread (the ingest writer)."""
        self.engine.insert_blocking(REQUESTS, json_rows, dedup_token)

    def ping_blocking(self) -> bool:
        """`ping` for callers already on a worker thread (the ingest writer)."""
        return self.engine.ping_blocking()

    def stored_request_times_blocking(
        self, organization_id: str, request_ids: list[str]
    ) -> set[tuple[str, str]]:
        """(id, created at) of the organization's stored requests among `request_ids`, for the
        ingest writer's thread (one row per request id)."""
        return self.requests.stored_times_blocking(organization_id, request_ids)


def open_store(clickhouse_url: str, embedded_path: Path) -> AnalyticsStore:
    """A ClickHouse-server store when `clickhouse_url` is set, else the embedded chDB one."""
    if clickhouse_url:
        from heliograph.analytics.server_executor import ServerExecutor

        executor = ServerExecutor(clickhouse_url)
        return AnalyticsStore(AnalyticsEngine(executor, readers=8, console_slots=4, server=True))
    return AnalyticsStore(AnalyticsEngine(open_chdb(embedded_path), readers=4, console_slots=2))
