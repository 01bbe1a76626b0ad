"""Per-organization price overrides, per model and provider."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
