"""Organizations' price overrides per model and provider.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "price_overrides",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "organization_id",
            sa.String(36),
            sa.ForeignKey("organization.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        # Decimal text: exact on SQLite and PostgreSQL alike.
        sa.Column("input_per_mtok", sa.String(40), nullable=False),
        sa.Column("output_per_mtok", sa.String(40), nullable=False),
        sa.Column("cache_read_per_mtok", sa.String(40), nullable=True),
        sa.Column("cache_write_per_mtok", sa.String(40), nullable=True),
        sa.Column("per_request", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("organization_id", "provider", "model"),
    )


def downgrade() -> None:
    op.drop_table("price_overrides")
