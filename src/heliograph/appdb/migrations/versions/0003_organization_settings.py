"""Organization settings (body redaction).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "organization_settings",
        sa.Column(
            "organization_id",
            sa.String(36),
            sa.ForeignKey("organization.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("redaction_kinds", sa.String(200), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_table("organization_settings")
