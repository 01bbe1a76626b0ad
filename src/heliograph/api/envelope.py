"""Helicone's `{data, error}` envelope and the error responses every route shares."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

log = logging.getLogger("heliograph.api")


class JsonResponse(Response):
    """JSON rendered by orjson (fast, and exact for large integers)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def ok(data: Any, status_code: int = 200) -> JsonResponse:
    return JsonResponse({"data": data, "error": None}, status_code=status_code)


def fail(status_code: int, message: str) -> JsonResponse:
    return JsonResponse({"data": None, "error": message}, status_code=status_code)


async def on_validation_error(_request: Request, error: Exception) -> JsonResponse:
    assert isinstance(error, RequestValidationError)
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        problems.append(f"{where or 'body'}: {item.get('msg', 'invalid')}")
    return fail(400, "invalid request: " + "; ".join(problems))


async def on_http_error(_request: Request, error: Exception) -> JsonResponse:
    assert isinstance(error, HTTPException)
    return fail(error.status_code, str(error.detail))


async def on_store_unavailable(_request: Request, error: Exception) -> JsonResponse:
    """The analytics engine failed: a 503 in the envelope (writes are spooled, reads can retry)."""
    log.warning("analytics store error: %s", error)
    return fail(503, "the analytics store could not answer; try again shortly")


async def on_unexpected(_request: Request, error: Exception) -> JsonResponse:
    """Anything else: logged with its traceback, answered in the envelope, never as plain text."""
    log.error("unexpected API error", exc_info=error)
    return fail(500, "internal error; it has been logged")


async def on_bad_query(_request: Request, error: Exception) -> JsonResponse:
    """Filters, sorts, paging or time ranges the services rejected: a 400 that says why."""
    return fail(400, str(error))
