"""Hidden custom property keys.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "hidden_property_keys",
        sa.Column(
            "organization_id",
            sa.String(36),
            sa.ForeignKey("organization.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(500), primary_key=True),
        sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hidden_property_keys")
