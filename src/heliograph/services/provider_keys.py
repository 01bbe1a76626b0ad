"""Provider keys (an organization's secrets for OpenAI, Anthropic, ..., sealed by the vault) and
the proxy keys that stand for them: create, list, rename or replace, delete, revoke, and the
re-encryption of every secret under a new master key. A secret is never returned, logged or
audited: only its last four characters are shown."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb.models import ProviderKey, ProxyKey
from heliograph.domain.errors import InvalidInput
from heliograph.domain.keys import PROXY_KEY_PREFIX, generate_key, hash_key
from heliograph.providers.registry import BUILT_IN
from heliograph.services.audit import Actor, AuditLog
from heliograph.services.vault import Sealed, Vault

MAX_NAME_CHARS = 200
MAX_SECRET_CHARS = 4096
MAX_DOCUMENT_CHARS = 2 * MAX_SECRET_CHARS
# Providers whose key is a JSON document, by the `type` it must declare.
DOCUMENT_KEYS = {"VERTEX": "service_account"}
MIN_SECRET_CHARS = 8  # so the last four never show most of it
MAX_SPEND_USD = 1_000_000_000.0
MAX_REQUEST_LIMIT = 1_000_000_000
MAX_WINDOW_S = 31 * 86_400
SPEND_PERIODS = ("day", "month")
_PROVIDERS = {alias.lower(): p.name for p in BUILT_IN for alias in (p.name, p.prefix)}


class InvalidKeyInput(InvalidInput):
    code = "invalid_key"


class KeyNotFound(InvalidInput):
    status = 404
    code = "not_found"


@dataclass(frozen=True, slots=True)
class ProviderKeyInfo:
    id: str
    provider_name: str
    name: str
    preview: str  # "...abcd"
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ProxyLimits:
    spend_limit_usd: float | None = None
    spend_period: str | None = None
    request_limit: int | None = None
    request_window_s: int | None = None

    @property
    def empty(self) -> bool:
        return self.spend_limit_usd is None and self.request_limit is None


@dataclass(frozen=True, slots=True)
class ProxyKeyInfo:
    id: str
    name: str
    provider_key_id: str
    prefix: str
    limits: ProxyLimits
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class CreatedProxyKey:
    info: ProxyKeyInfo
    proxy_key: str  # shown once


def provider_name_of(text: str) -> str:
    """The registry's name for a provider given by name or route prefix ("openai", "OPENAI")."""
    name = _PROVIDERS.get(text.strip().lower())
    if name is None:
        known = ", ".join(sorted({p.prefix for p in BUILT_IN}))
        raise InvalidKeyInput(f"providerName must be one of {known}")
    return name


def checked_name(text: str, field: str) -> str:
    name = text.strip()
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise InvalidKeyInput(f"{field} must have 1 to {MAX_NAME_CHARS} printable characters")
    return name


def checked_secret(text: str, provider_name: str = "") -> str:
    if provider_name in DOCUMENT_KEYS:
        return _checked_document(text, provider_name)
    if not MIN_SECRET_CHARS <= len(text) <= MAX_SECRET_CHARS:
        raise InvalidKeyInput(
            f"providerKey must have {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} characters"
        )
    if not all(" " < char <= "~" for char in text):
        raise InvalidKeyInput("providerKey may hold only printable ASCII, without spaces")
    return text


def _checked_document(text: str, provider_name: str) -> str:
    """A key that is a JSON document (a Google service account's), checked for shape only."""
    if len(text) > MAX_DOCUMENT_CHARS:
        raise InvalidKeyInput(f"providerKey must have at most {MAX_DOCUMENT_CHARS} characters")
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        document = None
    if not isinstance(document, dict) or document.get("type") != DOCUMENT_KEYS[provider_name]:
        kind = DOCUMENT_KEYS[provider_name]
        raise InvalidKeyInput(f"a {provider_name} providerKey must be a {kind} key's JSON")
    return text


