"""`/cache`: what the response cache did over the chosen range: hits, the cost and time they
saved, hits over time, and the requests answered from the cache most often, each linking to
the original request and to its newest replay."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from heliograph.api.deps import ServicesDep
from heliograph.domain.queries import AggregateQuery
from heliograph.web.charts import series_chart
from heliograph.web.templating import TemplatesDep
from heliograph.web.time_range import window
from heliograph.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)
TOP = 25
Param = Annotated[str | None, Query(max_length=40)]


@router.get("/cache")
async def cache(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
    range: Param = None,
    start: Param = None,
    end: Param = None,
) -> Response:
    chosen = window(range, start, end)
    org, metrics = viewer.organization_id, services.metrics
    query = AggregateQuery(time=chosen.time)
    totals, points = await asyncio.gather(
        metrics.totals(org, query),
        metrics.cache_over_time(org, query, chosen.increment, 0),
    )
    # The totals come from the hourly rollup; the per-request list scans the range's requests,
    # so an organization without cache hits is spared it.
    cached = []
    if totals["cache_hits"]:
        cached = await metrics.cached_requests(org, AggregateQuery(time=chosen.time, limit=TOP))
    requests = totals["total_requests"]
    charts = {
        "hits": series_chart(points, {"hits": "Cache hits"}, "count", "bar"),
        "saved": series_chart(points, {"cost": "Cost saved"}, "usd", "bar"),
    }
    return templates.render(
        request,
        "cache.html",
        viewer,
        window=chosen,
        totals=totals,
        hit_rate=100 * totals["cache_hits"] / requests if requests else None,
        charts=charts,
        cached=cached,
    )
