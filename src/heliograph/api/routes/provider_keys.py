"""`/v1/api-keys`: The provider-key vault and proxy keys (Helicone's shapes)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/api-keys", tags=["provider-keys"])
