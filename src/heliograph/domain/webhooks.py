"""Webhook rules, pure: what a webhook's configuration may hold, which stored requests it wants
(sample rate, property filters), the payload it is sent in Helicone's shape, its
`Helicone-Signature`, and when a failed delivery is tried again."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from heliograph.domain.errors import InvalidInput
from heliograph.domain.money import nano_to_usd
from heliograph.domain.record import MAX_PROPERTY_NAME_CHARS, MAX_PROPERTY_VALUE_CHARS
from heliograph.domain.request_row import RequestRow

MAX_WEBHOOKS = 20  # per organization
MAX_PROPERTY_FILTERS = 20
MAX_BODY_CHARS = 10 * 1024  # a body longer than this is replaced by `BODY_TOO_LARGE`, as Helicone
BODY_TOO_LARGE = (
    "Body too large for webhook, please fetch the full request and response from Heliograph"
)
VERSION = "2024-10-22"  # Helicone's webhook version string
MAX_RETRY_DELAY_S = 3600.0
SIGNATURE_HEADER = "Helicone-Signature"


class WebhookConfigError(InvalidInput):
    """A webhook's sample rate or property filters are out of bounds; the message says which."""


class TooManyWebhooks(InvalidInput):
    status = 409
    code = "limit_reached"


@dataclass(frozen=True, slots=True)
class PropertyFilter:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class WebhookRule:
    """What the enqueueing needs to know of one webhook (nothing secret)."""

    id: str
    organization_id: str
    sample_rate: float
    property_filters: tuple[PropertyFilter, ...]
    include_data: bool

    def wants(self, row: RequestRow) -> bool:
        """Whether this stored request is owed to the webhook: sampled, and every filter met."""
        return sampled(self.id, row["request_id"], self.sample_rate) and matches(
            self.property_filters, row["properties"]
        )


def checked_sample_rate(value: float) -> float:
    if not 0 <= value <= 100:
        raise WebhookConfigError("sampleRate must be between 0 and 100")
    return float(value)


def checked_filters(filters: Sequence[Mapping[str, str]]) -> tuple[PropertyFilter, ...]:
    """Property filters within the caps properties themselves have."""
    if len(filters) > MAX_PROPERTY_FILTERS:
        raise WebhookConfigError(f"a webhook holds at most {MAX_PROPERTY_FILTERS} propertyFilters")
    found = []
    for item in filters:
        key, value = item.get("key"), item.get("value")
        if not isinstance(key, str) or not isinstance(value, str):
            raise WebhookConfigError("each property filter must be {key, value} strings")
        if not 1 <= len(key) <= MAX_PROPERTY_NAME_CHARS:
            raise WebhookConfigError(
                f"a property filter's key must be 1 to {MAX_PROPERTY_NAME_CHARS} characters"
            )
        if len(value) > MAX_PROPERTY_VALUE_CHARS:
            raise WebhookConfigError(
                f"a property filter's value is at most {MAX_PROPERTY_VALUE_CHARS} characters"
            )
        found.append(PropertyFilter(key, value))
    return tuple(found)


def sampled(webhook_id: str, request_id: str, rate: float) -> bool:
    """Whether the request falls within the sample: decided by a hash of both ids, so a
    re-announced batch (a replay) makes the same choice, and webhooks sample independently."""
    if rate >= 100:
        return True
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"{webhook_id}/{request_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100 < rate


def matches(filters: Sequence[PropertyFilter], properties: Mapping[str, str]) -> bool:
    return all(properties.get(item.key) == item.value for item in filters)


def payload(row: RequestRow, bodies: tuple[str, str] | None) -> bytes:
    """Helicone's webhook payload for a stored request; `bodies` (request, response) are left
    out when the webhook does not include data."""
    document: dict[str, Any] = {"request_id": row["request_id"]}
    if bodies is not None:
        document["request_body"] = _within_limit(bodies[0])
        document["response_body"] = _within_limit(bodies[1])
    prompt, completion = row["prompt_tokens"] or 0, row["completion_tokens"] or 0
    total = (
        prompt
        + completion
        + row["prompt_cache_read_tokens"]
        + row["prompt_cache_write_tokens"]
        + row["reasoning_tokens"]
    )
    document |= {
        "user_id": row["user_id"],
        "model": row["model"],
        "provider": row["provider"],
        "metadata": {
            "cost": nano_to_usd(row["cost"]),
            "promptTokens": prompt,
            "completionTokens": completion,
            "totalTokens": total,
            "latencyMs": row["latency"],
        },
    }
    return orjson.dumps(document)


def trial_payload(request_id: str, include_data: bool) -> bytes:
    """What `POST /v1/webhooks/{id}/test` sends: a payload of the usual shape, marked a test."""
    document: dict[str, Any] = {"request_id": request_id, "test": True}
    if include_data:
        document["request_body"] = '{"model":"heliograph-test","messages":[]}'
        document["response_body"] = '{"choices":[]}'
    document |= {
        "user_id": "",
        "model": "heliograph-test",
        "provider": "heliograph",
        "metadata": {
            "cost": 0.0,
            "promptTokens": 0,
            "completionTokens": 0,
            "totalTokens": 0,
            "latencyMs": 0,
        },
    }
    return orjson.dumps(document)


def _within_limit(body: str) -> str:
    return BODY_TOO_LARGE if len(body) > MAX_BODY_CHARS else body


def signature(hmac_key: str, body: bytes) -> str:
    """The `Helicone-Signature` header: hex HMAC-SHA256 of the raw body, keyed (as Helicone
    does) by the key's text."""
    return hmac.new(hmac_key.encode(), body, hashlib.sha256).hexdigest()


def retry_delay_s(attempts: int, base_s: float, fraction: float) -> float:
    """How long after its `attempts`-th failure a delivery is tried again: `base_s` doubling
    each time, at most an hour, spread by ±10 % (`fraction` in [0, 1)) so deliveries that failed
    together do not all come back together."""
    delay = min(base_s * 2.0 ** max(attempts - 1, 0), MAX_RETRY_DELAY_S)
    return delay * (0.9 + 0.2 * fraction)
