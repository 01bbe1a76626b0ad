"""Helicone's retry options (`Helicone-Retry-*`): read once from the headers into a
`RetryPolicy`, which says how long to wait before each retry."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A generator of our own: the global one belongs to the application (and to tests' generators).
JITTER = random.Random()  # noqa: S311 - spreads work, guards nothing

MAX_RETRIES = 10


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 5
    factor: float = 2.0
    min_timeout_ms: int = 1000
    max_timeout_ms: int = 10000

    def delay_s(self, attempt: int, retry_after: str | None) -> float:
        """Backoff before retry number `attempt` (1-based): exponential with jitter, or the
        provider's `Retry-After`, never beyond `max_timeout_ms`."""
        ceiling = self.max_timeout_ms / 1000
        requested = _retry_after_s(retry_after)
        if requested is not None:
            return min(requested, ceiling)
        base = self.min_timeout_ms / 1000 * self.factor ** (attempt - 1)
        return min(base, ceiling) * JITTER.uniform(0.5, 1.0)


def parse_retry(
    enabled: bool, retries: str, factor: str, min_timeout: str, max_timeout: str
) -> RetryPolicy | None:
    """The policy when `enabled` (`Helicone-Retry-Enabled` is `true`; Helicone retried on any
    value), else None; a number that does not parse keeps its default."""
    if not enabled:
        return None
    defaults = RetryPolicy()
    return RetryPolicy(
        retries=min(_int(retries, defaults.retries), MAX_RETRIES),
        factor=_float(factor, defaults.factor),
        min_timeout_ms=_int(min_timeout, defaults.min_timeout_ms),
        max_timeout_ms=_int(max_timeout, defaults.max_timeout_ms),
    )


def _retry_after_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def _int(text: str, default: int) -> int:
    try:
        return max(int(text), 0) if text else default
    except ValueError:
        return default


def _float(text: str, default: float) -> float:
    try:
        return max(float(text), 1.0) if text else default
    except ValueError:
        return default
