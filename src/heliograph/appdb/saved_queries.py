"""Repository functions for the SQL console's saved queries (`saved_queries`); every function
takes the organization, so no query can reach another organization's rows."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from heliograph.appdb.models import SavedQuery


def list_saved_queries(session: Session, org_id: str) -> list[SavedQuery]:
    statement = select(SavedQuery).where(SavedQuery.organization_id == org_id)
    return list(session.scalars(statement.order_by(SavedQuery.created_at, SavedQuery.id)))


def count_saved_queries(session: Session, org_id: str) -> int:
    statement = select(func.count()).where(SavedQuery.organization_id == org_id)
    return int(session.scalar(statement.select_from(SavedQuery)) or 0)


def get_saved_query(session: Session, org_id: str, query_id: str) -> SavedQuery | None:
    """The organization's query `query_id`; None for another organization's."""
    query = session.get(SavedQuery, query_id)
    return query if query is not None and query.organization_id == org_id else None


def saved_queries_among(session: Session, org_id: str, query_ids: list[str]) -> list[SavedQuery]:
    """The organization's queries among `query_ids`, in one read."""
    statement = select(SavedQuery).where(
        SavedQuery.organization_id == org_id, SavedQuery.id.in_(query_ids)
    )
    return list(session.scalars(statement))


def add_saved_query(session: Session, query: SavedQuery) -> SavedQuery:
    session.add(query)
    return query


def remove_saved_query(session: Session, query: SavedQuery) -> None:
    session.delete(query)
