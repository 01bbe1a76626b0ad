"""The audit log: who did what to an organization, when and from where. Lines are only ever
added (the database refuses updates and deletes); `details` never holds a secret."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb.models import AuditEntry, OrganizationMember, User

MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a person (by user id and e-mail) or a key (by id and name), from where."""

    user_id: str | None = None
    key_id: str | None = None
    label: str = ""
    address: str = ""
    user_agent: str = ""


SYSTEM = Actor(label="heliograph")  # the command line, on the server itself


@dataclass(frozen=True, slots=True)
class AuditQuery:
    organization_id: str
    action: str | None = None  # exact, or a prefix ending in "." ("api_key.")
    actor_user_id: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    before: str | None = None  # the `cursor` of the previous page: its last line's id


@dataclass(frozen=True, slots=True)
class AuditLine:
    id: str
    organization_id: str | None
    created_at: datetime
    actor_user_id: str | None
    actor_key_id: str | None
    actor: str
    action: str
    target_type: str
    target_id: str
    details: dict[str, Any] = field(default_factory=dict)
    address: str = ""
    user_agent: str = ""


class AuditLog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(
        self,
        actor: Actor,
        action: str,
        organization_id: str | None,
        target: tuple[str, str] = ("", ""),
        details: dict[str, Any] | None = None,
        session: Session | None = None,
    ) -> None:
        """Add one line; inside `session` when given, so it commits with the change it records."""
        entry = AuditEntry(
            id=str(uuid.uuid4()),
            organization_id=organization_id,
            created_at=datetime.now(UTC),
            actor_user_id=actor.user_id,
            actor_key_id=actor.key_id,
            actor=actor.label[:320],
            action=action,
            target_type=target[0],
            target_id=target[1][:255],
            details=orjson.dumps(details or {}).decode(),
            address=actor.address[:64],
            user_agent=actor.user_agent[:300],
        )
        if session is not None:
            session.add(entry)
            return
        with self._sessions.begin() as own:
            own.add(entry)

    def query(self, query: AuditQuery) -> list[AuditLine]:
        """Newest first; a page ends where `before` (a line id) was, for stable paging."""
        statement = select(AuditEntry).where(_concerns(query.organization_id))
        if query.action:
            if query.action.endswith("."):
                statement = statement.where(AuditEntry.action.startswith(query.action))
            else:
                statement = statement.where(AuditEntry.action == query.action)
        if query.actor_user_id:
            statement = statement.where(AuditEntry.actor_user_id == query.actor_user_id)
        if query.target_id:
            statement = statement.where(AuditEntry.target_id == query.target_id)
        if query.since is not None:
            statement = statement.where(AuditEntry.created_at >= query.since)
        if query.until is not None:
            statement = statement.where(AuditEntry.created_at < query.until)
        with self._sessions() as session:
            if query.before:
                visible = _concerns(query.organization_id) & (AuditEntry.id == query.before)
                last = session.scalar(select(AuditEntry).where(visible))
                if last is None:
                    return []
                statement = statement.where(
                    (AuditEntry.created_at < last.created_at)
                    | ((AuditEntry.created_at == last.created_at) & (AuditEntry.id < last.id))
                )
            statement = statement.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
            rows = session.scalars(statement.limit(min(max(query.limit, 1), MAX_PAGE)))
            return [_line(row) for row in rows]


def _concerns(organization_id: str) -> ColumnElement[bool]:
    """The organization's own lines, and the person-level lines (sign-ins, failed sign-ins,
    password changes) of its current members, which belong to no one organization."""
    members = select(OrganizationMember.user_id).where(
        OrganizationMember.organization_id == organization_id
    )
    emails = select(User.email).where(User.id.in_(members))
    personal = AuditEntry.organization_id.is_(None) & (
        AuditEntry.actor_user_id.in_(members)
        | ((AuditEntry.target_type == "user") & AuditEntry.target_id.in_(members))
        | ((AuditEntry.target_type == "email") & AuditEntry.target_id.in_(emails))
    )
    return (AuditEntry.organization_id == organization_id) | personal


def _line(row: AuditEntry) -> AuditLine:
    return AuditLine(
        id=row.id,
        organization_id=row.organization_id,
        created_at=row.created_at,
        actor_user_id=row.actor_user_id,
        actor_key_id=row.actor_key_id,
        actor=row.actor,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        details=orjson.loads(row.details),
        address=row.address,
        user_agent=row.user_agent,
    )
