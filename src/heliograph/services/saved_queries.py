"""The SQL console's saved queries: an organization's queries kept under a name (Helicone's HQL
saved queries). A query is checked by the console's gate when saved, so a saved query is one the
console would run; each organization keeps at most `MAX_SAVED_QUERIES`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb import saved_queries as repository
from heliograph.appdb.models import SavedQuery
from heliograph.domain.errors import InvalidInput
from heliograph.domain.sql_console import checked_select
from heliograph.services.audit import SYSTEM, Actor, AuditLog

MAX_SAVED_QUERIES = 500
MAX_NAME_CHARS = 200
MAX_SQL_BYTES = 64 * 1024
MAX_BULK_IDS = MAX_SAVED_QUERIES


class TooManySavedQueries(InvalidInput):
    status = 409
    code = "limit_reached"


@dataclass(frozen=True, slots=True)
class SavedQueryInfo:
    id: str
    organization_id: str
    name: str
    sql: str
    created_at: datetime
    updated_at: datetime


class SavedQueryService:
    def __init__(self, sessions: sessionmaker[Session], audit: AuditLog) -> None:
        self._sessions = sessions
        self._audit = audit

    def list_queries(self, org_id: str) -> list[SavedQueryInfo]:
        with self._sessions() as session:
            return [_info(q) for q in repository.list_saved_queries(session, org_id)]

    def get(self, org_id: str, query_id: str) -> SavedQueryInfo | None:
        with self._sessions() as session:
            query = repository.get_saved_query(session, org_id, query_id)
            return None if query is None else _info(query)

    def create(self, org_id: str, name: str, sql: str, actor: Actor = SYSTEM) -> SavedQueryInfo:
        name, sql = _checked(name, sql)
        now = datetime.now(UTC)
        query = SavedQuery(
            id=str(uuid.uuid4()),
            organization_id=org_id,
            name=name,
            sql=sql,
            created_by=actor.user_id,
            created_at=now,
            updated_at=now,
        )
        with self._sessions.begin() as session:
            if repository.count_saved_queries(session, org_id) >= MAX_SAVED_QUERIES:
                raise TooManySavedQueries(
                    f"an organization keeps at most {MAX_SAVED_QUERIES} saved queries"
                )
            repository.add_saved_query(session, query)
            self._record(actor, "saved_query.create", org_id, query.id, name, session)
            return _info(query)

    def update(
        self, org_id: str, query_id: str, name: str, sql: str, actor: Actor = SYSTEM
    ) -> SavedQueryInfo | None:
        """The changed query; None when the organization has no query `query_id`."""
        name, sql = _checked(name, sql)
        with self._sessions.begin() as session:
            query = repository.get_saved_query(session, org_id, query_id)
            if query is None:
                return None
            query.name, query.sql, query.updated_at = name, sql, datetime.now(UTC)
            self._record(actor, "saved_query.update", org_id, query_id, name, session)
            return _info(query)

    def delete(self, org_id: str, query_ids: list[str], actor: Actor = SYSTEM) -> int:
        """Delete those of `query_ids` the organization has; how many were deleted."""
        if len(query_ids) > MAX_BULK_IDS:
            raise InvalidInput(f"delete at most {MAX_BULK_IDS} saved queries at once")
        with self._sessions.begin() as session:
            deleted = repository.saved_queries_among(session, org_id, query_ids)
            for query in deleted:
                repository.remove_saved_query(session, query)
                self._record(actor, "saved_query.delete", org_id, query.id, query.name, session)
            return len(deleted)

    def _record(
        self, actor: Actor, action: str, org_id: str, query_id: str, name: str, session: Session
    ) -> None:
        target = ("saved_query", query_id)
        self._audit.record(actor, action, org_id, target, {"name": name}, session=session)


def _checked(name: str, sql: str) -> tuple[str, str]:
    """The name stripped and the SQL as given, once both are within their limits and the
    console's gate accepts the SQL (`RejectedQuery`, a 400, otherwise)."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_CHARS or not name.isprintable():
        raise InvalidInput(f"name must be 1 to {MAX_NAME_CHARS} printable characters")
    if not sql.strip():
        raise InvalidInput("sql cannot be blank")
    if len(sql.encode("utf-8", "surrogatepass")) > MAX_SQL_BYTES:
        raise InvalidInput(f"sql is limited to {MAX_SQL_BYTES // 1024} KB")
    checked_select(sql)
    return name, sql


def _info(query: SavedQuery) -> SavedQueryInfo:
    return SavedQueryInfo(
        query.id, query.organization_id, query.name, query.sql, query.created_at, query.updated_at
    )
