"""Reading server-sent events out of a complete (already captured) response body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson


def iter_events(body: bytes) -> Iterator[tuple[str, bytes]]:
    """Yield `(event name, data)` for each event; handles LF and CRLF framing."""
    event, data_lines = "", list[bytes]()
    for raw_line in body.splitlines():
        line = raw_line.rstrip(b"\r")
        if not line:
            if data_lines:
                yield event, b"\n".join(data_lines)
            event, data_lines = "", list[bytes]()
        elif line.startswith(b"data:"):
            data_lines.append(line[5:].lstrip(b" "))
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode("utf-8", "replace")
    if data_lines:
        yield event, b"\n".join(data_lines)


def iter_json_events(body: bytes) -> Iterator[dict[str, Any]]:
    """Yield each event's data parsed as a JSON object, skipping `[DONE]` and non-JSON data."""
    for _, data in iter_events(body):
        if data == b"[DONE]":
            continue
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            yield value


def load_json(body: bytes) -> Any:
    """Parse a JSON body, or return None when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def as_int(value: Any) -> int | None:
    """An integer token count, or None for anything that is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def dig(mapping: Any, *keys: str) -> Any:
    """`mapping[k1][k2]...`, or None where any step is missing or not an object."""
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping
