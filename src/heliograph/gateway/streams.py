"""Removes the usage chunk the gateway itself asked for from an OpenAI-style SSE stream.

Events pass through as soon as they are complete; only a partial trailing event is held back.
"""

from __future__ import annotations

import orjson

EVENT_END = (b"\n\n", b"\r\n\r\n")


class UsageChunkFilter:
    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk
        cut = max(data.rfind(end) + len(end) if data.rfind(end) >= 0 else 0 for end in EVENT_END)
        complete, self._pending = data[:cut], data[cut:]
        if b'"choices":[]' not in complete and b'"choices": []' not in complete:
            return complete
        return b"".join(event for event in _events(complete) if not _is_usage_only(event))

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return b"" if _is_usage_only(rest) else rest


def _events(data: bytes) -> list[bytes]:
    events, start = [], 0
    while start < len(data):
        ends = [(data.find(end, start), end) for end in EVENT_END]
        found = [(index, end) for index, end in ends if index >= 0]
        if not found:
            events.append(data[start:])
            break
        index, end = min(found)
        events.append(data[start : index + len(end)])
        start = index + len(end)
    return events


def _is_usage_only(event: bytes) -> bool:
    for line in event.splitlines():
        if line.startswith(b"data:"):
            try:
                value = orjson.loads(line[5:].strip())
            except orjson.JSONDecodeError:
                return False
            return (
                isinstance(value, dict) and value.get("choices") == [] and bool(value.get("usage"))
            )
    return False
