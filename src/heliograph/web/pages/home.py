"""`/`: the organization's requests, cost, tokens, latency, time to first token, errors and
cache savings over the chosen range, as tiles and charts, with its top models, providers and
users."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from heliograph.api.deps import ServicesDep
from heliograph.domain.queries import AggregateQuery
from heliograph.web.charts import ranking_chart, series_chart
from heliograph.web.templating import TemplatesDep
from heliograph.web.time_range import window
from heliograph.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)
TOP = 8
Param = Annotated[str | None, Query(max_length=40)]


@router.get("/")
async def home(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
    range: Param = None,
    start: Param = None,
    end: Param = None,
) -> Response:
    chosen = window(range, start, end)
    query = AggregateQuery(time=chosen.time)
    org, metrics = viewer.organization_id, services.metrics
    numbers, series, models, users = await asyncio.gather(
        metrics.dashboard(org, query),
        metrics.dashboard_series(org, query, chosen.increment, 0),
        metrics.models(org, query),
        services.users.top(org, AggregateQuery(time=chosen.time, limit=TOP)),
    )
    totals = numbers["totals"]
    charts = {
        "requests": series_chart(series, {"count": "Requests", "errors": "Errors"}, "count", "bar"),
        "cost": series_chart(series, {"cost": "Cost"}, "usd", "bar"),
        "latency": series_chart(series, {"p50": "p50", "p95": "p95"}, "ms"),
        "ttft": series_chart(series, {"ttft": "Time to first token"}, "ms"),
        "tokens": series_chart(
            series,
            {"prompt_tokens": "Prompt", "completion_tokens": "Completion"},
            "tokens",
            "bar",
            stacked=True,
        ),
        "models": ranking_chart(
            [row["model"] or "(unknown)" for row in models[:TOP]],
            [row["cost"] for row in models[:TOP]],
            "usd",
        ),
    }
    requests_total = totals["total_requests"]
    return templates.render(
        request,
        "home.html",
        viewer,
        window=chosen,
        totals=totals,
        latency=numbers["latency"],
        ttft=numbers["ttft"],
        error_rate=100 * totals["errors"] / requests_total if requests_total else None,
        charts=charts,
        models=models[:TOP],
        providers=_providers(models),
        users=users,
    )


def _providers(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = defaultdict(lambda: {"requests": 0, "cost": 0.0})
    for row in models:
        entry = totals[row["provider"] or "(unknown)"]
        entry["requests"] += row["total_requests"]
        entry["cost"] += row["cost"]
    ranked = sorted(totals.items(), key=lambda item: item[1]["requests"], reverse=True)
    return [{"provider": name, **values} for name, values in ranked[:TOP]]
