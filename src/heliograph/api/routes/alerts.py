"""Alert rules: list and read history with READ, create, change and delete with CONFIGURE. Each
field is checked by `domain/alerts.py` (the filter by the request filter grammar, webhook URLs by
the outbound policy) so a refusal names the field; webhook URLs come back masked. Plain `def`
routes: FastAPI runs them on its thread pool, so app DB calls never block the event loop."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field

from heliograph.api.deps import Configurer, Reader, ServicesDep, actor_of
from heliograph.api.envelope import JsonResponse, ok
from heliograph.api.schemas import StrictBody
from heliograph.domain import alerts as rules
from heliograph.services.alerts import MAX_HISTORY, AlertHistoryLine, AlertRule

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

AlertId = Annotated[str, Path(min_length=1, max_length=64)]
# Types are loose here on purpose: `domain/alerts.py` checks each value and names the field.
Name = Annotated[str, Field(max_length=rules.MAX_NAME_CHARS * 4)]
Channels = Annotated[list[Any], Field(description="webhook {type, url} or email {type, to}")]


class AlertBody(StrictBody):
    name: Name
    metric: str = Field(description="error_rate, cost, latency or count")
    aggregation: str | None = Field(default=None, description="latency: avg, p50 … p99")
    threshold: Any = Field(description="a number ≥ 0: %, USD, ms or requests")
    window_minutes: Any = Field(description="1 to 1440")
    min_requests: Any = 1
    filter: Any = Field(default="all", description="FilterNode, as the request query takes")
    channels: Channels
    enabled: bool = True


class AlertPatch(StrictBody):
    name: Name | None = None
    metric: str | None = None
    aggregation: str | None = None
    threshold: Any = None
    window_minutes: Any = None
    min_requests: Any = None
    filter: Any = None
    channels: Channels | None = None
    enabled: bool | None = None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds")


def shape(rule: AlertRule) -> dict[str, Any]:
    """A rule as the API and the page show it: webhook URLs masked."""
    return {
        "id": rule.id,
        "name": rule.name,
        "metric": rule.measure.metric,
        "aggregation": rule.measure.aggregation,
        "threshold": rule.threshold,
        "window_minutes": rule.window_minutes,
        "min_requests": rule.min_requests,
        "filter": rule.filter,
        "channels": rules.shown_channels(rule.channels),
        "enabled": rule.enabled,
        "state": rule.state,
        "state_changed_at": _iso(rule.state_changed_at),
        "last_value": rule.last_value,
        "last_evaluated_at": _iso(rule.last_evaluated_at),
        "created_at": _iso(rule.created_at),
        "updated_at": _iso(rule.updated_at),
    }


def shape_line(line: AlertHistoryLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "alert_id": line.alert_id,
        "event": line.event,
        "value": line.value,
        "threshold": line.threshold,
        "request_count": line.request_count,
        "notifications": line.notifications,
        "created_at": _iso(line.created_at),
    }


@router.get("", operation_id="listAlerts")
def list_alerts(caller: Reader, services: ServicesDep) -> JsonResponse:
    """The organization's alert rules, oldest first, with their state and last value."""
    return ok([shape(rule) for rule in services.alerts.list_rules(caller.organization_id)])


@router.post("", operation_id="createAlert")
def create_alert(
    body: AlertBody, request: Request, caller: Configurer, services: ServicesDep
) -> JsonResponse:
    actor = actor_of(request, caller)
    rule = services.alerts.create(caller.organization_id, body.model_dump(), actor)
    return ok(shape(rule), status_code=201)


@router.get("/{alert_id}", operation_id="getAlert")
def get_alert(alert_id: AlertId, caller: Reader, services: ServicesDep) -> JsonResponse:
    return ok(shape(services.alerts.get(caller.organization_id, alert_id)))


@router.patch("/{alert_id}", operation_id="updateAlert")
def update_alert(
    alert_id: AlertId,
    body: AlertPatch,
    request: Request,
    caller: Configurer,
    services: ServicesDep,
) -> JsonResponse:
    """Change any of the fields sent (a null is refused: send only what changes)."""
    changes = body.model_dump(exclude_unset=True)
    actor = actor_of(request, caller)
    return ok(shape(services.alerts.update(caller.organization_id, alert_id, changes, actor)))


@router.delete("/{alert_id}", operation_id="deleteAlert")
def delete_alert(
    alert_id: AlertId, request: Request, caller: Configurer, services: ServicesDep
) -> JsonResponse:
    services.alerts.delete(caller.organization_id, alert_id, actor_of(request, caller))
    return ok({"deleted": alert_id})


@router.get("/{alert_id}/history", operation_id="listAlertHistory")
def alert_history(
    alert_id: AlertId,
    caller: Reader,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = 50,
) -> JsonResponse:
    """The rule's transitions (fired, resolved), newest first, with who was told."""
    lines = services.alerts.history(caller.organization_id, alert_id, limit)
    return ok([shape_line(line) for line in lines])
