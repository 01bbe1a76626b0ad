"""Rate limits on the hot path: pick the bucket a policy names, take from it (or check it), and
say so in `Helicone-RateLimit-*` headers; and a proxy key's own limits (requests per window, USD
per day or month) on buckets of its own. Costs are charged at the organization's price overrides.
Anything that goes wrong fails open, as in Helicone."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from heliograph.domain.pricing import NANO_USD, PriceOverride
from heliograph.domain.ratelimit import InvalidPolicy, RateLimitPolicy, bucket_key, parse_policy
from heliograph.domain.record import RequestRecord
from heliograph.gateway.ports import Buckets, PriceSource, ProxyGrant, RuleSource
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
    def __init__(
        self, buckets: Buckets, rules: RuleSource | None = None, prices: PriceSource | None = None
    ) -> None:
        self._buckets = buckets
        self._rules = rules
        self._prices = prices

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
        cents = await self._cost_usd(provider, record) * 100
        try:
            await self._buckets.charge(
                limit.bucket, policy.quota, policy.refill_per_s, float(cents)
            )
        except Exception as error:
            log.warning("could not charge %s cents to %s: %s", cents, limit.bucket, error)

    async def check_proxy(self, grant: ProxyGrant) -> str | None:
        """Why a proxy key's request is over its limits (the 429's message), else None. A
        request limit takes one token; a spend limit is checked here and charged after."""
        key_id = grant.identity.key_id
        try:
            if grant.request_limit is not None:
                limit, window = grant.request_limit, grant.request_window_s or 60
                bucket = f"proxy:{key_id}:requests"
                state = await self._buckets.take(bucket, limit, limit / window, 1)
                if not state.allowed:
                    return f"proxy key is over its request limit of {limit} per {window} s"
            if grant.spend_limit_usd is not None:
                capacity, refill = _spend_bucket(grant.spend_limit_usd, grant.spend_period)
                state = await self._buckets.check(f"proxy:{key_id}:spend", capacity, refill)
                if not state.allowed:
                    period = "monthly" if grant.spend_period == "month" else "daily"
                    spend = _usd(grant.spend_limit_usd)
                    return f"proxy key is over its {period} spend limit of {spend}"
        except Exception as error:
            log.warning("proxy key limits unavailable, failing open: %s", error)
        return None

    async def charge_proxy(
        self, grant: ProxyGrant, provider: Provider, record: RequestRecord
    ) -> None:
        """Deduct a proxy key's request's real cost from its spend bucket, once complete."""
        if grant.spend_limit_usd is None:
            return
        cents = float(await self._cost_usd(provider, record) * 100)
        capacity, refill = _spend_bucket(grant.spend_limit_usd, grant.spend_period)
        try:
            await self._buckets.charge(
                f"proxy:{grant.identity.key_id}:spend", capacity, refill, cents
            )
        except Exception as error:
            log.warning(
                "could not charge %s cents to proxy key %s: %s", cents, grant.identity.key_id, error
            )

    async def _cost_usd(self, provider: Provider, record: RequestRecord) -> Decimal:
        overrides: Sequence[PriceOverride] = ()
        if self._prices is not None:
            try:
                overrides = await self._prices.overrides(record.organization_id)
            except Exception as error:  # priced at genai-prices rather than not charged
                log.warning("price overrides unavailable: %s", error)
        return request_cost_usd(provider, record, overrides)


def _spend_bucket(limit_usd: float, period: str | None) -> tuple[float, float]:
    """A spend limit as a bucket: capacity in cents, refilled over a day or 30 days."""
    capacity = limit_usd * 100
    seconds = 30 * 86_400 if period == "month" else 86_400
    return capacity, capacity / seconds


def _usd(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 0.01 else f"${amount:.8f}".rstrip("0")


def request_cost_usd(
    provider: Provider, record: RequestRecord, overrides: Sequence[PriceOverride] = ()
) -> Decimal:
    """What the request cost, priced as its stored row will be (`providers/costing.py`)."""
    return Decimal(record_cost(record, provider, overrides).price.cost_nano_usd) / NANO_USD


def _segment_value(policy: RateLimitPolicy, user_id: str, properties: dict[str, str]) -> str | None:
    if policy.segment is None:
        return ""
    if policy.segment == "user":
        return user_id or None
    return properties.get(policy.segment.lower())


def _fail_open(policy_text: str, reason: str) -> Limit:
    headers = {"Helicone-RateLimit-Policy": policy_text, "Helicone-RateLimit-Warning": reason}
    return Limit(True, headers)
