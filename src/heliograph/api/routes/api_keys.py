"""`/v1/api-keys`: API keys over REST (Helicone's shapes)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])
