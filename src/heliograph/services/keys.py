"""Organizations and API keys: create, list, rename, revoke (each change in the audit log), and
the lookups `CachedKeyVerifier` (`services/key_cache.py`) answers from memory with, so a warm
request never touches the app DB; it also writes back, in batches, when keys were last used."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb import repository
from heliograph.appdb.models import ApiKey
from heliograph.domain.access import KeyPermissions
from heliograph.domain.keys import Identity, display_prefix, generate_key, hash_key
from heliograph.services.audit import SYSTEM, Actor, AuditLog
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
    permissions: KeyPermissions = KeyPermissions.READ_WRITE
    last_used_at: datetime | None = None
    user_id: str | None = None


class KeyService:
    def __init__(self, sessions: sessionmaker[Session], audit: AuditLog | None = None) -> None:
        self._sessions = sessions
        self._audit = audit or AuditLog(sessions)  # lines commit with the change they record

    def create_organization(self, name: str) -> CreatedKey:
        """A new organization with its first API key; the key is returned once and never again."""
        org_id = str(uuid.uuid4())
        with self._sessions.begin() as session:
            repository.add_organization(session, org_id, name, datetime.now(UTC))
        return self.create_key(org_id, "default")

    def create_key(
        self,
        org_id: str,
        name: str,
        permissions: KeyPermissions = KeyPermissions.READ_WRITE,
        user_id: str | None = None,
        actor: Actor = SYSTEM,
    ) -> CreatedKey:
        key = generate_key()
        record = ApiKey(
            id=str(uuid.uuid4()),
            organization_id=org_id,
            api_key_hash=hash_key(key),
            api_key_name=name,
            key_prefix=display_prefix(key),
            created_at=datetime.now(UTC),
            key_permissions=permissions.value,
            user_id=user_id,
        )
        with self._sessions.begin() as session:
            if repository.get_organization(session, org_id) is None:
                raise LookupError(f"no organization {org_id}")
            repository.add_api_key(session, record)
            details = {"name": name, "key_permissions": permissions.value}
            self._record(actor, "api_key.create", org_id, record.id, details, session)
        return CreatedKey(org_id, record.id, key)

    def list_keys(self, org_id: str, active_only: bool = False) -> list[KeyInfo]:
        """The organization's keys, oldest first (revoked ones too unless `active_only`)."""
        with self._sessions() as session:
            return [_info(k) for k in repository.list_api_keys(session, org_id, active_only)]

    def rename_key(
        self, org_id: str, key_id: str, name: str, actor: Actor = SYSTEM
    ) -> KeyInfo | None:
        """The renamed key; None when the organization has no active key `key_id`."""
        with self._sessions.begin() as session:
            key = repository.get_active_key(session, org_id, key_id)
            if key is None:
                return None
            details = {"from": key.api_key_name, "to": name}
            key.api_key_name = name
            self._record(actor, "api_key.rename", org_id, key_id, details, session)
            return _info(key)

    def revoke_key(self, org_id: str, key_id: str, actor: Actor = SYSTEM) -> bool:
        with self._sessions.begin() as session:
            if not repository.revoke_api_key(session, org_id, key_id, datetime.now(UTC)):
                return False
            self._record(actor, "api_key.delete", org_id, key_id, {}, session)
            return True

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

    def touch(self, used: Mapping[str, datetime]) -> None:
        """Record when keys (by id) were last used; a later recorded use is kept."""
        if used:
            with self._sessions.begin() as session:
                repository.touch_api_keys(session, used)

    def _record(
        self,
        actor: Actor,
        action: str,
        org_id: str,
        key_id: str,
        details: dict[str, str],
        session: Session,
    ) -> None:
        self._audit.record(actor, action, org_id, ("api_key", key_id), details, session=session)


def _identity(record: ApiKey) -> Identity:
    return Identity(record.organization_id, record.id, record.key_permissions)


def _info(record: ApiKey) -> KeyInfo:
    return KeyInfo(
        record.id,
        record.api_key_name,
        record.key_prefix,
        record.created_at,
        record.revoked_at,
        KeyPermissions(record.key_permissions),
        record.last_used_at,
        record.user_id,
    )
