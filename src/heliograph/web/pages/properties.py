"""`/properties`: the organization's custom property keys (hidden ones listed apart, with hide and
restore through the REST API from properties.js) and, for the key in `?key=`, each value's
requests and cost over the chosen range, as a table linking to its requests and as charts."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from heliograph.api.deps import ServicesDep
from heliograph.domain.filters import MAX_KEY_CHARS
from heliograph.domain.queries import AggregateQuery
from heliograph.services.container import Services
from heliograph.web.charts import Unit, series_chart
from heliograph.web.templating import TemplatesDep
from heliograph.web.time_range import Window, window
from heliograph.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)
VALUES = 50  # rows of the value table
KEYS = 100  # rows of the key list: the busiest keys, a page that stays light
CHARTED = 8  # values drawn as their own series; the rest would only be noise
Param = Annotated[str | None, Query(max_length=40)]
Key = Annotated[str | None, Query(max_length=MAX_KEY_CHARS)]


@router.get("/properties")
async def properties(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
    range: Param = None,
    start: Param = None,
    end: Param = None,
    key: Key = None,
) -> Response:
    chosen = window(range, start, end)
    org, service = viewer.organization_id, services.properties
    keys, hidden = await asyncio.gather(
        service.keys(org, AggregateQuery(time=chosen.time)),
        asyncio.to_thread(service.hidden.keys, org),
    )
    context: dict[str, Any] = {"values": [], "charts": None}
    if key:
        context = await _values_of(services, org, chosen, key)
    return templates.render(
        request,
        "properties.html",
        viewer,
        window=chosen,
        keys=keys[:KEYS],
        more_keys=len(keys) - KEYS if len(keys) > KEYS else 0,
        hidden=hidden,
        key=key,
        range_params=range_params(chosen, start, end),
        can_configure=viewer.can("configure"),
        **context,
    )


async def _values_of(services: Services, org: str, chosen: Window, key: str) -> dict[str, Any]:
    service = services.properties
    query = AggregateQuery(time=chosen.time, limit=VALUES)
    values, points = await asyncio.gather(
        service.top(org, query, key, "requests"),
        service.over_time(org, AggregateQuery(time=chosen.time), key, chosen.increment, 0),
    )
    charted = [row["value"] for row in values[:CHARTED]]
    charts = {
        "requests": _per_value_chart(points, charted, "requests", "count"),
        "cost": _per_value_chart(points, charted, "cost", "usd"),
    }
    rows = [{**row, "href": requests_link(key, row["value"])} for row in values]
    return {"values": rows, "charts": charts}


def _per_value_chart(
    points: list[dict[str, Any]], values: list[str], field: str, unit: Unit
) -> dict[str, Any]:
    """One bar series per charted value, from (time, value, field) points."""
    by_time: dict[str, dict[str, Any]] = {}
    for point in points:
        if point["value"] in values:
            by_time.setdefault(point["time"], {"time": point["time"]})[point["value"]] = point[
                field
            ]
    buckets = [by_time[time] for time in sorted(by_time)]
    filled = [{value: bucket.get(value, 0) for value in values} | bucket for bucket in buckets]
    names = {value: value or "(empty)" for value in values}
    return series_chart(filled, names, unit, "bar", stacked=True)


def range_params(chosen: Window, start: str | None, end: str | None) -> dict[str, str]:
    """The URL parameters that keep the chosen range on a link to another key."""
    if chosen.name == "custom":
        return {"range": "custom", "start": start or "", "end": end or ""}
    return {"range": chosen.name}


def requests_link(key: str, value: str) -> str:
    """The requests page showing this value's requests (its `filter` URL format)."""
    condition = {"field": f"property:{key}", "op": "equals", "value": value}
    return "/requests?filter=" + quote(orjson.dumps({"and": [condition]}).decode(), safe="")
