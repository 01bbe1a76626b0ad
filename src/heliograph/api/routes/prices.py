"""`/v1/price-overrides`: an organization's own prices per model (and provider), each change in
the audit log, and `recompute`, which re-prices the requests of a time range already stored. Plain
`def` routes run on FastAPI's thread pool, so app DB calls never block the event loop."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from heliograph.api.deps import Configurer, Reader, ServicesDep, actor_of
from heliograph.api.envelope import JsonResponse, ok
from heliograph.api.schemas import StrictBody
from heliograph.domain.pricing import MAX_MODEL_CHARS, MAX_PROVIDER_CHARS
from heliograph.services.prices import (
    OverrideInput,
    RecomputeRange,
    StoredOverride,
    optional_text,
)

router = APIRouter(prefix="/v1/price-overrides", tags=["prices"])
# A string keeps every digit; a JSON number is read as its shortest decimal.
Price = Decimal | Annotated[str, StringConstraints(max_length=64)]


class PriceOverrideBody(StrictBody):
    """USD per million tokens of each kind, and per request. A cache rate left out (or null)
    charges those tokens as input tokens."""

    provider: str = Field(default="", max_length=MAX_PROVIDER_CHARS, description="'' = any")
    model: str = Field(min_length=1, max_length=MAX_MODEL_CHARS, description="may end in '*'")
    input_per_mtok: Price
    output_per_mtok: Price
    cache_read_per_mtok: Price | None = None
    cache_write_per_mtok: Price | None = None
    per_request: Price = Decimal(0)


class PriceOverridePatch(StrictBody):
    """The fields to change; the others keep their values."""

    provider: str | None = Field(default=None, max_length=MAX_PROVIDER_CHARS)
    model: str | None = Field(default=None, min_length=1, max_length=MAX_MODEL_CHARS)
    input_per_mtok: Price | None = None
    output_per_mtok: Price | None = None
    cache_read_per_mtok: Price | None = None
    cache_write_per_mtok: Price | None = None
    per_request: Price | None = None


class RecomputeBody(StrictBody):
    start: datetime
    end: datetime
    model: str | None = Field(default=None, max_length=MAX_MODEL_CHARS)


def _shape(stored: StoredOverride) -> dict[str, Any]:
    value, text = stored.value, optional_text
    return {
        "id": stored.id,
        "provider": value.provider,
        "model": value.model,
        "input_per_mtok": text(value.input_per_mtok),
        "output_per_mtok": text(value.output_per_mtok),
        "cache_read_per_mtok": text(value.cache_read_per_mtok),
        "cache_write_per_mtok": text(value.cache_write_per_mtok),
        "per_request": text(value.per_request),
        "created_at": stored.created_at.isoformat(),
        "updated_at": stored.updated_at.isoformat(),
    }


@router.get("", operation_id="listPriceOverrides")
def list_overrides(caller: Reader, services: ServicesDep) -> JsonResponse:
    return ok([_shape(item) for item in services.prices.list(caller.organization_id)])


@router.post("", operation_id="savePriceOverride")
def save_override(
    body: PriceOverrideBody, request: Request, caller: Configurer, services: ServicesDep
) -> JsonResponse:
    """Create an override, or replace the one with the same provider and model (200)."""
    given = OverrideInput(**body.model_dump())
    actor = actor_of(request, caller)
    stored, created = services.prices.save(caller.organization_id, given, actor)
    return ok(_shape(stored), status_code=201 if created else 200)


@router.patch("/{override_id}", operation_id="updatePriceOverride")
def update_override(
    override_id: str,
    body: PriceOverridePatch,
    request: Request,
    caller: Configurer,
    services: ServicesDep,
) -> JsonResponse:
    changes = body.model_dump(exclude_unset=True)
    for name in ("provider", "model", "input_per_mtok", "output_per_mtok", "per_request"):
        if name in changes and changes[name] is None:
            changes.pop(name)  # only the cache rates take null ("as input")
    actor = actor_of(request, caller)
    stored = services.prices.update(caller.organization_id, override_id, changes, actor)
    return ok(_shape(stored))


@router.delete("/{override_id}", operation_id="deletePriceOverride")
def delete_override(
    override_id: str, request: Request, caller: Configurer, services: ServicesDep
) -> JsonResponse:
    services.prices.delete(caller.organization_id, override_id, actor_of(request, caller))
    return ok({"deleted": override_id})


@router.post("/recompute", operation_id="recomputePrices")
async def recompute(
    body: RecomputeBody, request: Request, caller: Configurer, services: ServicesDep
) -> JsonResponse:
    """Re-price the organization's stored requests from `start` to `end` (at most 400 days)."""
    # Checked as it is made: a refusal is a 400 before anything is read.
    span = RecomputeRange(caller.organization_id, body.start, body.end, body.model or "")
    result = await services.repricer.recompute(span)
    await run_in_threadpool(
        services.audit.record,
        actor_of(request, caller),
        "price_override.recompute",
        caller.organization_id,
        ("price_override", ""),
        {"start": span.start.isoformat(), "end": span.end.isoformat(), "model": span.model},
    )
    return ok(
        {
            "rows_checked": result.rows_checked,
            "rows_repriced": result.rows_repriced,
            "rows_unknown": result.rows_unknown,
            "hours_rebuilt": result.hours_rebuilt,
        }
    )
