"""Slow and oversized clients on the API port. uvicorn times out only idle keep-alive
connections, so `limited_protocol` adds, to its h11 protocol, a deadline for each request head
(from connecting, or from the head's first byte) and one for each pause inside a body;
`HeaderLimits` answers 431 to too many or too long header fields before the app sees them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("heliograph.api")
Waiting = Literal["head", "body"] | None
HEAD_BYTES_PER_FIELD = 8  # the whole head may be this many times the longest field


class DeadlineProtocol(H11Protocol):
    """H11Protocol with read deadlines: a head must be whole `header_timeout_s` after it starts,
    a body may pause at most `body_timeout_s` (then 408 when no response has started)."""

    header_timeout_s = 10.0
    body_timeout_s = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting: Waiting = None
        self._since = 0.0  # when the head began, or when the body's last byte came
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for("head")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.IDLE:
            self._wait_for("head")  # the first bytes of a head (uvicorn's keep-alive timer is off)
        elif state is h11.SEND_BODY:
            self._wait_for("body")
            self._since = self.loop.time()
        elif self._waiting is not None:
            self._stop_waiting()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _wait_for(self, what: Waiting) -> None:
        if self._waiting == what:
            return
        self._stop_waiting()
        self._waiting, self._since = what, self.loop.time()
        self._deadline = self.loop.call_later(self._limit(), self._check)

    def _stop_waiting(self) -> None:
        self._waiting = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _limit(self) -> float:
        return self.header_timeout_s if self._waiting == "head" else self.body_timeout_s

    def _check(self) -> None:
        # Body bytes only move `_since`; the timer is re-armed here, not on every chunk.
        self._deadline = None
        if self._waiting is None or self.transport.is_closing():
            return
        remaining = self._since + self._limit() - self.loop.time()
        if remaining > 0:
            self._deadline = self.loop.call_later(remaining, self._check)
            return
        client = "%s:%d" % self.client if self.client else "a client"  # noqa: UP031
        log.info(
            "closed the connection from %s: no whole request %s in time", client, self._waiting
        )
        if self._waiting == "body":
            self._answer_timeout()
        self._waiting = None
        self.transport.close()

    def _answer_timeout(self) -> None:
        cycle = self.cycle
        if cycle is None or cycle.response_started or self.conn.our_state is not h11.SEND_RESPONSE:
            return
        cycle.disconnected = True  # the app's reads end and its writes are dropped
        cycle.message_event.set()
        body = orjson.dumps({"data": None, "error": "the request body stopped arriving"})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        response = h11.Response(status_code=408, headers=headers, reason=b"Request Timeout")
        for event in (response, h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event) or b"")


def limited_protocol(header_timeout_s: float, body_timeout_s: float) -> type[DeadlineProtocol]:
    """The protocol class to give `uvicorn.Config(http=...)`."""
    return type(
        "LimitedH11Protocol",
        (DeadlineProtocol,),
        {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s},
    )


def head_bytes(max_header_bytes: int) -> int:
    """The most h11 buffers of one request head (`h11_max_incomplete_event_size`); above it the
    request is a 400."""
    return max_header_bytes * HEAD_BYTES_PER_FIELD


class HeaderLimits:
    """ASGI guard: 431 when a request has more than `max_headers` fields or one longer than
    `max_header_bytes` (name and value)."""

    def __init__(self, app: Any, max_headers: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_headers = max_headers
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            problem = self._problem(scope["headers"])
            if problem:
                await _refuse(send, problem)
                return
        await self.app(scope, receive, send)

    def _problem(self, headers: list[tuple[bytes, bytes]]) -> str:
        if len(headers) > self.max_headers:
            return f"at most {self.max_headers} header fields are accepted"
        if any(len(name) + len(value) > self.max_header_bytes for name, value in headers):
            return f"a header field may be at most {self.max_header_bytes} bytes"
        return ""


async def _refuse(send: Any, message: str) -> None:
    body = orjson.dumps({"data": None, "error": message})
    headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 431, "headers": headers})
    await send({"type": "http.response.body", "body": body})
