"""`GET /v1/models`: the models Heliograph can price, with their prices, from genai-prices."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
