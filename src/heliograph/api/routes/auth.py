"""`/v1/auth`: Sign-up, sign-in, sessions and passwords."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/auth", tags=["auth"])
