"""`GET /v1/models`: the models Heliograph can price, with their prices, from genai-prices. Public,
as Helicone's model registry is: it is the published price list, and says nothing about any
organization."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from heliograph.api.envelope import JsonResponse, ok
from heliograph.services.model_catalog import MAX_QUERY_CHARS, find_models

router = APIRouter(prefix="/v1/models", tags=["models"])

Text = Annotated[str | None, Query(max_length=MAX_QUERY_CHARS)]


@router.get("", operation_id="listModels")
async def list_models(provider: Text = None, q: Text = None) -> JsonResponse:
    """Every model genai-prices knows (or those of `provider`, or whose id or name contains `q`),
    with provider, name, context window and current prices in USD per million tokens."""
    # The first call builds the catalog (a fraction of a second): off the event loop.
    return ok(await run_in_threadpool(find_models, provider, q))
