"""`/v1/audit`: The audit log, for admins."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/audit", tags=["audit"])
