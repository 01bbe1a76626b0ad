"""`/webhooks`: the organization's webhooks (destination, sample rate, filters, whether bodies
are sent, the HMAC key revealed on click) and each one's recent deliveries. Only for people who
may configure the organization, since the list carries signing keys; read through
`services.webhooks`, changed by static/webhooks.js through the REST API."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from heliograph.api.deps import ServicesDep
from heliograph.domain.access import Capability
from heliograph.domain.webhooks import MAX_PROPERTY_FILTERS, MAX_WEBHOOKS
from heliograph.services.webhooks import DeliveryInfo
from heliograph.web.templating import TemplatesDep
from heliograph.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)
LOG_ROWS = 20  # deliveries shown per webhook; the REST log pages up to 500


@router.get("/webhooks")
async def webhooks_page(
    request: Request, viewer: ViewerDep, services: ServicesDep, templates: TemplatesDep
) -> Response:
    may_configure = viewer.can(Capability.CONFIGURE)
    org, webhooks = viewer.organization_id, services.webhooks
    hooks = await run_in_threadpool(webhooks.list_webhooks, org) if may_configure else []
    logs = await asyncio.gather(
        *(run_in_threadpool(webhooks.deliveries, org, hook.id, LOG_ROWS) for hook in hooks)
    )
    deliveries: dict[str, list[DeliveryInfo]] = {
        hook.id: found or [] for hook, found in zip(hooks, logs, strict=True)
    }
    return templates.render(
        request,
        "webhooks.html",
        viewer,
        may_configure=may_configure,
        webhooks=hooks,
        deliveries=deliveries,
        max_webhooks=MAX_WEBHOOKS,
        max_filters=MAX_PROPERTY_FILTERS,
    )
