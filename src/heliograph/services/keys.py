"""Organizations and API keys: create, list, revoke, and verify with an in-memory TTL cache so a
warm gateway request never touches the app DB."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb import repository
from heliograph.appdb.models import ApiKey
from heliograph.domain.keys import Identity, bearer_token, display_prefix, generate_key, hash_key

NEGATIVE_TTL_S = 5.0
MAX_CACHED_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class CreatedKey:
    organization_id: str
    key_id: str
    api_key: str


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class KeyService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def create_organization(self, name: str) -> CreatedKey:
        """A new organization with its first API key; the key is returned once and never again."""
        org_id = str(uuid.uuid4())
        with self._sessions.begin() as session:
            repository.add_organization(session, org_id, name, datetime.now(UTC))
        return self.create_key(org_id, "default")

    def create_key(self, org_id: str, name: str) -> CreatedKey:
        key = generate_key()
        record = ApiKey(
            id=str(uuid.uuid4()),
            organization_id=org_id,
            api_key_hash=hash_key(key),
            api_key_name=name,
            key_prefix=display_prefix(key),
            created_at=datetime.now(UTC),
        )
        with self._sessions.begin() as session:
            if repository.get_organization(session, org_id) is None:
                raise LookupError(f"no organization {org_id}")
            repository.add_api_key(session, record)
        return CreatedKey(org_id, record.id, key)

    def list_keys(self, org_id: str) -> list[KeyInfo]:
        with self._sessions() as session:
            return [
                KeyInfo(k.id, k.api_key_name, k.key_prefix, k.created_at, k.revoked_at)
                for k in repository.list_api_keys(session, org_id)
            ]

    def revoke_key(self, org_id: str, key_id: str) -> bool:
        with self._sessions.begin() as session:
            return repository.revoke_api_key(session, org_id, key_id, datetime.now(UTC))

    def list_organizations(self) -> list[tuple[str, str]]:
        with self._sessions() as session:
            return [(o.id, o.name) for o in repository.list_organizations(session)]

    def lookup(self, key: str) -> Identity | None:
        with self._sessions() as session:
            record = repository.find_active_key(session, hash_key(key))
            return None if record is None else Identity(record.organization_id, record.id)


class CachedKeyVerifier:
    """Verifies `Bearer <key>` header values; answers from memory for `ttl_s` after a lookup."""

    def __init__(self, keys: KeyService, ttl_s: float) -> None:
        self._keys = keys
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[Identity | None, float]] = {}

    async def verify(self, header_value: str | None) -> Identity | None:
        key = bearer_token(header_value)
        if key is None:
            return None
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        identity = await asyncio.to_thread(self._keys.lookup, key)
        if len(self._cache) >= MAX_CACHED_KEYS:
            self._cache.clear()
        self._cache[key] = (identity, now + (self._ttl_s if identity else NEGATIVE_TTL_S))
        return identity

    def forget(self) -> None:
        self._cache.clear()
