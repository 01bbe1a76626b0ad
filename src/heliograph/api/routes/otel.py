"""OpenTelemetry ingest: OTLP over HTTP (`/v1/traces`) and Helicone's `/v1/trace/log`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
