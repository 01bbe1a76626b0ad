"""The one metric an alert rule watches over its window, with the number of requests it covers:
read from `rollup.summary_source` (whole hours from the hourly rollup, the edges from the
requests), under the organization's `Scope`."""

from __future__ import annotations

from typing import Any

from heliograph.analytics.engine import AnalyticsEngine
from heliograph.analytics.metrics import MERGE_QUANTILES
from heliograph.analytics.rollup import summary_source
from heliograph.analytics.scope import Scope
from heliograph.domain.alerts import QUANTILE_POSITIONS, Measure, Reading
from heliograph.domain.filter_tree import Filter
from heliograph.domain.money import NANO_PER_USD
from heliograph.domain.queries import AggregateQuery, TimeRange

# Each metric over summary rows; NULL when the window holds no request.
VALUES = {
    "error_rate": "if(sum(requests) = 0, NULL, "
    "100 * sumIf(requests, status >= 400 OR status < 0) / sum(requests))",
    "cost": "sum(cost_nano)",
    "count": "sum(requests)",
    "latency": "if(sum(requests) = 0, NULL, sum(latency_sum) / sum(requests))",
}


def value_sql(measure: Measure) -> str:
    if measure.metric == "latency" and measure.aggregation in QUANTILE_POSITIONS:
        position = QUANTILE_POSITIONS[measure.aggregation]
        return (
            f"if(sum(requests) = 0, NULL, "
            f"arrayElement({MERGE_QUANTILES}(latency_digest), {position}))"
        )
    return VALUES[measure.metric]


def reading_sql(
    scope: Scope, tree: Filter, measure: Measure, start_ms: int, end_ms: int
) -> tuple[str, dict[str, Any]]:
    """One row: `requests` and `value` over `[start_ms, end_ms)`."""
    query = AggregateQuery(filter=tree, time=TimeRange(start_ms, end_ms))
    source, params = summary_source(scope, query)
    sql = f"SELECT sum(requests) AS requests, {value_sql(measure)} AS value FROM ({source})"
    return sql, params


class AlertMetrics:
    def __init__(self, engine: AnalyticsEngine) -> None:
        self._engine = engine

    async def reading(
        self, organization_id: str, tree: Filter, measure: Measure, start_ms: int, end_ms: int
    ) -> Reading:
        """The rule's metric over `[start_ms, end_ms)` for the organization's requests that
        pass `tree` (cost in USD, latency in ms, error rate in percent)."""
        scope = self._engine.scope(organization_id)
        rows = await self._engine.read(scope, *reading_sql(scope, tree, measure, start_ms, end_ms))
        row = rows[0] if rows else {}
        count = int(row.get("requests") or 0)
        value = row.get("value")
        if value is None or value != value:  # NULL, or NaN from an empty digest
            return Reading(None if measure.metric not in ("count", "cost") else 0.0, count)
        number = float(value)
        if measure.metric == "cost":
            number /= NANO_PER_USD
        return Reading(number, count)
