"""Small query functions over organizations and API keys; callers own the session."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from heliograph.appdb.models import ApiKey, Organization, OrgRateLimit


def add_organization(session: Session, org_id: str, name: str, now: datetime) -> Organization:
    organization = Organization(id=org_id, name=name, created_at=now)
    session.add(organization)
    return organization


def rows_changed(result: object) -> int:
    """Rows an UPDATE or DELETE touched (SQLAlchemy types `execute` without `rowcount`)."""
    return int(getattr(result, "rowcount", 0) or 0)


def hold_organization(session: Session, org_id: str) -> None:
    """Serialise the rest of this transaction with every other that holds the organization, so
    a count checked against a cap stays true until the commit: a no-op update locks its row on
    PostgreSQL and takes the write lock on SQLite (whose transactions begin at their first write,
    so a count read first would not be protected)."""
    unchanged = update(Organization).where(Organization.id == org_id)
    session.execute(unchanged.values(name=Organization.name))


def get_organization(session: Session, org_id: str) -> Organization | None:
    return session.get(Organization, org_id)


def list_organizations(session: Session) -> list[Organization]:
    return list(session.scalars(select(Organization).order_by(Organization.created_at)))


def add_api_key(session: Session, key: ApiKey) -> ApiKey:
    session.add(key)
    return key


def find_active_key(session: Session, key_hash: str) -> ApiKey | None:
    statement = select(ApiKey).where(ApiKey.api_key_hash == key_hash, ApiKey.revoked_at.is_(None))
    return session.scalars(statement).first()


def find_active_keys(session: Session, key_hashes: list[str]) -> list[ApiKey]:
    statement = select(ApiKey).where(
        ApiKey.api_key_hash.in_(key_hashes), ApiKey.revoked_at.is_(None)
    )
    return list(session.scalars(statement))


def list_api_keys(session: Session, org_id: str, active_only: bool = False) -> list[ApiKey]:
    statement = select(ApiKey).where(ApiKey.organization_id == org_id)
    if active_only:
        statement = statement.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(statement.order_by(ApiKey.created_at, ApiKey.id)))


def get_active_key(session: Session, org_id: str, key_id: str) -> ApiKey | None:
    """The organization's key `key_id`, unless it was revoked (or is another organization's)."""
    key = session.get(ApiKey, key_id)
    if key is None or key.organization_id != org_id or key.revoked_at is not None:
        return None
    return key


def revoke_api_key(session: Session, org_id: str, key_id: str, now: datetime) -> bool:
    key = get_active_key(session, org_id, key_id)
    if key is None:
        return False
    key.revoked_at = now
    return True


def touch_api_keys(session: Session, used: Mapping[str, datetime]) -> None:
    """Set `last_used_at` of the keys in `used` (by id) unless a later use is recorded: one
    UPDATE, executed for the whole batch, in id order (two processes lock rows alike)."""
    used_at = bindparam("used_at", type_=ApiKey.last_used_at.type)
    statement = (
        update(ApiKey)
        .where(
            ApiKey.id == bindparam("key_id"),
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < used_at),
        )
        .values(last_used_at=used_at)
    )
    rows = [{"key_id": key_id, "used_at": when} for key_id, when in sorted(used.items())]
    # On the connection: a Core executemany, where the ORM would want primary keys only.
    session.connection().execute(statement, rows)


def add_rate_limit(session: Session, rule: OrgRateLimit) -> OrgRateLimit:
    session.add(rule)
    return rule


def list_rate_limits(session: Session, org_id: str) -> list[OrgRateLimit]:
    statement = (
        select(OrgRateLimit)
        .where(OrgRateLimit.organization_id == org_id, OrgRateLimit.deleted_at.is_(None))
        .order_by(OrgRateLimit.created_at)
    )
    return list(session.scalars(statement))


def get_rate_limit(session: Session, org_id: str, rule_id: str) -> OrgRateLimit | None:
    rule = session.get(OrgRateLimit, rule_id)
    if rule is None or rule.organization_id != org_id or rule.deleted_at is not None:
        return None
    return rule
