"""Repository functions for webhooks (`webhooks`) and their delivery queue and log
(`webhook_deliveries`). Functions an organization's caller reaches take its id, so no query
reaches another organization's rows; the delivery worker's functions act on deliveries by id."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from heliograph.appdb.models import Webhook, WebhookDelivery
from heliograph.appdb.repository import rows_changed

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def list_webhooks(session: Session, org_id: str) -> list[Webhook]:
    statement = select(Webhook).where(Webhook.organization_id == org_id)
    return list(session.scalars(statement.order_by(Webhook.created_at, Webhook.id)))


def count_webhooks(session: Session, org_id: str) -> int:
    statement = select(func.count()).select_from(Webhook)
    return int(session.scalar(statement.where(Webhook.organization_id == org_id)) or 0)


def get_webhook(session: Session, org_id: str, webhook_id: str) -> Webhook | None:
    """The organization's webhook `webhook_id`; None for another organization's."""
    webhook = session.get(Webhook, webhook_id)
    return webhook if webhook is not None and webhook.organization_id == org_id else None


def webhooks_by_id(session: Session, webhook_ids: Collection[str]) -> list[Webhook]:
    return list(session.scalars(select(Webhook).where(Webhook.id.in_(list(webhook_ids)))))


def webhooks_of(session: Session, org_ids: Collection[str]) -> list[Webhook]:
    """Every webhook of these organizations, in one read."""
    statement = select(Webhook).where(Webhook.organization_id.in_(list(org_ids)))
    return list(session.scalars(statement))


def all_webhooks_for_update(session: Session) -> list[Webhook]:
    """Every organization's webhooks, locked until the transaction ends (a key rotation)."""
    return list(session.scalars(select(Webhook).with_for_update()))


def add_webhook(session: Session, webhook: Webhook) -> None:
    session.add(webhook)


def remove_webhook(session: Session, webhook: Webhook) -> None:
    # Its deliveries first: SQLite and PostgreSQL cascade too, but the ORM would not wait.
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id))
    session.delete(webhook)


def enqueue(session: Session, deliveries: Sequence[dict[str, Any]]) -> None:
    """Insert deliveries, skipping any a webhook already owes for that request (a re-announced
    batch enqueues once)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(WebhookDelivery).on_conflict_do_nothing(), list(deliveries))


def list_deliveries(
    session: Session, org_id: str, webhook_id: str, limit: int
) -> list[WebhookDelivery]:
    """The webhook's newest deliveries first."""
    statement = select(WebhookDelivery).where(
        WebhookDelivery.organization_id == org_id, WebhookDelivery.webhook_id == webhook_id
    )
    ordered = statement.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
    return list(session.scalars(ordered.limit(limit)))


# The delivery worker's ---------------------------------------------------------------------


def _due(now: datetime) -> Any:
    return and_(
        WebhookDelivery.status == PENDING,
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now),
    )


def webhooks_with_due(session: Session, now: datetime, limit: int) -> list[str]:
    """Webhooks owed a delivery that is due and not leased."""
    statement = select(WebhookDelivery.webhook_id).where(_due(now)).distinct().limit(limit)
    return list(session.scalars(statement))


def due_deliveries(session: Session, webhook_id: str, now: datetime, limit: int) -> list[str]:
    """Ids of the webhook's due deliveries, longest due first."""
    statement = select(WebhookDelivery.id).where(
        WebhookDelivery.webhook_id == webhook_id, _due(now)
    )
    return list(session.scalars(statement.order_by(WebhookDelivery.next_attempt_at).limit(limit)))


def claim(session: Session, delivery_ids: list[str], now: datetime, until: datetime) -> list[str]:
    """Lease those of the deliveries still due to this process until `until`, which names the
    lease (the caller makes it unique to itself); the ids it got. A delivery another process
    leased meanwhile is left alone."""
    leased = WebhookDelivery.id.in_(delivery_ids)
    session.execute(update(WebhookDelivery).where(leased, _due(now)).values(leased_until=until))
    taken = select(WebhookDelivery.id).where(leased, WebhookDelivery.leased_until == until)
    return list(session.scalars(taken))


def deliveries_by_id(session: Session, delivery_ids: Collection[str]) -> list[WebhookDelivery]:
    statement = select(WebhookDelivery).where(WebhookDelivery.id.in_(list(delivery_ids)))
    return list(session.scalars(statement))


def finish_attempts(session: Session, outcomes: list[dict[str, Any]]) -> None:
    """Record attempts' outcomes (each a row's `id` and new columns, the same columns for
    all) and let their leases go, in one statement run for every row."""
    if outcomes:
        session.execute(
            update(WebhookDelivery), [{**row, "leased_until": None} for row in outcomes]
        )


def release(session: Session, delivery_ids: Collection[str]) -> None:
    """Let leases go unfinished (at shutdown), so the next start tries them at once."""
    statement = update(WebhookDelivery).where(
        WebhookDelivery.id.in_(list(delivery_ids)), WebhookDelivery.status == PENDING
    )
    session.execute(statement.values(leased_until=None))


def prune_settled(session: Session, before: datetime, limit: int) -> int:
    """Delete up to `limit` delivered or failed deliveries enqueued before `before` (pending
    ones are kept whatever their age); the number deleted."""
    old = select(WebhookDelivery.id).where(
        WebhookDelivery.status != PENDING, WebhookDelivery.created_at < before
    )
    statement = delete(WebhookDelivery).where(WebhookDelivery.id.in_(old.limit(limit)))
    return rows_changed(session.execute(statement))
