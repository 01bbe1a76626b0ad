"""All the gateway knows of the outside: a key verifier, a sink for records, token buckets,
rate-limit rules, price overrides, a response cache, the proxy keys that stand for stored
provider keys, the prompt versions chat-completion bodies name, and `GatewayPorts`, the ones it
is given as one value."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from heliograph.domain.keys import Identity
from heliograph.domain.pricing import PriceOverride
from heliograph.domain.ratelimit import BucketState, RateLimitPolicy
from heliograph.domain.record import RequestRecord
from heliograph.providers.base import Provider
from heliograph.telemetry import Telemetry


class KeyVerifier(Protocol):
    async def verify(self, header_value: str | None) -> Identity | None:
        """The identity behind a `Bearer <key>` header value, or None when it is not valid."""


class ProxyGrant(Protocol):
    """What a proxy key lets its caller do: act as `identity` (the proxy key's organization and
    id) on one provider, whose decrypted key the gateway sends upstream, within its limits."""

    @property
    def identity(self) -> Identity: ...

    @property
    def provider_name(self) -> str: ...  # `Provider.name`: "OPENAI", "ANTHROPIC", ...

    @property
    def provider_secret(self) -> str: ...

    @property
    def spend_limit_usd(self) -> float | None: ...

    @property
    def spend_period(self) -> str | None: ...  # "day" or "month"

    @property
    def request_limit(self) -> int | None: ...

    @property
    def request_window_s(self) -> int | None: ...


class ProxyKeyResolver(Protocol):
    async def resolve(self, key: str) -> ProxyGrant | None:
        """The grant behind a proxy key (`sk-helicone-proxy-...`), or None when it is not valid."""


class RecordSink(Protocol):
    def put(self, record: RequestRecord) -> None:
        """Take a record without waiting; it must never raise or block the request."""


class Buckets(Protocol):
    """Token buckets (in this process or shared in Redis); every call is atomic."""

    async def take(
        self, key: str, capacity: float, refill_per_s: float, amount: float
    ) -> BucketState: ...

    async def check(self, key: str, capacity: float, refill_per_s: float) -> BucketState: ...

    async def charge(
        self, key: str, capacity: float, refill_per_s: float, amount: float
    ) -> BucketState: ...

    async def close(self) -> None: ...


class RuleSource(Protocol):
    async def policies(self, organization_id: str) -> tuple[RateLimitPolicy, ...]:
        """The organization's rate-limit rules, in the order they are tried."""


class PriceSource(Protocol):
    async def overrides(self, organization_id: str) -> Sequence[PriceOverride]:
        """The organization's price overrides, which `cents` charges are priced at."""


class PromptTemplate(Protocol):
    """A prompt the caller's organization has: the version asked for (by id, or deployed to the
    environment asked for) with its body, or `version_id` None when there is no such version."""

    @property
    def version_id(self) -> str | None: ...

    @property
    def body(self) -> dict[str, Any]: ...  # shared: read it, never change it


class PromptSource(Protocol):
    async def template(
        self, organization_id: str, prompt_id: str, version_id: str | None, environment: str
    ) -> PromptTemplate | None:
        """The prompt's version, or None when the organization has no prompt `prompt_id`."""


class ProviderKeySource(Protocol):
    async def secret(self, organization_id: str, provider_name: str) -> str | None:
        """The organization's own stored key for a provider (`Provider.name`), or None."""


class ResponseCache(Protocol):
    async def get_many(self, keys: list[str]) -> list[bytes | None]: ...

    async def set(self, key: str, value: bytes, ttl_s: int) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class GatewayPorts:
    """What the gateway is given from outside: where keys, records and rate-limit rules are."""

    providers: dict[str, Provider]
    keys: KeyVerifier
    sink: RecordSink
    rules: RuleSource
    telemetry: Telemetry
    proxy_keys: ProxyKeyResolver | None = None
    prices: PriceSource | None = None
    prompts: PromptSource | None = None
    provider_keys: ProviderKeySource | None = None  # an organization's own keys, for /v1/...
