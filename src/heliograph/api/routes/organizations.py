"""`/v1/organizations`: Organizations, their members and roles, and invitations."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/organizations", tags=["organizations"])
