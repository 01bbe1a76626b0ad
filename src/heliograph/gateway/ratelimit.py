"""Rate limits on the hot path: pick the bucket a policy names, take from it (or check it), and
say so in `Helicone-RateLimit-*` headers. Anything that goes wrong fails open, as in Helicone."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from decimal import Decimal

from heliograph.domain.pricing import NANO_USD
from heliograph.domain.ratelimit import InvalidPolicy, RateLimitPolicy, bucket_key, parse_policy
from heliograph.domain.record import RequestRecord
from heliograph.gateway.ports import Buckets, RuleSource
from heliograph.providers.base import Provider
from heliograph.providers.costing import record_cost

log = logging.getLogger("heliograph.ratelimit")
LIMITED_BODY = {
    "message": "Helicone user was rate limit via Helicone-RateLimit-Policy header",
    "error": {"message": "rate limited by Helicone-RateLimit-Policy", "code": "rate_limited"},
}


@dataclass(slots=True)
class Limit:
    """The decision for one request, and what to charge after it for `cents` policies."""

    allowed: bool
    headers: dict[str, str] = field(default_factory=dict)
    policy: RateLimitPolicy | None = None
    bucket: str = ""


class RateLimiter:
    def __init__(self, buckets: Buckets, rules: RuleSource | None = None) -> None:
        self._buckets = buckets
        self._rules = rules

    async def check(
        self, organization_id: str, policy_text: str, user_id: str, properties: dict[str, str]
    ) -> Limit | None:
        """The header's policy or, without one, the organization's first applicable rule."""
        if not policy_text:
            return await self._check_rules(organization_id, user_id, properties)
        try:
            policy = parse_policy(policy_text)
        except InvalidPolicy as invalid:
            return _fail_open(policy_text, str(invalid))
        segment_value = _segment_value(policy, user_id, properties)
        if segment_value is None:
            return _fail_open(policy_text, f"no value for segment {policy.segment!r}")
        return await self._take(organization_id, policy, segment_value)

    async def _check_rules(
        self, organization_id: str, user_id: str, properties: dict[str, str]
    ) -> Limit | None:
        if self._rules is None:
            return None
        try:
            policies = await self._rules.policies(organization_id)
        except Exception as error:
            log.warning("rate-limit rules unavailable, failing open: %s", error)
            return None
        for policy in policies:
            segment_value = _segment_value(policy, user_id, properties)
            if segment_value is not None:
                return await self._take(organization_id, policy, segment_value)
        return None

    async def _take(
        self, organization_id: str, policy: RateLimitPolicy, segment_value: str
    ) -> Limit:
        bucket = bucket_key(organization_id, policy, segment_value)
        try:
            if policy.unit == "request":
                state = await self._buckets.take(bucket, policy.quota, policy.refill_per_s, 1)
            else:
                state = await self._buckets.check(bucket, policy.quota, policy.refill_per_s)
        except Exception as error:  # a limiter outage must not stop traffic
            log.warning("rate limiter unavailable, failing open: %s", error)
            return _fail_open(policy.header(), "rate limiter unavailable")
        headers = {
            "Helicone-RateLimit-Limit": f"{policy.quota:g}",
            "Helicone-RateLimit-Remaining": str(max(math.floor(state.remaining), 0)),
            "Helicone-RateLimit-Policy": policy.header(),
        }
        if state.reset_s > 0:
            headers["Helicone-RateLimit-Reset"] = str(state.reset_s)
        return Limit(state.allowed, headers, policy, bucket)

    async def charge(self, limit: Limit, provider: Provider, record: RequestRecord) -> None:
        """For `cents` policies: deduct the request's real cost once the response is complete."""
        policy = limit.policy
        if policy is None or policy.unit != "cents" or not limit.allowed:
            return
        cents = request_cost_usd(provider, record) * 100
        try:
            await self._buckets.charge(
                limit.bucket, policy.quota, policy.refill_per_s, float(cents)
            )
        except Exception as error:
            log.warning("could not charge %s cents to %s: %s", cents, limit.bucket, error)


def request_cost_usd(provider: Provider, record: RequestRecord) -> Decimal:
    """What the request cost, priced as its stored row will be (`providers/costing.py`)."""
    return Decimal(record_cost(record, provider).price.cost_nano_usd) / NANO_USD


def _segment_value(policy: RateLimitPolicy, user_id: str, properties: dict[str, str]) -> str | None:
    if policy.segment is None:
        return ""
    if policy.segment == "user":
        return user_id or None
    return properties.get(policy.segment.lower())


def _fail_open(policy_text: str, reason: str) -> Limit:
    headers = {"Helicone-RateLimit-Policy": policy_text, "Helicone-RateLimit-Warning": reason}
    return Limit(True, headers)
