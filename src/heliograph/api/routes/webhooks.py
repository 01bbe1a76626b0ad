"""`/v1/webhooks`, in Helicone's paths and shapes: list, create, delete and test an
organization's webhooks, plus `/v1/webhooks/{id}/deliveries`, the delivery log. Every route needs
CONFIGURE, the list too, since it carries each webhook's `hmac_key`. Plain `def` routes: FastAPI
runs them on its thread pool, so app DB calls never block the event loop."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field, StrictBool

from heliograph.api.deps import Configurer, ServicesDep, actor_of
from heliograph.api.envelope import JsonResponse, fail, ok
from heliograph.api.schemas import StrictBody
from heliograph.domain.record import MAX_PROPERTY_NAME_CHARS, MAX_PROPERTY_VALUE_CHARS
from heliograph.domain.webhooks import MAX_PROPERTY_FILTERS
from heliograph.services.outbound import MAX_URL_CHARS
from heliograph.services.webhooks import MAX_LOG_PAGE, DeliveryInfo, WebhookInfo

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

WebhookId = Annotated[str, Path(min_length=1, max_length=64)]


class PropertyFilterBody(StrictBody):
    key: str = Field(min_length=1, max_length=MAX_PROPERTY_NAME_CHARS)
    value: str = Field(max_length=MAX_PROPERTY_VALUE_CHARS)


class WebhookConfigBody(StrictBody):
    sampleRate: float = Field(default=100, ge=0, le=100)  # Helicone's names
    propertyFilters: list[PropertyFilterBody] = Field(
        default_factory=list, max_length=MAX_PROPERTY_FILTERS
    )
    includeData: StrictBool | None = None  # where Helicone's own client puts it


class WebhookBody(StrictBody):
    destination: str = Field(min_length=1, max_length=MAX_URL_CHARS)
    config: WebhookConfigBody = Field(default_factory=WebhookConfigBody)
    includeData: StrictBool | None = None  # Helicone's name; true when left out


def _shape(webhook: WebhookInfo) -> dict[str, Any]:
    filters = [{"key": item.key, "value": item.value} for item in webhook.property_filters]
    return {
        "id": webhook.id,
        "destination": webhook.destination,
        "version": webhook.version,
        "config": {
            "sampleRate": webhook.sample_rate,
            "propertyFilters": filters,
            "includeData": webhook.include_data,
        },
        "includeData": webhook.include_data,
        "hmac_key": webhook.hmac_key,
        "created_at": _iso(webhook.created_at),
    }


def _delivery(delivery: DeliveryInfo) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "request_id": delivery.request_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "created_at": _iso(delivery.created_at),
        "next_attempt_at": _iso(delivery.next_attempt_at),
        "delivered_at": _iso(delivery.delivered_at) if delivery.delivered_at else None,
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


@router.get("", operation_id="listWebhooks")
def list_webhooks(caller: Configurer, services: ServicesDep) -> JsonResponse:
    """The organization's webhooks, oldest first, each with its `hmac_key`."""
    found = services.webhooks.list_webhooks(caller.organization_id)
    return ok([_shape(webhook) for webhook in found])


@router.post("", operation_id="createWebhook", status_code=201)
def create_webhook(
    body: WebhookBody, request: Request, caller: Configurer, services: ServicesDep
) -> JsonResponse:
    """Add a webhook; the answer carries its `hmac_key`, which signs every payload."""
    include = body.includeData if body.includeData is not None else body.config.includeData
    webhook = services.webhooks.create(
        caller.organization_id,
        body.destination,
        body.config.sampleRate,
        [item.model_dump() for item in body.config.propertyFilters],
        include is not False,
        actor_of(request, caller),
    )
    return ok(_shape(webhook), status_code=201)


@router.delete("/{webhook_id}", operation_id="deleteWebhook")
def delete_webhook(
    webhook_id: WebhookId, request: Request, caller: Configurer, services: ServicesDep
) -> JsonResponse:
    """Delete the webhook and its delivery log; what it was still owed is not sent."""
    if not services.webhooks.delete(caller.organization_id, webhook_id, actor_of(request, caller)):
        return fail(404, f"no webhook {webhook_id}")
    return ok(None)


@router.post("/{webhook_id}/test", operation_id="testWebhook", status_code=202)
def test_webhook(
    webhook_id: WebhookId, request: Request, caller: Configurer, services: ServicesDep
) -> JsonResponse:
    """Send the webhook a test payload; the answer names the delivery to follow in the log."""
    actor = actor_of(request, caller)
    delivery_id = services.webhooks.send_test(caller.organization_id, webhook_id, actor)
    if delivery_id is None:
        return fail(404, f"no webhook {webhook_id}")
    return ok({"delivery_id": delivery_id}, status_code=202)


@router.get("/{webhook_id}/deliveries", operation_id="listWebhookDeliveries")
def list_deliveries(
    webhook_id: WebhookId,
    caller: Configurer,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_PAGE)] = 50,
) -> JsonResponse:
    """The webhook's delivery log, newest first: status (pending, delivered, failed), attempts,
    the last answer's status and error, and when it is next tried."""
    found = services.webhooks.deliveries(caller.organization_id, webhook_id, limit)
    if found is None:
        return fail(404, f"no webhook {webhook_id}")
    return ok([_delivery(delivery) for delivery in found])
