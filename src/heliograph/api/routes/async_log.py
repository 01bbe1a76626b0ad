"""Helicone's async-logging routes: `/oai/v1/log`, `/anthropic/v1/log`, `/googleapis/v1/log`
and `/custom/v1/log`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
