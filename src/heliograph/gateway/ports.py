"""All the gateway knows of the outside: a key verifier and a sink for request records."""

from __future__ import annotations

from typing import Protocol

from heliograph.domain.keys import Identity
from heliograph.domain.record import RequestRecord


class KeyVerifier(Protocol):
    async def verify(self, header_value: str | None) -> Identity | None:
        """The identity behind a `Bearer <key>` header value, or None when it is not valid."""


class RecordSink(Protocol):
    def put(self, record: RequestRecord) -> None:
        """Take a record without waiting; it must never raise or block the request."""
