"""Server-sent events out of bytes that arrive split anywhere, for the stream translations: each
complete event's raw text as it is completed, with CRLF line ends (even split between two reads)
made LF."""

from __future__ import annotations

from collections.abc import Iterator


class SseEvents:
    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pending_cr = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Each event `data` completes (without its blank line); the rest waits for more. An
        event is taken out before it is yielded, so a caller that stops early leaves only the
        events it did not read."""
        self._buffer += self._normalised(data)
        while (end := self._buffer.find(b"\n\n")) >= 0:
            event = bytes(self._buffer[:end])
            del self._buffer[: end + 2]
            yield event

    def rest(self) -> bytes:
        """What is left when the stream ends: an event upstream never terminated, or b""."""
        rest = bytes(self._buffer) if self._buffer.strip() else b""
        self._buffer.clear()
        return rest

    def _normalised(self, data: bytes) -> bytes:
        if self._pending_cr:
            data = b"\r" + data
        self._pending_cr = data.endswith(b"\r")
        if self._pending_cr:
            data = data[:-1]
        return data.replace(b"\r\n", b"\n") if b"\r" in data else data
