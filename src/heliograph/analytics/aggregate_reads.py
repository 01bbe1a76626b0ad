"""`Aggregates`: the aggregate reads (sessions, users, dashboard metrics, properties), each a
builder's statement run under the organization's `Scope`, returning typed rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from heliograph.analytics import aggregates, metrics, properties, sessions
from heliograph.analytics.aggregate_rows import (
    DistributionRow,
    MetricTotalsRow,
    ModelRow,
    PropertyKeyRow,
    PropertyOverTimeRow,
    PropertyTopRow,
    PropertyValueRow,
    QuantileRow,
    SeriesRow,
    SessionCountRow,
    SessionNameRow,
    SessionRow,
    UserRow,
    UserTotalsRow,
)
from heliograph.analytics.engine import AnalyticsEngine
from heliograph.domain.queries import AggregateQuery

Statement = tuple[str, dict[str, Any]]
Row = TypeVar("Row")


class Aggregates:
    def __init__(self, engine: AnalyticsEngine) -> None:
        self._engine = engine

    async def _rows(
        self, organization_id: str, build: Callable[..., Statement], *args: Any
    ) -> list[Any]:
        """Run `build(scope, *args)`'s statement under the organization's scope."""
        scope = self._engine.scope(organization_id)
        statement: Statement = build(scope, *args)
        return await self._engine.read(scope, *statement)

    async def _row(
        self, row_type: type[Row], organization_id: str, build: Callable[..., Statement], *args: Any
    ) -> Row:
        """The one row, typed as `row_type`, of an aggregate over the whole selection (no
        `GROUP BY`)."""
        rows = await self._rows(organization_id, build, *args)
        return cast("Row", rows[0])

    async def sessions(self, organization_id: str, query: AggregateQuery) -> list[SessionRow]:
        return await self._rows(organization_id, sessions.sessions_sql, query)

    async def session_count(self, organization_id: str, query: AggregateQuery) -> SessionCountRow:
        return await self._row(SessionCountRow, organization_id, sessions.session_count_sql, query)

    async def session_names(
        self, organization_id: str, query: AggregateQuery, name_contains: str
    ) -> list[SessionNameRow]:
        return await self._rows(organization_id, sessions.session_names_sql, query, name_contains)

    async def session_distributions(
        self, organization_id: str, query: AggregateQuery, upper: float, lower: float | None
    ) -> tuple[DistributionRow, DistributionRow]:
        """Averages and bounds, then the trimmed histograms, of requests, duration and cost per
        session."""
        bounds_sql = sessions.distribution_bounds_sql
        (bounds,) = await self._rows(organization_id, bounds_sql, query, upper, lower)
        if not int(bounds["sessions"]):
            return bounds, {}
        histograms_sql = sessions.distribution_histograms_sql
        (histograms,) = await self._rows(organization_id, histograms_sql, query, bounds)
        return bounds, histograms

    async def session_requests(self, organization_id: str, session_id: str) -> list[dict[str, Any]]:
        """One session's requests, oldest first, for its tree (`domain.sessions.build_tree`)."""
        return await self._rows(organization_id, sessions.session_requests_sql, session_id)

    async def session_exists(self, organization_id: str, session_id: str) -> bool:
        return bool(await self._rows(organization_id, sessions.session_exists_sql, session_id))

    async def users(self, organization_id: str, query: AggregateQuery) -> list[UserRow]:
        return await self._rows(organization_id, aggregates.users_sql, query)

    async def user_count(self, organization_id: str, query: AggregateQuery) -> int:
        row = await self._row(dict[str, Any], organization_id, aggregates.user_count_sql, query)
        return int(row["count"])

    async def user_distributions(
        self, organization_id: str, query: AggregateQuery, upper: float, lower: float | None
    ) -> dict[str, Any]:
        """Trimmed histograms of requests and cost (USD) per user; empty when there are none."""
        bounds_sql = aggregates.user_distribution_bounds_sql
        (bounds,) = await self._rows(organization_id, bounds_sql, query, upper, lower)
        if not int(bounds["users"]):
            return {}
        histograms_sql = aggregates.user_distribution_histograms_sql
        (histograms,) = await self._rows(organization_id, histograms_sql, query, bounds)
        return dict(histograms)

    async def user_totals(self, organization_id: str, query: AggregateQuery) -> list[UserTotalsRow]:
        return await self._rows(organization_id, aggregates.user_totals_sql, query)

    async def metric_totals(self, organization_id: str, query: AggregateQuery) -> MetricTotalsRow:
        return await self._row(MetricTotalsRow, organization_id, metrics.totals_sql, query)

    async def metric_series(
        self, organization_id: str, query: AggregateQuery, name: str, increment: str, tz: int
    ) -> list[SeriesRow]:
        return await self._rows(organization_id, metrics.series_sql, query, name, increment, tz)

    async def metric_quantiles(
        self, organization_id: str, query: AggregateQuery, metric: str, increment: str, tz: int
    ) -> list[QuantileRow]:
        build = metrics.quantiles_sql
        return await self._rows(organization_id, build, query, metric, increment, tz)

    async def providers(self, organization_id: str, query: AggregateQuery) -> list[dict[str, Any]]:
        return await self._rows(organization_id, metrics.providers_sql, query)

    async def scores_over_time(
        self, organization_id: str, query: AggregateQuery, increment: str, tz: int
    ) -> list[dict[str, Any]]:
        build = metrics.scores_over_time_sql
        return await self._rows(organization_id, build, query, increment, tz)

    async def dashboard(self, organization_id: str, query: AggregateQuery) -> dict[str, Any]:
        return await self._row(dict[str, Any], organization_id, metrics.dashboard_sql, query)

    async def dashboard_series(
        self, organization_id: str, query: AggregateQuery, increment: str, tz: int
    ) -> list[SeriesRow]:
        build = metrics.dashboard_series_sql
        return await self._rows(organization_id, build, query, increment, tz)

    async def top_users(self, organization_id: str, query: AggregateQuery) -> list[dict[str, Any]]:
        return await self._rows(organization_id, aggregates.top_users_sql, query)

    async def cached_requests(
        self, organization_id: str, query: AggregateQuery
    ) -> list[dict[str, Any]]:
        return await self._rows(organization_id, metrics.cached_requests_sql, query)

    async def model_breakdown(self, organization_id: str, query: AggregateQuery) -> list[ModelRow]:
        return await self._rows(organization_id, metrics.models_sql, query)

    async def _has_added_properties(self, organization_id: str) -> bool:
        return bool(await self._rows(organization_id, properties.has_added_sql))

    async def property_keys(
        self, organization_id: str, query: AggregateQuery, hidden: list[str]
    ) -> list[PropertyKeyRow]:
        added = await self._has_added_properties(organization_id)
        return await self._rows(organization_id, properties.keys_sql, query, hidden, added)

    async def property_values(
        self, organization_id: str, query: AggregateQuery, key: str, search: str
    ) -> list[PropertyValueRow]:
        added = await self._has_added_properties(organization_id)
        build = properties.values_sql
        return await self._rows(organization_id, build, query, key, search, added)

    async def property_top(
        self, organization_id: str, query: AggregateQuery, key: str, by: str
    ) -> list[PropertyTopRow]:
        added = await self._has_added_properties(organization_id)
        return await self._rows(organization_id, properties.top_sql, query, key, by, added)

    async def property_over_time(
        self, organization_id: str, query: AggregateQuery, key: str, increment: str, tz: int
    ) -> list[PropertyOverTimeRow]:
        added = await self._has_added_properties(organization_id)
        build = properties.over_time_sql
        return await self._rows(organization_id, build, query, key, increment, tz, added)
