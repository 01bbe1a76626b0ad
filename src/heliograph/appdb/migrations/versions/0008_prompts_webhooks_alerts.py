"""Prompts (versions and the environments they are deployed to), webhooks with their durable
delivery queue, and alert rules with their history.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def _organization() -> sa.Column[str]:
    return sa.Column(
        "organization_id",
        sa.String(36),
        sa.ForeignKey("organization.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    _prompts()
    _webhooks()
    _alerts()


def _prompts() -> None:
    op.create_table(
        "prompts",
        sa.Column("id", sa.String(36), primary_key=True),
        _organization(),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False, server_default="[]"),  # JSON list
        _time("created_at"),
        _time("updated_at"),
        sa.UniqueConstraint("organization_id", "name"),
    )
    op.create_table(
        "prompt_versions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "prompt_id",
            sa.String(36),
            sa.ForeignKey("prompts.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        _organization(),
        sa.Column("major_version", sa.Integer(), nullable=False),
        sa.Column("minor_version", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(256), nullable=False, server_default=""),
        sa.Column("body", sa.Text(), nullable=False),  # the prompt body, JSON as sent
        sa.Column("commit_message", sa.String(2000), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(36), nullable=True),
        _time("created_at"),
        sa.UniqueConstraint("prompt_id", "major_version", "minor_version"),
    )
    op.create_table(
        "prompt_environments",
        sa.Column(
            "prompt_id",
            sa.String(36),
            sa.ForeignKey("prompts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("environment", sa.String(64), primary_key=True),
        sa.Column(
            "version_id",
            sa.String(36),
            sa.ForeignKey("prompt_versions.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        _organization(),
        _time("updated_at"),
    )


def _webhooks() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(36), primary_key=True),
        _organization(),
        sa.Column("destination", sa.String(2048), nullable=False),
        sa.Column("sample_rate", sa.Float(), nullable=False, server_default="100"),
        sa.Column("property_filters", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("include_data", sa.Boolean(), nullable=False, server_default=sa.true()),
        # The HMAC key, sealed by the vault like a provider key.
        sa.Column("hmac_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("hmac_nonce", sa.LargeBinary(), nullable=False),
        sa.Column("secret_key_id", sa.String(16), nullable=False),
        _time("created_at"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "webhook_id",
            sa.String(36),
            sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        _organization(),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # pending, delivered, failed
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        _time("next_attempt_at"),
        _time("leased_until", nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(1000), nullable=False, server_default=""),
        _time("created_at"),
        _time("delivered_at", nullable=True),
        sa.UniqueConstraint("webhook_id", "request_id"),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )


def _alerts() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        _organization(),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("aggregation", sa.String(16), nullable=False, server_default="avg"),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("window_minutes", sa.Integer(), nullable=False),
        sa.Column("min_requests", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("filter", sa.Text(), nullable=True),  # the request filter, JSON
        # The channels (webhook URLs may be secrets), sealed by the vault.
        sa.Column("channels_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("channels_nonce", sa.LargeBinary(), nullable=False),
        sa.Column("secret_key_id", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("state", sa.String(16), nullable=False, server_default="ok"),  # ok, firing
        _time("state_changed_at", nullable=True),
        sa.Column("last_value", sa.Float(), nullable=True),
        _time("last_evaluated_at", nullable=True),
        _time("created_at"),
        _time("updated_at"),
    )
    op.create_table(
        "alert_history",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "alert_id",
            sa.String(36),
            sa.ForeignKey("alerts.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        _organization(),
        sa.Column("event", sa.String(16), nullable=False),  # fired, resolved
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("request_count", sa.Integer(), nullable=False),
        sa.Column("notifications", sa.Text(), nullable=False, server_default="[]"),  # JSON
        _time("created_at"),
    )


def downgrade() -> None:
    for table in (
        "alert_history",
        "alerts",
        "webhook_deliveries",
        "webhooks",
        "prompt_environments",
        "prompt_versions",
        "prompts",
    ):
        op.drop_table(table)
