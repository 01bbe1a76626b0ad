"""`/healthz` and the Prometheus `/metrics` endpoint."""

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
    body = {
        "status": "ok" if store_ok else "degraded",
        "store": "ok" if store_ok else "unavailable",
        "queue_depth": services.writer.queue_depth,
    }
    return JsonResponse(body, status_code=200 if store_ok else 503)


@router.get("/metrics", operation_id="metrics")
async def metrics(services: ServicesDep) -> Response:
    services.telemetry.queue_depth.set(services.writer.queue_depth)
    return Response(services.telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)
