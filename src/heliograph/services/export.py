"""Exported requests as JSON lines or CSV, one line at a time."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

CSV_COLUMNS = (
    "request_id",
    "request_created_at",
    "provider",
    "model",
    "response_status",
    "delay_ms",
    "time_to_first_token",
    "prompt_tokens",
    "completion_tokens",
    "prompt_cache_read_tokens",
    "prompt_cache_write_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost",
    "request_user_id",
    "session_id",
    "session_path",
    "properties",
    "request_body",
    "response_body",
)


async def jsonl(requests: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for request in requests:
        yield orjson.dumps(request) + b"\n"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?")


async def csv_lines(requests: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    yield _csv_row(CSV_COLUMNS)
    async for request in requests:
        yield _csv_row(tuple(_cell(request.get(column)) for column in CSV_COLUMNS))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return inert(value) if isinstance(value, str) else str(value)


def inert(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: one that starts like a formula (and is not a
    plain number, such as -1) gets a leading apostrophe, OWASP's advice against CSV injection."""
    if not text.startswith(FORMULA_STARTS) or NUMBER.fullmatch(text):
        return text
    return "'" + text


def inert_csv(data: bytes) -> bytes:
    """`data`, a CSV document, with every cell made `inert`: unchanged, byte for byte, when no
    cell needs it (the usual case), else rewritten with every cell quoted."""
    rows = list(csv.reader(io.StringIO(data.decode(errors="replace"), newline="")))
    safe = [[inert(cell) for cell in row] for row in rows]
    if safe == rows:
        return data
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(safe)
    return buffer.getvalue().encode()


def _csv_row(cells: tuple[str, ...]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue().encode()
