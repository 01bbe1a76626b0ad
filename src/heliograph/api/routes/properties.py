"""`/v1/property/*`: custom property keys (and hiding them, in the audit log), value search, top
values by cost or requests, and usage per value over time (in Heliograph's and Helicone's
shapes)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Request

from heliograph.api.deps import Configurer, Reader, ServicesDep, actor_of
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.routes.metrics import iso_range, metrics_query
from heliograph.api.schemas import (
    MetricsBody,
    PropertiesOverTimeBody,
    PropertyBody,
    PropertyKeyBody,
)
from heliograph.domain.access import Caller
from heliograph.domain.filters import MAX_KEY_CHARS, show
from heliograph.domain.queries import AggregateQuery
from heliograph.services.container import Services

router = APIRouter(prefix="/v1/property", tags=["properties"])
PropertyKey = Annotated[str, Path(min_length=1, max_length=MAX_KEY_CHARS)]


@router.post("/query", operation_id="propertyKeys")
async def property_keys(body: MetricsBody, caller: Reader, services: ServicesDep) -> JsonResponse:
    return ok(await services.properties.keys(caller.organization_id, metrics_query(body)))


# Before `/{key}/...`: a key named "properties" still reaches `/properties/{key}/over-time`.
@router.post("/properties/over-time", operation_id="propertiesOverTime")
async def properties_over_time(
    body: PropertiesOverTimeBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    """Helicone's shape of the per-value series: `{created_at_trunc, property, request_count,
    total_cost}` per bucket and value."""
    query = AggregateQuery(filter=body.userFilter, time=iso_range(body.timeFilter))
    points = await services.properties.over_time(
        caller.organization_id, query, body.propertyKey, body.dbIncrement, body.timeZoneDifference
    )
    return ok(
        [
            {
                "created_at_trunc": point["time"],
                "property": point["value"],
                "request_count": point["requests"],
                "total_cost": point["cost"],
            }
            for point in points
        ]
    )


@router.post("/{key}/search", operation_id="propertyValues")
async def property_values(
    key: PropertyKey, body: PropertyBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    values = await services.properties.values(
        caller.organization_id, metrics_query(body), key, body.searchTerm
    )
    return ok(values)


@router.post("/{key}/top-costs/query", operation_id="propertyTopCosts")
async def property_top_costs(
    key: PropertyKey, body: MetricsBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    return await _top(key, body, caller.organization_id, services, "cost")


@router.post("/{key}/top-requests/query", operation_id="propertyTopRequests")
async def property_top_requests(
    key: PropertyKey, body: MetricsBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    return await _top(key, body, caller.organization_id, services, "requests")


async def _top(
    key: PropertyKey, body: MetricsBody, organization_id: str, services: Services, by: str
) -> JsonResponse:
    return ok(await services.properties.top(organization_id, metrics_query(body), key, by))


@router.post("/{key}/over-time", operation_id="propertyOverTime")
async def property_over_time(
    key: PropertyKey, body: MetricsBody, caller: Reader, services: ServicesDep
) -> JsonResponse:
    points = await services.properties.over_time(
        caller.organization_id,
        metrics_query(body),
        key,
        body.dbIncrement,
        body.timeZoneDifference,
    )
    return ok(points)


@router.post("/hide", operation_id="hidePropertyKey")
async def hide_property(
    body: PropertyKeyBody, request: Request, caller: Configurer, services: ServicesDep
) -> JsonResponse:
    await asyncio.to_thread(services.properties.hidden.hide, caller.organization_id, body.key)
    await _audit(services, request, caller, "property.hide", body.key)
    return ok(None)


@router.post("/restore", operation_id="restorePropertyKey")
async def restore_property(
    body: PropertyKeyBody, request: Request, caller: Configurer, services: ServicesDep
) -> JsonResponse:
    hidden = services.properties.hidden
    if not await asyncio.to_thread(hidden.restore, caller.organization_id, body.key):
        return fail(404, f"property key {show(body.key)} is not hidden")
    await _audit(services, request, caller, "property.restore", body.key)
    return ok(None)


async def _audit(
    services: Services, request: Request, caller: Caller, action: str, key: str
) -> None:
    actor = actor_of(request, caller)
    target = ("property", key)
    await asyncio.to_thread(services.audit.record, actor, action, caller.organization_id, target)


@router.post("/hidden/query", operation_id="hiddenPropertyKeys")
async def hidden_properties(caller: Reader, services: ServicesDep) -> JsonResponse:
    keys = await asyncio.to_thread(services.properties.hidden.keys, caller.organization_id)
    return ok([{"key": key} for key in keys])
