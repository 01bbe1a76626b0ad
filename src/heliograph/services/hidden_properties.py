"""Which custom property keys each organization has hidden from its property lists (Helicone's
`/v1/property/hide`, `/restore` and `/hidden/query`), kept in the app DB."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb.models import HiddenPropertyKey

MAX_KEY_CHARS = 500


class HiddenProperties:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def keys(self, organization_id: str) -> list[str]:
        statement = (
            select(HiddenPropertyKey.key)
            .where(HiddenPropertyKey.organization_id == organization_id)
            .order_by(HiddenPropertyKey.key)
        )
        with self._sessions() as session:
            return list(session.scalars(statement))

    def hide(self, organization_id: str, key: str) -> None:
        if not key or len(key) > MAX_KEY_CHARS:
            raise ValueError(f"a property key is 1 to {MAX_KEY_CHARS} characters")
        with self._sessions.begin() as session:
            if session.get(HiddenPropertyKey, (organization_id, key)) is None:
                hidden = HiddenPropertyKey(
                    organization_id=organization_id, key=key, hidden_at=datetime.now(UTC)
                )
                session.add(hidden)

    def restore(self, organization_id: str, key: str) -> bool:
        """Show a hidden key again; False when it was not hidden."""
        with self._sessions.begin() as session:
            hidden = session.get(HiddenPropertyKey, (organization_id, key))
            if hidden is None:
                return False
            session.delete(hidden)
            return True
