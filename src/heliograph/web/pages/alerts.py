"""`/alerts`: the organization's alert rules with their state and last value, each with its recent
history, and a form for a new rule. Rules are read from the service the REST routes use (webhook
URLs masked by the same shape); every change is made by static/alerts.js through the REST API."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from heliograph.api.deps import ServicesDep
from heliograph.api.routes.alerts import shape, shape_line
from heliograph.domain.access import Capability
from heliograph.domain.alerts import AGGREGATIONS, MAX_WINDOW_MINUTES, METRICS, show_value
from heliograph.web.templating import TemplatesDep
from heliograph.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)
HISTORY_SHOWN = 10  # the newest transitions of each rule; the REST route pages further
METRIC_LABELS = {
    "error_rate": "Error rate (%)",
    "cost": "Cost (USD)",
    "latency": "Latency (ms)",
    "count": "Requests",
}
assert tuple(METRIC_LABELS) == METRICS


@router.get("/alerts")
async def alerts_page(
    request: Request, viewer: ViewerDep, services: ServicesDep, templates: TemplatesDep
) -> Response:
    org, alerts = viewer.organization_id, services.alerts
    rules = await run_in_threadpool(alerts.list_rules, org)
    histories = await asyncio.gather(
        *(run_in_threadpool(alerts.history, org, rule.id, HISTORY_SHOWN) for rule in rules)
    )
    shown = [
        {**shape(rule), "history": [shape_line(line) for line in lines]}
        for rule, lines in zip(rules, histories, strict=True)
    ]
    return templates.render(
        request,
        "alerts.html",
        viewer,
        alerts=shown,
        may_configure=viewer.can(Capability.CONFIGURE),
        metrics=METRIC_LABELS,
        aggregations=AGGREGATIONS,
        max_window=MAX_WINDOW_MINUTES,
        interval_s=f"{services.settings.alert_interval_s:g}",
        show=value_text,
    )


def value_text(metric: str, value: Any) -> str:
    """A metric's value as the page shows it ("12.5%", "$0.0042", "830 ms", "17 requests")."""
    return show_value(metric, None if value is None else float(value))
