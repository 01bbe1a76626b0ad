"""Tables of the application database. Secrets are stored only as hashes, or sealed by the
vault where they must be read back (provider keys, webhook HMAC keys, alert channels)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """A time kept in UTC and read back aware: SQLite stores no offset, so the naive values it
    returns are UTC, and an aware value is written in UTC so SQLite's text comparisons hold."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organization"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


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
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    key_permissions: Mapped[str] = mapped_column(String(2), default="rw")  # rw, r or w
    user_id: Mapped[str | None] = mapped_column(String(36), default=None)  # who made it
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


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
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


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
    hidden_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SavedQuery(Base):
    """A query of the SQL console an organization kept under a name."""

    __tablename__ = "saved_queries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    sql: Mapped[str] = mapped_column(Text())
    created_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OrgPriceOverride(Base):
    """An organization's own price for a model (and provider, or any: ""), used instead of
    genai-prices'. Prices are decimal text (USD per million tokens, USD per request), so they are
    kept exactly on both engines; `model` is lower case and may end in `*` (a prefix)."""

    __tablename__ = "price_overrides"
    __table_args__ = (UniqueConstraint("organization_id", "provider", "model"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(64), default="")
    model: Mapped[str] = mapped_column(String(256))
    input_per_mtok: Mapped[str] = mapped_column(String(40))
    output_per_mtok: Mapped[str] = mapped_column(String(40))
    cache_read_per_mtok: Mapped[str | None] = mapped_column(String(40), default=None)
    cache_write_per_mtok: Mapped[str | None] = mapped_column(String(40), default=None)
    per_request: Mapped[str] = mapped_column(String(40), default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class User(Base):
    """A person who signs in; `password_hash` is Argon2id (None for single-sign-on only)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower-cased
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    password_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class UserIdentity(Base):
    """A user's account at an OpenID Connect issuer."""

    __tablename__ = "user_identities"

    issuer: Mapped[str] = mapped_column(String(500), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LoginFlow(Base):
    """A single sign-on under way, between the redirect to the issuer and its callback; `id` is
    SHA-256 hex of the `state` parameter."""

    __tablename__ = "login_flows"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    code_verifier: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str] = mapped_column(String(128))
    redirect_to: Mapped[str] = mapped_column(String(500), default="/")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OrganizationMember(Base):
    __tablename__ = "organization_member"

    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))  # domain.access.Role
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class UserSession(Base):
    """A signed-in browser; `id` is SHA-256 hex of the cookie's token, never the token."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class Invitation(Base):
    """An invitation by link; `token_hash` is SHA-256 hex of the link's token."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str | None] = mapped_column(String(36), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class PasswordReset(Base):
    __tablename__ = "password_resets"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class ProviderKey(Base):
    """A provider's secret, AES-GCM encrypted under the key `secret_key_id` names; the
    organization and row id are the associated data, so a ciphertext moved to another row or
    organization does not decrypt."""

    __tablename__ = "provider_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    provider_name: Mapped[str] = mapped_column(String(64))
    provider_key_name: Mapped[str] = mapped_column(String(200))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    secret_key_id: Mapped[str] = mapped_column(String(16))
    last4: Mapped[str] = mapped_column(String(4))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class ProxyKey(Base):
    """A key that stands for a stored provider key; `proxy_key_hash` is SHA-256 hex as for API
    keys (the key has 140 random bits, so a slow hash would add nothing but latency)."""

    __tablename__ = "helicone_proxy_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    provider_key_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("provider_keys.id", ondelete="CASCADE"), index=True
    )
    proxy_key_name: Mapped[str] = mapped_column(String(200))
    proxy_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(40))
    spend_limit_usd: Mapped[float | None] = mapped_column(Float, default=None)
    spend_period: Mapped[str | None] = mapped_column(String(8), default=None)  # day or month
    request_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    request_window_s: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class AuditEntry(Base):
    """One line of the append-only audit log (triggers refuse updates and deletes). No foreign
    keys: the record of an organization's deletion outlives it."""

    __tablename__ = "audit_log"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor_user_id: Mapped[str | None] = mapped_column(String(36), default=None)
    actor_key_id: Mapped[str | None] = mapped_column(String(36), default=None)
    actor: Mapped[str] = mapped_column(String(320), default="")  # e-mail or key name
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(255), default="")
    details: Mapped[str] = mapped_column(Text, default="{}")  # JSON, never a secret
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class Prompt(Base):
    """A prompt an organization manages outside its code; `tags` is a JSON list."""

    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(256))
    tags: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PromptVersion(Base):
    """One immutable version (`major.minor`) of a prompt: its body, JSON as it was sent."""

    __tablename__ = "prompt_versions"
    __table_args__ = (UniqueConstraint("prompt_id", "major_version", "minor_version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    prompt_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("prompts.id", ondelete="CASCADE"), index=True
    )
    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    major_version: Mapped[int] = mapped_column(Integer)
    minor_version: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(256), default="")
    body: Mapped[str] = mapped_column(Text)
    commit_message: Mapped[str] = mapped_column(String(2000), default="")
    created_by: Mapped[str | None] = mapped_column(String(36), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PromptEnvironment(Base):
    """Which version of a prompt an environment (production, staging, ...) serves; one version
    may hold several environments."""

    __tablename__ = "prompt_environments"

    prompt_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("prompts.id", ondelete="CASCADE"), primary_key=True
    )
    environment: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("prompt_versions.id", ondelete="CASCADE"), index=True
    )
    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Webhook(Base):
    """A destination every logged request of the organization is posted to (sampled and
    filtered); the HMAC key is sealed by the vault, like a provider key."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    destination: Mapped[str] = mapped_column(String(2048))
    sample_rate: Mapped[float] = mapped_column(Float, default=100.0)
    property_filters: Mapped[str] = mapped_column(Text, default="[]")  # JSON [{key, value}]
    include_data: Mapped[bool] = mapped_column(Boolean, default=True)
    hmac_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    hmac_nonce: Mapped[bytes] = mapped_column(LargeBinary)
    secret_key_id: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WebhookDelivery(Base):
    """One payload owed to one webhook: the durable queue and the delivery log in one table."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "request_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[str] = mapped_column(String(36))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    leased_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class Alert(Base):
    """A rule on a metric over a sliding window; `state` says whether it is firing. The
    channels (JSON; webhook URLs may be secrets) are sealed by the vault."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(256))
    metric: Mapped[str] = mapped_column(String(32))  # error_rate, cost, latency, count
    aggregation: Mapped[str] = mapped_column(String(16), default="avg")  # latency: avg, p50..p99
    threshold: Mapped[float] = mapped_column(Float)
    window_minutes: Mapped[int] = mapped_column(Integer)
    min_requests: Mapped[int] = mapped_column(Integer, default=1)
    filter: Mapped[str | None] = mapped_column(Text, default=None)  # the request filter, JSON
    channels_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    channels_nonce: Mapped[bytes] = mapped_column(LargeBinary)
    secret_key_id: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(16), default="ok")  # ok, firing
    state_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    last_value: Mapped[float | None] = mapped_column(Float, default=None)
    last_evaluated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AlertEvent(Base):
    """One line of an alert's history: it fired or resolved, at what value, who was told."""

    __tablename__ = "alert_history"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("alerts.id", ondelete="CASCADE"), index=True
    )
    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(16))  # fired, resolved
    value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    request_count: Mapped[int] = mapped_column(Integer)
    notifications: Mapped[str] = mapped_column(Text, default="[]")  # JSON, per channel
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WeeklyReportSent(Base):
    """When an organization's weekly report was last sent (claimed before sending, so two API
    processes never send the same week twice)."""

    __tablename__ = "weekly_reports"

    organization_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organization.id", ondelete="CASCADE"), primary_key=True
    )
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime())
