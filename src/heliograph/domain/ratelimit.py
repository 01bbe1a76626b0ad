"""Helicone's rate-limit policies (`<quota>;w=<seconds>[;u=request|cents][;s=user|<property>]`)
and the token-bucket arithmetic every backend shares.

A bucket holds up to `quota` tokens and refills continuously at `quota / window` per second; a new
bucket starts full. `request` policies take one token before forwarding; `cents` policies only
need a positive balance before, and are charged the real cost after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from heliograph.domain.errors import InvalidInput

MIN_WINDOW_S = 60
MAX_WINDOW_S = 31_536_000
POLICY = re.compile(
    r"^\s*(?P<quota>\d+(?:\.\d+)?)\s*;\s*w\s*=\s*(?P<window>\d+)"
    r"(?:\s*;\s*u\s*=\s*(?P<unit>request|cents))?"
    r"(?:\s*;\s*s\s*=\s*(?P<segment>[A-Za-z0-9_-]+))?\s*$",
    re.IGNORECASE,
)


class InvalidPolicy(InvalidInput):
    """The policy text is not valid; Helicone fails open on these, and so do we."""


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    quota: float
    window_s: int
    unit: str = "request"  # request | cents
    segment: str | None = None  # None (organization-wide) | "user" | a property name

    @property
    def refill_per_s(self) -> float:
        return self.quota / self.window_s

    def header(self) -> str:
        """The normalised policy, echoed in `Helicone-RateLimit-Policy`."""
        quota = f"{self.quota:g}"
        text = f"{quota};w={self.window_s};u={self.unit}"
        return text + (f";s={self.segment}" if self.segment else "")


@dataclass(frozen=True, slots=True)
class BucketState:
    """The outcome of one bucket operation."""

    allowed: bool
    remaining: float
    capacity: float
    refill_per_s: float

    @property
    def reset_s(self) -> int:
        """Seconds until the bucket is full again."""
        missing = max(self.capacity - self.remaining, 0.0)
        return int(-(-missing // self.refill_per_s)) if missing > 0 else 0


def parse_policy(text: str) -> RateLimitPolicy:
    match = POLICY.match(text)
    if match is None:
        raise InvalidPolicy(f"not a rate-limit policy: {text!r}")
    quota = float(match["quota"])
    window = int(match["window"])
    if quota <= 0:
        raise InvalidPolicy("quota must be more than 0")
    if not MIN_WINDOW_S <= window <= MAX_WINDOW_S:
        raise InvalidPolicy(f"w must be between {MIN_WINDOW_S} and {MAX_WINDOW_S} seconds")
    segment = match["segment"]
    if segment is not None and segment.lower() == "user":
        segment = "user"
    return RateLimitPolicy(quota, window, (match["unit"] or "request").lower(), segment)


def bucket_key(organization_id: str, policy: RateLimitPolicy, segment_value: str) -> str:
    """Helicone's bucket naming: one bucket per organization, segment value and unit."""
    value = segment_value.replace(":", "_")[:256]
    if policy.segment is None:
        scope = "global:"
    elif policy.segment == "user":
        scope = f"user:{value}"
    else:
        scope = f"prop:{policy.segment.lower()}:{value}"
    return f"tb:{organization_id}:{scope}:{policy.unit}"


def refilled(tokens: float, elapsed_s: float, capacity: float, refill_per_s: float) -> float:
    return min(capacity, tokens + max(elapsed_s, 0.0) * refill_per_s)
