"""Helicone's `{data, error}` envelope and the error responses every route shares. Engine texts,
file paths and tracebacks stay in the server log (one line, shortened); clients get a message
written for them."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from heliograph.domain.errors import InvalidInput
from heliograph.domain.filters import FilterError

log = logging.getLogger("heliograph.api")

LOGGED_CHARS = 300
MAX_PROBLEMS = 5


class JsonResponse(Response):
    """JSON rendered by orjson (fast, and exact for large integers)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def ok(data: Any, status_code: int = 200) -> JsonResponse:
    return JsonResponse({"data": data, "error": None}, status_code=status_code)


def fail(status_code: int, message: str, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse({"data": None, "error": message}, status_code=status_code, headers=headers)


async def on_validation_error(_request: Request, error: Exception) -> JsonResponse:
    """A 400 listing what the body's schema refused; when only a filter or sort was refused (by
    its parser, as the body was validated), that refusal's own message."""
    assert isinstance(error, RequestValidationError)
    errors = [item for item in error.errors() if _refusal(item) is None]
    if not errors:
        return fail(400, str(_refusal(error.errors()[0])))
    problems = []
    for item in errors[:MAX_PROBLEMS]:
        where = ".".join(str(part)[:100] for part in item.get("loc", ()) if part != "body")
        problems.append(f"{where or 'body'}: {item.get('msg', 'invalid')}")
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"and {len(errors) - MAX_PROBLEMS} more")
    return fail(400, "invalid request: " + "; ".join(problems))


def _refusal(item: Any) -> FilterError | None:
    """The `FilterError` a body field's parser raised, if that is what this error is."""
    reason = (item.get("ctx") or {}).get("error")
    return reason if isinstance(reason, FilterError) else None


async def on_http_error(_request: Request, error: Exception) -> JsonResponse:
    assert isinstance(error, HTTPException)
    return fail(error.status_code, str(error.detail))


async def on_store_unavailable(request: Request, error: Exception) -> JsonResponse:
    """The analytics engine failed: a 503 in the envelope (writes are spooled, reads can retry).
    The engine's text may quote SQL, values or paths, so it goes to the log only, shortened."""
    log.warning("analytics store error on %s: %s", _route(request), one_line(str(error)))
    return fail(503, "the analytics store could not answer; try again shortly")


async def on_unexpected(request: Request, error: Exception) -> JsonResponse:
    """Anything else is a bug: logged with its traceback, answered in the envelope with a message
    that names nothing internal."""
    log.error("unexpected API error on %s", _route(request), exc_info=error)
    return fail(500, "internal error; it has been logged")


def one_line(text: str, limit: int = LOGGED_CHARS) -> str:
    """`text` on one line and at most `limit` characters, for a log that stays readable."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _route(request: Request) -> str:
    return one_line(f"{request.method} {request.url.path}", 200)


async def on_invalid_input(_request: Request, error: Exception) -> JsonResponse:
    """Input a rule refused (a filter, a sort, paging, a time range…): its status, saying why."""
    assert isinstance(error, InvalidInput)
    return fail(error.status, str(error), getattr(error, "headers", None))
