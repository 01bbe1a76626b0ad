"""`AnalyticsStore`: the typed operations the rest of Heliograph runs on the analytics engine.

Every read is scoped to one organization here, by the store itself, never by its callers: besides
each query's own `WHERE`, the engine is told to filter every table to the organization
(`additional_table_filters`), so a query that forgot its clause still reads only that
organization's rows. Reads, console queries and writes run on separate worker pools, so a slow
read never queues the writer and the console never takes every reader.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from heliograph.analytics import aggregates, metrics, properties, sessions
from heliograph.analytics.aggregates import AggregateQuery, time_bounds
from heliograph.analytics.chdb_executor import open_chdb
from heliograph.analytics.executor import Executor
from heliograph.analytics.migrate import apply_migrations
from heliograph.domain.filters import compile_filter, compile_sort

REQUESTS = "request_response"
ANNOTATIONS = "request_annotations"
SESSION_ANNOTATIONS = "session_annotations"
ROLLUP = "request_rollup_hourly"
# Every table a read can touch, each filtered to the organization by the engine itself.
SCOPED_TABLES = (REQUESTS, ANNOTATIONS, SESSION_ANNOTATIONS, ROLLUP)
READ_TIMEOUT_S = 30

SUMMARY_COLUMNS = (
    "request_id, organization_id, request_created_at, response_created_at, provider, model, "
    "request_model, response_model, model_override, target_url, request_path, method, status, "
    "latency, time_to_first_token, is_stream, user_id, properties, session_id, session_path, "
    "session_name, prompt_tokens, completion_tokens, prompt_cache_read_tokens, "
    "prompt_cache_write_tokens, reasoning_tokens, prompt_audio_tokens, completion_audio_tokens, "
    "cost, pricing_status, cache_enabled, cache_reference_id, request_body_omitted, "
    "response_body_omitted, storage_location, error, attempts, cache_saved_cost, "
    "cache_saved_latency"
)
BODY_COLUMNS = "request_body, response_body"
NEWEST_FIRST = "request_created_at DESC, request_id DESC"
# How far back each slice of a newest-first read reaches from its anchor (the last is unbounded).
SLICE_SPANS_MS = (3_600_000, 86_400_000, 7 * 86_400_000, 31 * 86_400_000)


@dataclass(frozen=True, slots=True)
class RequestQuery:
    filter: Any = "all"
    sort: Any = None
    limit: int = 10
    offset: int = 0
    include_bodies: bool = True


@dataclass(frozen=True, slots=True)
class ConsoleLimits:
    """What the engine allows one console query: it stops the query cleanly past any of these."""

    seconds: int = 5
    memory_bytes: int = 256 * 1024 * 1024
    rows_read: int = 50_000_000
    result_rows: int = 10_000
    result_bytes: int = 64 * 1024 * 1024


class AnalyticsStore:
    def __init__(
        self,
        executor: Executor,
        readers: int = 4,
        console_slots: int = 1,
        read_timeout_s: int = READ_TIMEOUT_S,
        server: bool = False,
    ) -> None:
        self._executor = executor
        self._server = server
        self._read_timeout_s = read_timeout_s
        self._reads = ThreadPoolExecutor(readers, thread_name_prefix="analytics-read")
        self._console = ThreadPoolExecutor(console_slots, thread_name_prefix="analytics-console")
        self._writes = ThreadPoolExecutor(1, thread_name_prefix="analytics-write")

    async def _call(
        self, pool: ThreadPoolExecutor, function: Callable[..., Any], *args: Any
    ) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, function, *args)

    async def migrate(self) -> list[str]:
        values: dict[str, str] = getattr(self._executor, "migration_values", dict)()
        applied: list[str] = await self._call(
            self._writes, apply_migrations, self._executor, self._server, values
        )
        return applied

    async def ping(self) -> bool:
        rows = await self._call(self._reads, self._executor.query, "SELECT 1 AS ok", {})
        return bool(rows and rows[0]["ok"] == 1)

    async def read(
        self, organization_id: str, sql: str, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The one path every read takes: the engine filters every table to the organization and
        stops the query after the read timeout."""
        settings = self._read_settings(organization_id)
        rows: list[dict[str, Any]] = await self._call(
            self._reads, self._executor.query, sql, params, settings
        )
        return rows

    def _read_settings(self, organization_id: str) -> dict[str, Any]:
        # Priority 1 pauses console queries (10) while the read runs; 0 would mean "none".
        timeout = self._read_timeout_s
        return {**scope_settings(organization_id), "max_execution_time": timeout, "priority": 1}

    async def insert_requests(self, json_rows: bytes, dedup_token: str) -> None:
        await self._call(self._writes, self._executor.insert, REQUESTS, json_rows, dedup_token)

    def insert_requests_blocking(self, json_rows: bytes, dedup_token: str) -> None:
        """For callers already on a worker thread (the ingest writer)."""
        self._executor.insert(REQUESTS, json_rows, dedup_token)

    async def list_requests(
        self, organization_id: str, query: RequestQuery
    ) -> list[dict[str, Any]]:
        where, params = self._scoped(organization_id, query.filter)
        columns = SUMMARY_COLUMNS + (", " + BODY_COLUMNS if query.include_bodies else "")
        order = compile_sort(query.sort)
        if order == NEWEST_FIRST:
            wanted = query.offset + query.limit
            rows = await self._newest_first(
                organization_id, columns, where, params, wanted, _now_ms()
            )
            return rows[query.offset : wanted]
        sql = (
            f"SELECT {columns} FROM {REQUESTS} WHERE {where} ORDER BY {order} "
            "LIMIT {limit:UInt32} OFFSET {offset:UInt32}"
        )
        params.update(limit=query.limit, offset=query.offset)
        return await self.read(organization_id, sql, params)

    async def page_after(
        self,
        organization_id: str,
        filter_node: Any,
        after: tuple[str, str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Newest first, the `limit` requests after the keyset `(request_created_at, request_id)`
        of the last row seen: stable while new requests arrive, constant cost per page."""
        where, params = self._scoped(organization_id, filter_node)
        anchor_ms = _now_ms()
        if after is not None:
            where += (
                " AND (request_created_at, request_id) < "
                "(toDateTime64({after_at:String}, 3, 'UTC'), {after_id:UUID})"
            )
            params.update(after_at=after[0], after_id=after[1])
            anchor_ms = _timestamp_ms(after[0]) + 1
        columns = f"{SUMMARY_COLUMNS}, {BODY_COLUMNS}"
        return await self._newest_first(organization_id, columns, where, params, limit, anchor_ms)

    async def _newest_first(
        self,
        organization_id: str,
        columns: str,
        where: str,
        params: dict[str, Any],
        wanted: int,
        anchor_ms: int,
    ) -> list[dict[str, Any]]:
        """The newest `wanted` matching requests, read one time slice at a time going back from
        `anchor_ms` (an hour, a day, a week, a month, then the rest): a page usually comes from
        the first slice, and the engine never has to merge-sort every part of the table."""
        rows: list[dict[str, Any]] = []
        upper: int | None = None
        for span in (*SLICE_SPANS_MS, None):
            lower = None if span is None else anchor_ms - span
            bound = {**params, "wanted": wanted - len(rows)}
            sliced = [where, *time_bounds("request_created_at", lower, upper, bound, "slice")]
            sql = (
                f"SELECT {columns} FROM {REQUESTS} WHERE {' AND '.join(sliced)} "
                f"ORDER BY {NEWEST_FIRST} LIMIT {{wanted:UInt32}}"
            )
            rows += await self.read(organization_id, sql, bound)
            if len(rows) >= wanted:
                break
            upper = lower
        return rows

    async def count_requests(self, organization_id: str, filter_node: Any) -> int:
        where, params = self._scoped(organization_id, filter_node)
        sql = f"SELECT count() AS n FROM {REQUESTS} WHERE {where}"
        rows = await self.read(organization_id, sql, params)
        return int(rows[0]["n"]) if rows else 0

    async def get_request(
        self, organization_id: str, request_id: str, include_body: bool
    ) -> dict[str, Any] | None:
        columns = SUMMARY_COLUMNS + (", " + BODY_COLUMNS if include_body else "")
        sql = (
            f"SELECT {columns} FROM {REQUESTS} WHERE organization_id = {{org:UUID}} "
            "AND request_id = {id:UUID} LIMIT 1"
        )
        params = {"org": organization_id, "id": request_id}
        rows = await self.read(organization_id, sql, params)
        return rows[0] if rows else None

    async def existing_ids(self, organization_id: str, request_ids: list[str]) -> set[str]:
        rows = await self.read(organization_id, *_existing_ids_sql(organization_id, request_ids))
        return {row["id"] for row in rows}

    async def add_annotations(
        self, organization_id: str, request_id: str, values: dict[str, float], source: str
    ) -> None:
        """Append scores for a request (the caller has checked the request is the org's)."""
        created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        rows = [
            {
                "organization_id": organization_id,
                "request_id": request_id,
                "name": name,
                "value": value,
                "created_at": created,
                "source": source,
            }
            for name, value in values.items()
        ]
        data = b"\n".join(orjson.dumps(row) for row in rows)
        await self._call(self._writes, self._executor.insert, ANNOTATIONS, data, uuid.uuid4().hex)

    async def annotations(
        self, organization_id: str, request_ids: list[str]
    ) -> dict[str, dict[str, float]]:
        """The newest value of every score name, per request."""
        if not request_ids:
            return {}
        sql = (
            f"SELECT toString(request_id) AS id, name, argMax(value, created_at) AS value "
            f"FROM {ANNOTATIONS} WHERE organization_id = {{org:UUID}} "
            "AND request_id IN {ids:Array(UUID)} GROUP BY id, name"
        )
        rows = await self.read(organization_id, sql, {"org": organization_id, "ids": request_ids})
        found: dict[str, dict[str, float]] = {}
        for row in rows:
            found.setdefault(row["id"], {})[row["name"]] = float(row["value"])
        return found

    async def sessions(self, organization_id: str, query: AggregateQuery) -> list[dict[str, Any]]:
        return await self._rows(organization_id, sessions.sessions_sql(organization_id, query))

    async def session_count(self, organization_id: str, query: AggregateQuery) -> dict[str, Any]:
        return (
            await self._rows(organization_id, sessions.session_count_sql(organization_id, query))
        )[0]

    async def session_names(
        self, organization_id: str, query: AggregateQuery, name_contains: str
    ) -> list[dict[str, Any]]:
        return await self._rows(
            organization_id, sessions.session_names_sql(organization_id, query, name_contains)
        )

    async def session_distributions(
        self, organization_id: str, query: AggregateQuery, upper: float, lower: float | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Averages and bounds, then the trimmed histograms, of requests, duration and cost per
        session."""
        statement = sessions.distribution_bounds_sql(organization_id, query, upper, lower)
        bounds = (await self._rows(organization_id, statement))[0]
        if not int(bounds["sessions"]):
            return bounds, {}
        statement = sessions.distribution_histograms_sql(organization_id, query, bounds)
        return bounds, (await self._rows(organization_id, statement))[0]

    async def session_requests(self, organization_id: str, session_id: str) -> list[dict[str, Any]]:
        return await self._rows(
            organization_id, sessions.session_requests_sql(organization_id, session_id)
        )

    async def session_annotations(self, organization_id: str, session_id: str) -> dict[str, str]:
        rows = await self._rows(
            organization_id, sessions.session_annotation_sql(organization_id, session_id)
        )
        return {row["kind"]: row["value"] for row in rows}

    async def annotate_session(
        self, organization_id: str, session_id: str, kind: str, value: str
    ) -> None:
        row = {
            "organization_id": organization_id,
            "session_id": session_id,
            "kind": kind,
            "value": value,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        }
        data = orjson.dumps(row)
        await self._call(
            self._writes, self._executor.insert, SESSION_ANNOTATIONS, data, uuid.uuid4().hex
        )

    async def session_exists(self, organization_id: str, session_id: str) -> bool:
        sql = (
            f"SELECT 1 AS found FROM {REQUESTS} WHERE organization_id = {{org:UUID}} "
            "AND session_id = {session:String} LIMIT 1"
        )
        params = {"org": organization_id, "session": session_id}
        return bool(await self.read(organization_id, sql, params))

    async def users(self, organization_id: str, query: AggregateQuery) -> list[dict[str, Any]]:
        return await self._rows(organization_id, aggregates.users_sql(organization_id, query))

    async def user_count(self, organization_id: str, query: AggregateQuery) -> int:
        rows = await self._rows(organization_id, aggregates.user_count_sql(organization_id, query))
        return int(rows[0]["count"])

    async def user_totals(
        self, organization_id: str, query: AggregateQuery
    ) -> list[dict[str, Any]]:
        return await self._rows(organization_id, aggregates.user_totals_sql(organization_id, query))

    async def metric_totals(self, organization_id: str, query: AggregateQuery) -> dict[str, Any]:
        return (await self._rows(organization_id, metrics.totals_sql(organization_id, query)))[0]

    async def metric_series(
        self, organization_id: str, query: AggregateQuery, name: str, increment: str, tz: int
    ) -> list[dict[str, Any]]:
        return await self._rows(
            organization_id, metrics.series_sql(organization_id, query, name, increment, tz)
        )

    async def metric_quantiles(
        self, organization_id: str, query: AggregateQuery, metric: str, increment: str, tz: int
    ) -> list[dict[str, Any]]:
        statement = metrics.quantiles_sql(organization_id, query, metric, increment, tz)
        return await self._rows(organization_id, statement)

    async def model_breakdown(
        self, organization_id: str, query: AggregateQuery
    ) -> list[dict[str, Any]]:
        return await self._rows(organization_id, metrics.models_sql(organization_id, query))

    async def property_keys(
        self, organization_id: str, query: AggregateQuery, hidden: list[str]
    ) -> list[dict[str, Any]]:
        return await self._rows(
            organization_id, properties.keys_sql(organization_id, query, hidden)
        )

    async def property_values(
        self, organization_id: str, query: AggregateQuery, key: str, search: str
    ) -> list[dict[str, Any]]:
        return await self._rows(
            organization_id, properties.values_sql(organization_id, query, key, search)
        )

    async def property_top(
        self, organization_id: str, query: AggregateQuery, key: str, by: str
    ) -> list[dict[str, Any]]:
        return await self._rows(
            organization_id, properties.top_sql(organization_id, query, key, by)
        )

    async def property_over_time(
        self, organization_id: str, query: AggregateQuery, key: str, increment: str, tz: int
    ) -> list[dict[str, Any]]:
        statement = properties.over_time_sql(organization_id, query, key, increment, tz)
        return await self._rows(organization_id, statement)

    async def console(
        self, organization_id: str, sql: str, limits: ConsoleLimits
    ) -> list[dict[str, Any]]:
        """Run a console query (already checked by `domain.sql_console`) as the console: the
        engine holds it to the organization's rows, read-only, within `limits`."""
        statement = f"SELECT * FROM ({sql}) LIMIT {int(limits.result_rows)}"
        settings = console_settings(organization_id, limits, self._server)
        rows: list[dict[str, Any]] = await self._call(
            self._console, self._console_executor().query, statement, {}, settings
        )
        return rows

    async def console_csv(self, organization_id: str, sql: str, limits: ConsoleLimits) -> bytes:
        """The same query's result as CSV with a header row."""
        statement = f"SELECT * FROM ({sql}) LIMIT {int(limits.result_rows)}"
        settings = console_settings(organization_id, limits, self._server)
        csv: bytes = await self._call(
            self._console,
            self._console_executor().query_bytes,
            statement,
            {},
            "CSVWithNames",
            settings,
        )
        return csv

    async def describe(self, sql: str) -> list[dict[str, Any]]:
        """Column names and types of a query's result, without running it."""
        rows: list[dict[str, Any]] = await self._call(
            self._reads, self._executor.query, f"DESCRIBE ({sql})", {}
        )
        return rows

    def _console_executor(self) -> Executor:
        """On a server, console queries run as the read-only console user (row policies)."""
        for_console = getattr(self._executor, "for_console", None)
        return for_console() if for_console is not None else self._executor

    async def _rows(
        self, organization_id: str, statement: tuple[str, dict[str, Any]]
    ) -> list[dict[str, Any]]:
        return await self.read(organization_id, *statement)

    def _scoped(self, organization_id: str, filter_node: Any) -> tuple[str, dict[str, Any]]:
        condition, params = compile_filter(filter_node)
        params["org"] = organization_id
        return f"organization_id = {{org:UUID}} AND {condition}", params

    async def close(self) -> None:
        await self._call(self._writes, self._executor.close)
        for pool in (self._reads, self._console, self._writes):
            pool.shutdown(wait=True)

    def ping_blocking(self) -> bool:
        """`ping` for callers already on a worker thread (the ingest writer)."""
        rows = self._executor.query("SELECT 1 AS ok", {})
        return bool(rows and rows[0]["ok"] == 1)

    def stored_request_times_blocking(
        self, organization_id: str, request_ids: list[str]
    ) -> set[tuple[str, str]]:
        """(id, created at) of the organization's stored requests among `request_ids`, for the
        ingest writer's thread (one row per request id)."""
        sql = (
            "SELECT DISTINCT toString(request_id) AS id, toString(request_created_at) AS at "
            f"FROM {REQUESTS} WHERE organization_id = {{org:UUID}} "
            "AND request_id IN {ids:Array(UUID)}"
        )
        settings = self._read_settings(organization_id)
        rows = self._executor.query(sql, {"org": organization_id, "ids": request_ids}, settings)
        return {(row["id"], row["at"]) for row in rows}


def scope_settings(organization_id: str) -> dict[str, Any]:
    """The engine-level filter holding every table a read can touch to one organization."""
    org = str(uuid.UUID(organization_id))  # a canonical UUID: safe inside the setting's text
    scope = f"organization_id = toUUID(\\'{org}\\')"
    filters = ", ".join(f"'{table}': '{scope}'" for table in SCOPED_TABLES)
    return {"additional_table_filters": "{" + filters + "}"}


def console_settings(organization_id: str, limits: ConsoleLimits, server: bool) -> dict[str, Any]:
    """The organization filter and every engine limit a console query runs under."""
    settings: dict[str, Any] = {
        **scope_settings(organization_id),
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
        settings["SQL_heliograph_organization_id"] = str(uuid.UUID(organization_id))
    else:  # on a server the console user is read-only by its grants
        settings["readonly"] = 1
    return settings


def _existing_ids_sql(organization_id: str, request_ids: list[str]) -> tuple[str, dict[str, Any]]:
    sql = (
        f"SELECT DISTINCT toString(request_id) AS id FROM {REQUESTS} "
        "WHERE organization_id = {org:UUID} AND request_id IN {ids:Array(UUID)}"
    )
    return sql, {"org": organization_id, "ids": request_ids}


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def _timestamp_ms(stored: str) -> int:
    """A stored `YYYY-MM-DD hh:mm:ss.fff` UTC time as unix milliseconds."""
    moment = datetime.strptime(stored, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def open_store(clickhouse_url: str, embedded_path: Path) -> AnalyticsStore:
    """A ClickHouse-server store when `clickhouse_url` is set, else the embedded chDB one."""
    if clickhouse_url:
        from heliograph.analytics.server_executor import ServerExecutor

        return AnalyticsStore(
            ServerExecutor(clickhouse_url), readers=8, console_slots=4, server=True
        )
    return AnalyticsStore(open_chdb(embedded_path), readers=4, console_slots=2)
