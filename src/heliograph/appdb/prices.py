"""Small query functions over organizations' price overrides; callers own the session, and every
statement names the organization."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from heliograph.appdb.models import OrgPriceOverride


def list_overrides(session: Session, org_id: str) -> list[OrgPriceOverride]:
    statement = (
        select(OrgPriceOverride)
        .where(OrgPriceOverride.organization_id == org_id)
        .order_by(OrgPriceOverride.provider, OrgPriceOverride.model)
    )
    return list(session.scalars(statement))


def get_override(session: Session, org_id: str, override_id: str) -> OrgPriceOverride | None:
    statement = select(OrgPriceOverride).where(
        OrgPriceOverride.organization_id == org_id, OrgPriceOverride.id == override_id
    )
    return session.scalars(statement).first()


def find_override(
    session: Session, org_id: str, provider: str, model: str
) -> OrgPriceOverride | None:
    statement = select(OrgPriceOverride).where(
        OrgPriceOverride.organization_id == org_id,
        OrgPriceOverride.provider == provider,
        OrgPriceOverride.model == model,
    )
    return session.scalars(statement).first()


def count_overrides(session: Session, org_id: str) -> int:
    statement = select(func.count()).where(OrgPriceOverride.organization_id == org_id)
    return int(session.scalar(statement) or 0)
