"""Repository functions for alert rules (`alerts`) and their history (`alert_history`). Every
function a caller reaches with an id takes the organization too; a rule's state changes only by
a compare-and-set, so two processes evaluating the same rule never both see it change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from heliograph.appdb.models import Alert, AlertEvent
from heliograph.appdb.repository import rows_changed


def list_alerts(session: Session, org_id: str) -> list[Alert]:
    statement = select(Alert).where(Alert.organization_id == org_id)
    return list(session.scalars(statement.order_by(Alert.created_at, Alert.id)))


def count_alerts(session: Session, org_id: str) -> int:
    statement = select(func.count()).where(Alert.organization_id == org_id)
    return int(session.scalar(statement.select_from(Alert)) or 0)


def get_alert(session: Session, org_id: str, alert_id: str) -> Alert | None:
    """The organization's rule `alert_id`; None for another organization's."""
    alert = session.get(Alert, alert_id)
    return alert if alert is not None and alert.organization_id == org_id else None


def enabled_alerts(session: Session) -> list[Alert]:
    """Every organization's enabled rules, for the evaluator."""
    statement = select(Alert).where(Alert.enabled.is_(True))
    return list(session.scalars(statement.order_by(Alert.organization_id, Alert.id)))


def add_alert(session: Session, alert: Alert) -> Alert:
    session.add(alert)
    return alert


def remove_alert(session: Session, alert: Alert) -> None:
    session.delete(alert)


def change_state(
    session: Session, alert_id: str, was: str, now_state: str, value: float | None, at: datetime
) -> bool:
    """Move an enabled rule from `was` to `now_state`; whether this call moved it (another
    process may have first)."""
    statement = (
        update(Alert)
        .where(Alert.id == alert_id, Alert.state == was, Alert.enabled.is_(True))
        .values(state=now_state, state_changed_at=at, last_value=value, last_evaluated_at=at)
    )
    return rows_changed(session.execute(statement)) > 0


def note_reading(session: Session, alert_id: str, value: float | None, at: datetime) -> None:
    statement = (
        update(Alert).where(Alert.id == alert_id).values(last_value=value, last_evaluated_at=at)
    )
    session.execute(statement)


def add_event(session: Session, event: AlertEvent) -> AlertEvent:
    session.add(event)
    return event


def set_notifications(session: Session, event_id: str, notifications: str) -> None:
    statement = update(AlertEvent).where(AlertEvent.id == event_id)
    session.execute(statement.values(notifications=notifications))


def list_events(session: Session, org_id: str, alert_id: str, limit: int) -> list[AlertEvent]:
    """The rule's history, newest first."""
    statement = select(AlertEvent).where(
        AlertEvent.organization_id == org_id, AlertEvent.alert_id == alert_id
    )
    newest = statement.order_by(AlertEvent.created_at.desc(), AlertEvent.id.desc())
    return list(session.scalars(newest.limit(limit)))
