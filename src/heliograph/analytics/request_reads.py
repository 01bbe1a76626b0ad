"""`RequestReads`: logged requests as `RequestRow`s: a list in any order, pages by keyset,
counts, one request, and which ids are already stored."""

from __future__ import annotations

from typing import Any, cast

from heliograph.analytics.aggregates import paged, time_bounds
from heliograph.analytics.annotations import ANNOTATIONS
from heliograph.analytics.definitions import USAGE_TOTAL_SQL
from heliograph.analytics.engine import AnalyticsEngine
from heliograph.analytics.filter_sql import filter_sql
from heliograph.analytics.scope import Scope
from heliograph.domain.filter_tree import Filter
from heliograph.domain.queries import RequestQuery
from heliograph.domain.request_row import BODY_COLUMNS, SUMMARY_COLUMNS, RequestRow
from heliograph.domain.sorts import RequestSortKey, Sort
from heliograph.domain.times import now_ms, stored_ms

REQUESTS = "request_response"
SUMMARY_SQL = ", ".join(SUMMARY_COLUMNS)
WITH_BODIES_SQL = ", ".join((*SUMMARY_COLUMNS, *BODY_COLUMNS))
NEWEST_FIRST_SQL = "request_created_at DESC, request_id DESC"
SORT_SQL: dict[RequestSortKey, str] = {
    RequestSortKey.CREATED_AT: "request_created_at",
    RequestSortKey.LATENCY: "latency",
    RequestSortKey.TOTAL_TOKENS: USAGE_TOTAL_SQL,
    RequestSortKey.COMPLETION_TOKENS: "completion_tokens",
    RequestSortKey.PROMPT_TOKENS: "prompt_tokens",
    RequestSortKey.COST: "cost",
    RequestSortKey.TIME_TO_FIRST_TOKEN: "time_to_first_token",
    RequestSortKey.USER_ID: "user_id",
    RequestSortKey.BODY_MODEL: "model",
    RequestSortKey.MODEL: "model",
    RequestSortKey.STATUS: "status",
    RequestSortKey.PROVIDER: "provider",
}
# How far back each slice of a newest-first read reaches from its anchor (the last is unbounded).
SLICE_SPANS_MS = (3_600_000, 86_400_000, 7 * 86_400_000, 31 * 86_400_000)


def order_sql(sort: Sort) -> str:
    """The ORDER BY of a sort; ties go by request id in the same direction."""
    direction = "DESC" if sort.descending else "ASC"
    return f"{SORT_SQL[sort.key]} {direction}, request_id {direction}"