def checked_limits(limits: ProxyLimits) -> ProxyLimits:
    spend, period = limits.spend_limit_usd, limits.spend_period
    count, window = limits.request_limit, limits.request_window_s
    if spend is not None and not (math.isfinite(spend) and 0 < spend <= MAX_SPEND_USD):
        raise InvalidKeyInput(f"spendLimitUsd must be above 0 and at most {MAX_SPEND_USD:.0f}")
    if period is not None and (spend is None or period not in SPEND_PERIODS):
        raise InvalidKeyInput('spendPeriod must be "day" or "month", with spendLimitUsd')
    if count is not None and not 0 < count <= MAX_REQUEST_LIMIT:
        raise InvalidKeyInput(f"requestLimit must be between 1 and {MAX_REQUEST_LIMIT}")
    if window is not None and (count is None or not 0 < window <= MAX_WINDOW_S):
        raise InvalidKeyInput(
            f"requestWindowSeconds must be between 1 and {MAX_WINDOW_S}, with requestLimit"
        )
    return ProxyLimits(
        spend,
        None if spend is None else period or "month",
        count,
        None if count is None else window or 60,
    )


def generate_proxy_key() -> str:
    return generate_key(PROXY_KEY_PREFIX)


class ProviderKeyService:
    def __init__(self, sessions: sessionmaker[Session], vault: Vault, audit: AuditLog) -> None:
        self._sessions = sessions
        self._vault = vault
        self._audit = audit

    def create(
        self, organization_id: str, provider: str, secret: str, name: str, actor: Actor
    ) -> ProviderKeyInfo:
        provider_name = provider_name_of(provider)
        name = checked_name(name, "providerKeyName")
        secret = checked_secret(secret, provider_name)
        row_id, now = str(uuid.uuid4()), datetime.now(UTC)
        sealed = self._vault.seal(secret, organization_id, row_id)
        row = ProviderKey(
            id=row_id,
            organization_id=organization_id,
            provider_name=provider_name,
            provider_key_name=name,
            ciphertext=sealed.ciphertext,
            nonce=sealed.nonce,
            secret_key_id=sealed.key_id,
            last4=secret[-4:],
            created_at=now,
            updated_at=now,
        )
        with self._sessions.begin() as session:
            session.add(row)
            details = {"provider": provider_name, "name": name}
            target = ("provider_key", row_id)
            self._audit.record(
                actor, "provider_key.create", organization_id, target, details, session
            )
            return _provider_info(row)

    def list_keys(self, organization_id: str) -> list[ProviderKeyInfo]:
        statement = (
            select(ProviderKey)
            .where(ProviderKey.organization_id == organization_id, ProviderKey.deleted_at.is_(None))
            .order_by(ProviderKey.created_at)
        )
        with self._sessions() as session:
            return [_provider_info(row) for row in session.scalars(statement)]

    def get(self, organization_id: str, key_id: str) -> ProviderKeyInfo:
        with self._sessions() as session:
            return _provider_info(_live_provider_key(session, organization_id, key_id))

    def update(
        self,
        organization_id: str,
        key_id: str,
        name: str | None,
        secret: str | None,
        actor: Actor,
    ) -> ProviderKeyInfo:
        if name is None and secret is None:
            raise InvalidKeyInput("send providerKeyName, providerKey or both")
        name = None if name is None else checked_name(name, "providerKeyName")
        with self._sessions.begin() as session:
            row = _live_provider_key(session, organization_id, key_id)
            secret = None if secret is None else checked_secret(secret, row.provider_name)
            if name is not None:
                row.provider_key_name = name
            if secret is not None:
                _store(row, self._vault.seal(secret, organization_id, key_id))
                row.last4 = secret[-4:]
            row.updated_at = datetime.now(UTC)
            details = {"renamed": name is not None, "secret_replaced": secret is not None}
            target = ("provider_key", key_id)
            self._audit.record(
                actor, "provider_key.update", organization_id, target, details, session
            )
            return _provider_info(row)

    def delete(self, organization_id: str, key_id: str, actor: Actor) -> None:
        """Soft delete: the row stays (its proxy keys stop working), the secret is never used
        again."""
        with self._sessions.begin() as session:
            row = _live_provider_key(session, organization_id, key_id)
            row.deleted_at = datetime.now(UTC)
            target = ("provider_key", key_id)
            details = {"provider": row.provider_name, "name": row.provider_key_name}
            self._audit.record(
                actor, "provider_key.delete", organization_id, target, details, session
            )

    def create_proxy_key(
        self,
        organization_id: str,
        name: str,
        provider_key_id: str,
        limits: ProxyLimits,
        actor: Actor,
    ) -> CreatedProxyKey:
        name = checked_name(name, "proxyKeyName")
        limits = checked_limits(limits)
        key = generate_proxy_key()
        row = ProxyKey(
            id=str(uuid.uuid4()),
            organization_id=organization_id,
            provider_key_id=provider_key_id,
            proxy_key_name=name,
            proxy_key_hash=hash_key(key),
            key_prefix=key[: len(PROXY_KEY_PREFIX) + 7],
            spend_limit_usd=limits.spend_limit_usd,
            spend_period=limits.spend_period,
            request_limit=limits.request_limit,
            request_window_s=limits.request_window_s,
            created_at=datetime.now(UTC),
        )
        with self._sessions.begin() as session:
            _live_provider_key(session, organization_id, provider_key_id)
            session.add(row)
            details = {
                "name": name,
                "provider_key_id": provider_key_id,
                "limited": not limits.empty,
            }
            target = ("proxy_key", row.id)
            self._audit.record(actor, "proxy_key.create", organization_id, target, details, session)
            return CreatedProxyKey(_proxy_info(row), key)

    def list_proxy_keys(self, organization_id: str) -> list[ProxyKeyInfo]:
        statement = (
            select(ProxyKey)
            .where(ProxyKey.organization_id == organization_id)
            .order_by(ProxyKey.created_at)
        )
        with self._sessions() as session:
            return [_proxy_info(row) for row in session.scalars(statement)]

    def revoke_proxy_key(self, organization_id: str, key_id: str, actor: Actor) -> None:
        with self._sessions.begin() as session:
            row = session.get(ProxyKey, key_id)
            if row is None or row.organization_id != organization_id or row.revoked_at:
                raise KeyNotFound(f"no proxy key {key_id[:64]}")
            row.revoked_at = datetime.now(UTC)
            target = ("proxy_key", key_id)
            details = {"name": row.proxy_key_name}
            self._audit.record(actor, "proxy_key.delete", organization_id, target, details, session)


def _live_provider_key(session: Session, organization_id: str, key_id: str) -> ProviderKey:
    row = session.get(ProviderKey, key_id)
    if row is None or row.organization_id != organization_id or row.deleted_at is not None:
        raise KeyNotFound(f"no provider key {key_id[:64]}")
    return row


def _store(row: ProviderKey, sealed: Sealed) -> None:
    row.ciphertext, row.nonce, row.secret_key_id = sealed.ciphertext, sealed.nonce, sealed.key_id


def _provider_info(row: ProviderKey) -> ProviderKeyInfo:
    return ProviderKeyInfo(
        row.id,
        row.provider_name,
        row.provider_key_name,
        "..." + row.last4,
        row.created_at,
        row.updated_at,
    )


def _proxy_info(row: ProxyKey) -> ProxyKeyInfo:
    limits = ProxyLimits(
        row.spend_limit_usd, row.spend_period, row.request_limit, row.request_window_s
    )
    return ProxyKeyInfo(
        row.id,
        row.proxy_key_name,
        row.provider_key_id,
        row.key_prefix,
        limits,
        row.created_at,
        row.revoked_at,
    )
