"""Organizations and API keys: create, list, revoke, and the lookups `CachedKeyVerifier`
(`services/key_cache.py`) answers from memory with, so a warm request never touches the app DB."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb import repository
from heliograph.appdb.models import ApiKey
from heliograph.domain.keys import Identity, display_prefix, generate_key, hash_key
from heliograph.services.key_cache import CachedKeyVerifier as CachedKeyVerifier


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
            return None if record is None else _identity(record)

    def active(self, key_hashes: Sequence[str]) -> dict[str, Identity]:
        """The identities behind those of `key_hashes` that are still active, by hash."""
        with self._sessions() as session:
            return {
                record.api_key_hash: _identity(record)
                for record in repository.find_active_keys(session, list(key_hashes))
            }


def _identity(record: ApiKey) -> Identity:
    return Identity(record.organization_id, record.id, record.key_permissions)
