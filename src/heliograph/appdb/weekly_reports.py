"""Which organizations are due a weekly report, and claiming one's week before it is sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from heliograph.appdb.models import Organization, WeeklyReportSent
from heliograph.appdb.repository import rows_changed


def due(db: Session, sent_before: datetime) -> list[tuple[str, str, datetime | None]]:
    """(id, name, last sent) of every organization not sent a report since `sent_before`."""
    rows = db.execute(
        select(Organization.id, Organization.name, WeeklyReportSent.sent_at)
        .outerjoin(WeeklyReportSent, WeeklyReportSent.organization_id == Organization.id)
        .where((WeeklyReportSent.sent_at.is_(None)) | (WeeklyReportSent.sent_at < sent_before))
        .order_by(Organization.created_at)
    )
    return [(row[0], row[1], row[2]) for row in rows]


def claim(db: Session, organization_id: str, last_sent: datetime | None, now: datetime) -> bool:
    """Mark the organization's report sent at `now`, unless another process did first."""
    if last_sent is None:
        try:
            with db.begin_nested():
                db.execute(
                    insert(WeeklyReportSent).values(organization_id=organization_id, sent_at=now)
                )
        except IntegrityError:
            return False
        return True
    changed = db.execute(
        update(WeeklyReportSent)
        .where(WeeklyReportSent.organization_id == organization_id)
        .where(WeeklyReportSent.sent_at == last_sent)
        .values(sent_at=now)
    )
    return rows_changed(changed) > 0
