"""The root of every error Heliograph raises on purpose.

    HeliographError
    └── InvalidInput            the caller sent something refused: a 4xx with `status` and `code`

Each module defines the subclasses it raises (a filter, a query, a header, a path…) next to the
rule it enforces; the edges (API and gateway) answer any `InvalidInput` with its own status,
code and message, so a new rule needs no new handler.
"""

from __future__ import annotations


class HeliographError(Exception):
    """Raised by Heliograph on purpose; anything else reaching an edge is a bug."""


class InvalidInput(HeliographError, ValueError):
    """The caller's input is refused; the message says what is wrong, written for the caller."""

    status: int = 400
    code: str = "invalid_request"
