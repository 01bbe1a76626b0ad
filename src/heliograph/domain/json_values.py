"""JSON values from outside, made safe to store: every string cleaned, numbers no column or
encoder refuses, depth checked without recursion; and the integer and date bounds a stored row's
columns hold."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from heliograph.domain.text import clean_text

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# orjson encodes at most 255 levels and Python's recursion ends near 1,000: deeper is refused.
MAX_JSON_DEPTH = 200
# Moments a row may carry: later ones overflow the stored columns, earlier ones are a sender's bug.
EARLIEST, LATEST = datetime(1970, 1, 2, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)


def clean_json(value: Any) -> Any:
    """A JSON value with every string (keys too) cleaned."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(key)): clean_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clean_json(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN and infinities are not JSON
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64_MAX:
        return str(value)  # larger than any column or JSON encoder takes
    return value


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether a JSON value has objects or arrays more than `limit` levels deep (walked without
    recursion, so any depth can be asked about)."""
    level: list[Any] = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def strings_in(value: Any, max_depth: int, depth: int = 0) -> Iterator[str]:
    """Every string in a JSON value, values only (not keys), to `max_depth` levels."""
    if isinstance(value, str):
        yield value
    elif depth < max_depth and isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item, max_depth, depth + 1)
    elif depth < max_depth and isinstance(value, list):
        for item in value:
            yield from strings_in(item, max_depth, depth + 1)


def is_number(value: Any) -> bool:
    """A finite int or float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
