"""Organizations' price overrides: save (create or replace on the same provider and model),
change, delete and list them, each change in the audit log in the same transaction, and
`recompute`: re-price the stored requests of a time range at the current overrides and
genai-prices, rebuilding the hourly rollup's hours it touched. Rows are priced at the overrides
as they are when the row is built (`price_cache.py`); nothing stored changes until a recompute."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from heliograph.analytics.repricing import NewPrice, PricedRow, Repricing
from heliograph.analytics.scope import Scope
from heliograph.analytics.store import AnalyticsStore
from heliograph.appdb import prices as repository
from heliograph.appdb.lookups import price_override
from heliograph.appdb.models import OrgPriceOverride
from heliograph.domain.errors import InvalidInput
from heliograph.domain.pricing import (
    MAX_MODEL_CHARS,
    MAX_PROVIDER_CHARS,
    PriceOverride,
    PriceStatus,
)
from heliograph.domain.times import as_utc, stored_time
from heliograph.domain.usage import Usage
from heliograph.providers.base import Provider
from heliograph.providers.costing import price_of
from heliograph.services.audit import Actor, AuditLog
from heliograph.services.price_cache import PriceCache

log = logging.getLogger("heliograph.prices")
MAX_OVERRIDES = 1_000  # per organization
MAX_PER_MTOK = Decimal(1_000_000)
MAX_PER_REQUEST = Decimal(1_000)
MAX_PLACES = 12
MAX_RECOMPUTE_DAYS = 400
PRICE_FIELDS = ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok")


class InvalidPrice(InvalidInput):
    """A price override the caller sent is refused (the message says which field and why)."""


class PriceOverrideNotFound(InvalidInput):
    status = 404
    code = "not_found"


class TooManyOverrides(InvalidInput):
    status = 409
    code = "too_many_overrides"


class OverrideExists(InvalidInput):
    status = 409
    code = "conflict"


@dataclass(frozen=True, slots=True)
class OverrideInput:
    """A price override as the caller sends it, before `validated`."""

    provider: str
    model: str
    input_per_mtok: Any
    output_per_mtok: Any
    cache_read_per_mtok: Any = None
    cache_write_per_mtok: Any = None
    per_request: Any = 0

    def validated(self) -> PriceOverride:
        """The override this input describes; raises `InvalidPrice` with the reason otherwise."""
        cache_read, cache_write = self.cache_read_per_mtok, self.cache_write_per_mtok
        return PriceOverride(
            provider=_provider(self.provider),
            model=_model(self.model),
            input_per_mtok=_price("input_per_mtok", self.input_per_mtok, MAX_PER_MTOK),
            output_per_mtok=_price("output_per_mtok", self.output_per_mtok, MAX_PER_MTOK),
            cache_read_per_mtok=None
            if cache_read is None
            else _price("cache_read_per_mtok", cache_read, MAX_PER_MTOK),
            cache_write_per_mtok=None
            if cache_write is None
            else _price("cache_write_per_mtok", cache_write, MAX_PER_MTOK),
            per_request=_price("per_request", self.per_request or 0, MAX_PER_REQUEST),
        )


@dataclass(frozen=True, slots=True)
class StoredOverride:
    id: str
    value: PriceOverride
    created_at: datetime
    updated_at: datetime


def _provider(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_PROVIDER_CHARS or "\0" in value:
        raise InvalidPrice(f"provider must be text of at most {MAX_PROVIDER_CHARS} characters")
    return value.strip().upper()


def _model(value: object) -> str:
    if not isinstance(value, str) or "\0" in value:
        raise InvalidPrice("model must be text without NUL characters")
    model = value.strip().lower()
    if not 0 < len(model) <= MAX_MODEL_CHARS:
        raise InvalidPrice(f"model must be 1 to {MAX_MODEL_CHARS} characters")
    if "*" in model[:-1]:
        raise InvalidPrice("model may hold '*' only at its end (a prefix: 'gpt-4o*')")
    return model


def _price(field: str, value: object, most: Decimal) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise InvalidPrice(f"{field} must be a decimal number")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidPrice(f"{field} must be a decimal number") from None
    if not price.is_finite() or not 0 <= price <= most:
        raise InvalidPrice(f"{field} must be between 0 and {most:,}")
    price = price.normalize()
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_PLACES:
        raise InvalidPrice(f"{field} may have at most {MAX_PLACES} decimal places")
    return price


def decimal_text(value: Decimal) -> str:
    return format(value.normalize(), "f")


class PriceOverrideService:
    def __init__(self, sessions: sessionmaker[Session], audit: AuditLog, cache: PriceCache) -> None:
        self._sessions = sessions
        self._audit = audit
        self._cache = cache

    def list(self, org_id: str) -> list[StoredOverride]:
        with self._sessions() as session:
            return [_stored(row) for row in repository.list_overrides(session, org_id)]

    def save(self, org_id: str, given: OverrideInput, actor: Actor) -> tuple[StoredOverride, bool]:
        """Create the override, or replace the one on the same provider and model; whether it
        was created."""
        value = given.validated()
        try:
            saved = self._save(org_id, value, actor)
        except IntegrityError:  # saved by a concurrent request meanwhile: replace that one
            saved = self._save(org_id, value, actor)
        self._cache.forget(org_id)
        return saved

    def _save(self, org_id: str, value: PriceOverride, actor: Actor) -> tuple[StoredOverride, bool]:
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            row = repository.find_override(session, org_id, value.provider, value.model)
            created = row is None
            if row is None:
                if repository.count_overrides(session, org_id) >= MAX_OVERRIDES:
                    raise TooManyOverrides(f"an organization has at most {MAX_OVERRIDES:,}")
                row = OrgPriceOverride(id=str(uuid.uuid4()), organization_id=org_id, created_at=now)
                session.add(row)
            _fill(row, value, now)
            action = "price_override.create" if created else "price_override.replace"
            self._audit.record(
                actor, action, org_id, ("price_override", row.id), _details(value), session
            )
            return _stored(row), created

    def update(
        self, org_id: str, override_id: str, changes: Mapping[str, Any], actor: Actor
    ) -> StoredOverride:
        """Change the fields named in `changes` (a cache rate set to None: as input)."""
        now = datetime.now(UTC)
        try:
            with self._sessions.begin() as session:
                row = self._get(session, org_id, override_id)
                current = _value(row)
                fields = {**_input_fields(current), **changes}
                value = OverrideInput(**fields).validated()
                _fill(row, value, now)
                session.flush()  # a clash with another override's provider and model, here
                details = _details(value)
                self._audit.record(
                    actor,
                    "price_override.update",
                    org_id,
                    ("price_override", row.id),
                    details,
                    session,
                )
                stored = _stored(row)
        except IntegrityError:
            raise OverrideExists("another override has that provider and model") from None
        self._cache.forget(org_id)
        return stored

    def delete(self, org_id: str, override_id: str, actor: Actor) -> None:
        with self._sessions.begin() as session:
            row = self._get(session, org_id, override_id)
            details = _details(_value(row))
            session.delete(row)
            self._audit.record(
                actor,
                "price_override.delete",
                org_id,
                ("price_override", override_id),
                details,
                session,
            )
        self._cache.forget(org_id)

    def _get(self, session: Session, org_id: str, override_id: str) -> OrgPriceOverride:
        row = repository.get_override(session, org_id, override_id)
        if row is None:
            raise PriceOverrideNotFound(f"no price override {override_id}")
        return row


def _fill(row: OrgPriceOverride, value: PriceOverride, now: datetime) -> None:
    row.provider, row.model = value.provider, value.model
    row.input_per_mtok = decimal_text(value.input_per_mtok)
    row.output_per_mtok = decimal_text(value.output_per_mtok)
    row.cache_read_per_mtok = optional_text(value.cache_read_per_mtok)
    row.cache_write_per_mtok = optional_text(value.cache_write_per_mtok)
    row.per_request = decimal_text(value.per_request)
    row.updated_at = now


def optional_text(value: Decimal | None) -> str | None:
    """A price as text, or None (a cache rate left to the input rate)."""
    return None if value is None else decimal_text(value)


def _value(row: OrgPriceOverride) -> PriceOverride:
    return price_override(
        row.provider,
        row.model,
        row.input_per_mtok,
        row.output_per_mtok,
        row.cache_read_per_mtok,
        row.cache_write_per_mtok,
        row.per_request,
    )


def _stored(row: OrgPriceOverride) -> StoredOverride:
    return StoredOverride(row.id, _value(row), row.created_at, row.updated_at)


def _input_fields(value: PriceOverride) -> dict[str, Any]:
    return {
        "provider": value.provider,
        "model": value.model,
        "input_per_mtok": value.input_per_mtok,
        "output_per_mtok": value.output_per_mtok,
        "cache_read_per_mtok": value.cache_read_per_mtok,
        "cache_write_per_mtok": value.cache_write_per_mtok,
        "per_request": value.per_request,
    }


def _details(value: PriceOverride) -> dict[str, Any]:
    return {
        name: decimal_text(price) if isinstance(price, Decimal) else price
        for name, price in _input_fields(value).items()
    }


# Re-pricing stored requests.

MAX_REBUILD_ATTEMPTS = 3
# New prices are set by one mutation for this many rows (held in memory by the engine meanwhile,
# about 50 MB): a mutation rewrites the parts it touches, so fewer, larger ones cost less.
MUTATION_ROWS = 1_000_000
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RecomputeRange:
    """A range to re-price, checked as it is made (a refusal is an `InvalidPrice`, a 400, before
    anything is read); its times are in UTC and its model as overrides store it."""

    organization_id: str
    start: datetime
    end: datetime
    model: str = ""

    def __post_init__(self) -> None:
        start, end = as_utc(self.start), as_utc(self.end)
        if end <= start:
            raise InvalidPrice("end must be after start")
        if start < EARLIEST or end > LATEST:
            raise InvalidPrice("start and end must be between 1970 and 2200")
        if end - start > timedelta(days=MAX_RECOMPUTE_DAYS):
            raise InvalidPrice(f"a recompute covers at most {MAX_RECOMPUTE_DAYS} days")
        object.__setattr__(self, "start", start)  # frozen: normalized once, here
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "model", _model(self.model) if self.model else "")


@dataclass(frozen=True, slots=True)
class RecomputeResult:
    rows_checked: int = 0
    rows_repriced: int = 0
    rows_unknown: int = 0  # rows still without a price for their model
    hours_rebuilt: int = 0


class RecomputeBusy(InvalidInput):
    """The organization's previous recompute is still running."""

    status = 429
    code = "busy"