class RequestReads:
    def __init__(self, engine: AnalyticsEngine) -> None:
        self._engine = engine

    async def search(self, organization_id: str, query: RequestQuery) -> list[RequestRow]:
        scope = self._engine.scope(organization_id)
        where, params = _where(scope, query.filter)
        columns = WITH_BODIES_SQL if query.include_bodies else SUMMARY_SQL
        if query.sort.is_newest_first:
            wanted = query.offset + query.limit
            rows = await self._newest_first(scope, columns, where, params, wanted, now_ms())
            return rows[query.offset : wanted]
        order = order_sql(query.sort)
        sql = f"SELECT {columns} FROM {REQUESTS} WHERE {where} ORDER BY {order}"
        return _rows(await self._engine.read(scope, *paged(sql, params, query)))

    async def page_after(
        self, organization_id: str, tree: Filter, after: tuple[str, str] | None, limit: int
    ) -> list[RequestRow]:
        """Newest first, the `limit` requests after the keyset `(request_created_at, request_id)`
        of the last row seen: stable while new requests arrive, constant cost per page."""
        scope = self._engine.scope(organization_id)
        where, params = _where(scope, tree)
        anchor_ms = now_ms()
        if after is not None:
            where += (
                " AND (request_created_at, request_id) < "
                "(toDateTime64({after_at:String}, 3, 'UTC'), {after_id:UUID})"
            )
            params.update(after_at=after[0], after_id=after[1])
            anchor_ms = stored_ms(after[0]) + 1
        return await self._newest_first(scope, WITH_BODIES_SQL, where, params, limit, anchor_ms)

    async def _newest_first(
        self,
        scope: Scope,
        columns: str,
        where: str,
        params: dict[str, Any],
        wanted: int,
        anchor_ms: int,
    ) -> list[RequestRow]:
        """The newest `wanted` matching requests, read one time slice at a time going back from
        `anchor_ms` (an hour, a day, a week, a month, then the rest): a page usually comes from
        the first slice, and the engine never has to merge-sort every part of the table."""
        rows: list[RequestRow] = []
        upper: int | None = None
        for span in (*SLICE_SPANS_MS, None):
            lower = None if span is None else anchor_ms - span
            bound = {**params, "wanted": wanted - len(rows)}
            sliced = [where, *time_bounds("request_created_at", lower, upper, bound, "slice")]
            sql = (
                f"SELECT {columns} FROM {REQUESTS} WHERE {' AND '.join(sliced)} "
                f"ORDER BY {NEWEST_FIRST_SQL} LIMIT {{wanted:UInt32}}"
            )
            rows += _rows(await self._engine.read(scope, sql, bound))
            if len(rows) >= wanted:
                break
            upper = lower
        return rows

    async def newer_than(
        self, organization_id: str, tree: Filter, after: tuple[str, str], limit: int
    ) -> list[RequestRow]:
        """Oldest first, up to `limit` matching requests after the keyset `after` (the newest
        row a reader has): what a live list adds on top."""
        scope = self._engine.scope(organization_id)
        where, params = _where(scope, tree)
        params.update(after_at=after[0], after_id=after[1], wanted=limit)
        sql = (
            f"SELECT {WITH_BODIES_SQL} FROM {REQUESTS} WHERE {where} "
            "AND request_created_at >= toDateTime64({after_at:String}, 3, 'UTC') "
            "AND (request_created_at, request_id) > "
            "(toDateTime64({after_at:String}, 3, 'UTC'), {after_id:UUID}) "
            "ORDER BY request_created_at ASC, request_id ASC LIMIT {wanted:UInt32}"
        )
        return _rows(await self._engine.read(scope, sql, params))

    async def score_names(self, organization_id: str, limit: int) -> list[str]:
        """The score names the organization's requests carry, most used first."""
        scope = self._engine.scope(organization_id)
        params = scope.params(wanted=limit)
        sql = (
            f"SELECT name, count() AS uses FROM {ANNOTATIONS} WHERE {scope.clause} "
            "GROUP BY name ORDER BY uses DESC, name LIMIT {wanted:UInt32}"
        )
        return [str(row["name"]) for row in await self._engine.read(scope, sql, params)]

    async def by_ids(self, organization_id: str, request_ids: list[str]) -> list[RequestRow]:
        """The organization's requests among `request_ids`, newest first, with their bodies."""
        scope = self._engine.scope(organization_id)
        params: dict[str, Any] = {"ids": request_ids}
        where = scope.where("request_id IN {ids:Array(UUID)}", params)
        sql = f"SELECT {WITH_BODIES_SQL} FROM {REQUESTS} WHERE {where} ORDER BY {NEWEST_FIRST_SQL}"
        return _rows(await self._engine.read(scope, sql, params))

    async def count(self, organization_id: str, tree: Filter, cache_enabled: bool = False) -> int:
        """Matching requests; with `cache_enabled`, only those that asked for the cache."""
        scope = self._engine.scope(organization_id)
        where, params = _where(scope, tree)
        if cache_enabled:
            where += " AND cache_enabled"
        sql = f"SELECT count() AS n FROM {REQUESTS} WHERE {where}"
        rows = await self._engine.read(scope, sql, params)
        return int(rows[0]["n"]) if rows else 0

    async def get(
        self, organization_id: str, request_id: str, include_body: bool
    ) -> RequestRow | None:
        scope = self._engine.scope(organization_id)
        columns = WITH_BODIES_SQL if include_body else SUMMARY_SQL
        params = {"id": request_id}
        where = scope.where("request_id = {id:UUID}", params)
        sql = f"SELECT {columns} FROM {REQUESTS} WHERE {where} LIMIT 1"
        rows = _rows(await self._engine.read(scope, sql, params))
        return rows[0] if rows else None

    async def existing_ids(self, organization_id: str, request_ids: list[str]) -> set[str]:
        scope = self._engine.scope(organization_id)
        rows = await self._engine.read(scope, *_existing_ids_sql(scope, request_ids))
        return {row["id"] for row in rows}

    def stored_times_blocking(
        self, organization_id: str, request_ids: list[str]
    ) -> set[tuple[str, str]]:
        """(id, created at) of the organization's stored requests among `request_ids`, for the
        ingest writer's thread (one row per request id)."""
        scope = self._engine.scope(organization_id)
        params: dict[str, Any] = {"ids": request_ids}
        sql = (
            "SELECT DISTINCT toString(request_id) AS id, toString(request_created_at) AS at "
            f"FROM {REQUESTS} WHERE {scope.where('request_id IN {ids:Array(UUID)}', params)}"
        )
        rows = self._engine.read_blocking(scope, sql, params)
        return {(row["id"], row["at"]) for row in rows}


def _where(scope: Scope, tree: Filter) -> tuple[str, dict[str, Any]]:
    condition, params = filter_sql(tree, scope)
    return scope.where(condition, params), params


def _existing_ids_sql(scope: Scope, request_ids: list[str]) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"ids": request_ids}
    where = scope.where("request_id IN {ids:Array(UUID)}", params)
    return f"SELECT DISTINCT toString(request_id) AS id FROM {REQUESTS} WHERE {where}", params


def _rows(rows: list[dict[str, Any]]) -> list[RequestRow]:
    """The engine's rows of `request_response` columns, as the type they are."""
    return cast("list[RequestRow]", rows)
