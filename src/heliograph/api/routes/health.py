"""`/healthz` and the Prometheus `/metrics` endpoint. `/healthz` answers 503 when the store does
not answer (`degraded`) or when queued or spooled records have not moved for `stall_after_s`
(`stalled`, naming the part)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from heliograph.analytics.executor import StoreUnavailable
from heliograph.api.deps import ServicesDep
from heliograph.api.envelope import JsonResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="health")
async def health(services: ServicesDep) -> JsonResponse:
    try:
        store_ok = await services.store.ping()
    except StoreUnavailable:
        store_ok = False
    stalled = services.writer.stalled(services.settings.stall_after_s)
    status = "degraded" if not store_ok else "stalled" if stalled else "ok"
    body = {
        "status": status,
        "store": "ok" if store_ok else "unavailable",
        "queue_depth": services.writer.queue_depth,
        "stalled": stalled,
    }
    return JsonResponse(body, status_code=200 if status == "ok" else 503)


@router.get("/metrics", operation_id="metrics")
async def metrics(services: ServicesDep) -> Response:
    services.telemetry.queue_depth.set(services.writer.queue_depth)
    return Response(services.telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)
