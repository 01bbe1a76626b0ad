"""The SQL console's saved queries."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
