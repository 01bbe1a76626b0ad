"""The look-up importing keys needs: which of some key hashes are stored already, and in which
organization (revoked keys included, since a hash is unique across the table)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from heliograph.appdb.models import ApiKey


def stored_key_hashes(session: Session, key_hashes: list[str]) -> dict[str, str]:
    """The organization of each of `key_hashes` already stored, by hash."""
    statement = select(ApiKey.api_key_hash, ApiKey.organization_id).where(
        ApiKey.api_key_hash.in_(key_hashes)
    )
    return dict(session.execute(statement).tuples().all())
