"""Tables of the application database. Secrets are stored only as hashes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organization"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    """A Heliograph API key; `api_key_hash` is SHA-256 hex of "Bearer <key>" (Helicone's scheme)."""

    __tablename__ = "helicone_api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_name: Mapped[str] = mapped_column(String(200))
    key_prefix: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class OrgRateLimit(Base):
    """A rate-limit rule applied to an organization's requests that send no policy header."""

    __tablename__ = "org_rate_limits"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    quota: Mapped[float] = mapped_column(Float)
    window_seconds: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(16))
    segment: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class OrganizationSettings(Base):
    """Per-organization choices; for now which kinds of personal data are redacted from bodies."""

    __tablename__ = "organization_settings"

    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), primary_key=True
    )
    redaction_kinds: Mapped[str] = mapped_column(String(200), default="")


class HiddenPropertyKey(Base):
    """A custom property key an organization has hidden from its property lists."""

    __tablename__ = "hidden_property_keys"

    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(500), primary_key=True)
    hidden_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