class Repricer:
    """Re-prices stored rows; one recompute at a time per organization, so one organization's
    long recompute never holds up another's (the engine runs their mutations in turn)."""

    def __init__(
        self, store: AnalyticsStore, by_name: Mapping[str, Provider], cache: PriceCache
    ) -> None:
        self._engine = store.engine
        self._repricing = Repricing(store.engine)
        self._by_name = by_name  # providers by the name rows store
        self._cache = cache
        self._running: set[str] = set()

    async def recompute(self, span: RecomputeRange) -> RecomputeResult:
        if span.organization_id in self._running:
            raise RecomputeBusy("a recompute of this organization is running; retry when it ends")
        self._running.add(span.organization_id)
        try:
            return await asyncio.to_thread(self._recompute, span)
        finally:
            self._running.discard(span.organization_id)

    def _recompute(self, span: RecomputeRange) -> RecomputeResult:
        scope = self._engine.scope(span.organization_id)
        self._cache.forget(span.organization_id)  # the overrides as they are now
        overrides = self._cache.for_organization(span.organization_id)
        start, end = stored_time(span.start), stored_time(span.end)
        checked = unknown = repriced = 0
        hours: set[str] = set()
        after: PricedRow | None = None
        with self._repricing.new_prices() as new_prices:
            while page := self._repricing.page(scope, start, end, span.model, after):
                updates = []
                for row in page:
                    new = self._new_price(row, overrides)
                    if new is not None:
                        updates.append(new)
                        hours.add(row.hour)
                    unknown += (new or row).status == PriceStatus.UNKNOWN_MODEL
                new_prices.add(updates)
                checked, repriced, after = checked + len(page), repriced + len(updates), page[-1]
                if new_prices.rows >= MUTATION_ROWS:
                    new_prices.apply(scope)
            new_prices.apply(scope)
        self._rebuild(scope, sorted(hours))
        return RecomputeResult(checked, repriced, unknown, len(hours))

    def _new_price(self, row: PricedRow, overrides: Sequence[PriceOverride]) -> NewPrice | None:
        """The row's price now, when it differs from the stored one. A row without usage keeps a
        cost a log message reported (nothing else could have priced it)."""
        usage = Usage(
            input_tokens=row.prompt_tokens,
            output_tokens=row.completion_tokens,
            cache_read_tokens=row.cache_read_tokens,
            cache_write_tokens=row.cache_write_tokens,
            reasoning_tokens=row.reasoning_tokens,
            audio_input_tokens=row.audio_input_tokens,
            audio_output_tokens=row.audio_output_tokens,
        )
        if not usage.is_known and row.cost > 0:
            return None
        provider = self._by_name.get(row.provider)
        price = price_of(usage, row.provider, row.model, provider, overrides)
        if price.cost_nano_usd == row.cost and price.status == row.status:
            return None
        return NewPrice(row.request_id, row.created_at, price.cost_nano_usd, price.status.value)

    def _rebuild(self, scope: Scope, hours: list[str]) -> None:
        """Rebuild the rollup's hours; again for any hour a concurrent insert made count twice."""
        for _ in range(MAX_REBUILD_ATTEMPTS):
            if not hours:
                return
            self._repricing.rebuild_rollup(scope, hours)
            hours = self._repricing.rollup_differs(scope, hours)
        if hours:
            log.warning("the rollup of %d hours still differs from their requests", len(hours))
