"""`/v1/auth/sso`: Single sign-on with OpenID Connect."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/auth/sso", tags=["sso"])
