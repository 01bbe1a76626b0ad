"""Accounts: people, sessions, members, invitations, password resets, single-sign-on identities,
key permissions, the provider-key vault, proxy keys and the append-only audit log.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

TIME = sa.DateTime(timezone=True)


def _organization() -> sa.Column[str]:
    return sa.Column(
        "organization_id",
        sa.String(36),
        sa.ForeignKey("organization.id", ondelete="CASCADE"),
        nullable=False,
    )


def _user(name: str = "user_id") -> sa.Column[str]:
    return sa.Column(
        name, sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    with op.batch_alter_table("helicone_api_keys") as keys:
        keys.add_column(
            sa.Column("key_permissions", sa.String(2), nullable=False, server_default="rw")
        )
        keys.add_column(sa.Column("user_id", sa.String(36), nullable=True))
        keys.add_column(sa.Column("last_used_at", TIME, nullable=True))
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("password_changed_at", TIME, nullable=True),
        sa.Column("disabled_at", TIME, nullable=True),
    )
    op.create_table(
        "user_identities",
        sa.Column("issuer", sa.String(500), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        _user(),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_index("ix_user_identities_user", "user_identities", ["user_id"])
    op.create_table(
        "login_flows",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("redirect_to", sa.String(500), nullable=False, server_default="/"),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
    )
    op.create_table(
        "organization_member",
        sa.Column(
            "organization_id",
            sa.String(36),
            sa.ForeignKey("organization.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_index("ix_organization_member_user", "organization_member", ["user_id"])
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        _user(),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.Column("address", sa.String(64), nullable=False, server_default=""),
        sa.Column("user_agent", sa.String(300), nullable=False, server_default=""),
    )
    op.create_index("ix_user_sessions_user", "user_sessions", ["user_id"])
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(36), primary_key=True),
        _organization(),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("invited_by", sa.String(36), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("accepted_at", TIME, nullable=True),
        sa.Column("revoked_at", TIME, nullable=True),
    )
    op.create_index("ix_invitations_organization", "invitations", ["organization_id"])
    op.create_table(
        "password_resets",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        _user(),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("used_at", TIME, nullable=True),
    )
    op.create_index("ix_password_resets_user", "password_resets", ["user_id"])
    op.create_table(
        "provider_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        _organization(),
        sa.Column("provider_name", sa.String(64), nullable=False),
        sa.Column("provider_key_name", sa.String(200), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("nonce", sa.LargeBinary, nullable=False),
        sa.Column("secret_key_id", sa.String(16), nullable=False),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("deleted_at", TIME, nullable=True),
    )
    op.create_index("ix_provider_keys_organization", "provider_keys", ["organization_id"])
    op.create_table(
        "helicone_proxy_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        _organization(),
        sa.Column(
            "provider_key_id",
            sa.String(36),
            sa.ForeignKey("provider_keys.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("proxy_key_name", sa.String(200), nullable=False),
        sa.Column("proxy_key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("key_prefix", sa.String(40), nullable=False),
        sa.Column("spend_limit_usd", sa.Float, nullable=True),
        sa.Column("spend_period", sa.String(8), nullable=True),
        sa.Column("request_limit", sa.Integer, nullable=True),
        sa.Column("request_window_s", sa.Integer, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
    )
    op.create_index("ix_proxy_keys_organization", "helicone_proxy_keys", ["organization_id"])
    op.create_index("ix_proxy_keys_provider_key", "helicone_proxy_keys", ["provider_key_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.String(36), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("actor_user_id", sa.String(36), nullable=True),
        sa.Column("actor_key_id", sa.String(36), nullable=True),
        sa.Column("actor", sa.String(320), nullable=False, server_default=""),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=False, server_default=""),
        sa.Column("target_id", sa.String(255), nullable=False, server_default=""),
        sa.Column("details", sa.Text, nullable=False, server_default="{}"),
        sa.Column("address", sa.String(64), nullable=False, server_default=""),
        sa.Column("user_agent", sa.String(300), nullable=False, server_default=""),
    )
    op.create_index("ix_audit_log_organization", "audit_log", ["organization_id"])
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])
    _append_only()


def _append_only() -> None:
    """Refuse updates and deletes of audit lines in the database itself, not only in code."""
    if op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log"
                " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$"
        " BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$ LANGUAGE plpgsql"
    )
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log"
        " FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )


def downgrade() -> None:
    op.drop_table("audit_log")  # its triggers go with it
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    for table in (
        "helicone_proxy_keys",
        "provider_keys",
        "password_resets",
        "invitations",
        "user_sessions",
        "organization_member",
        "user_identities",
        "login_flows",
        "users",
    ):
        op.drop_table(table)
    with op.batch_alter_table("helicone_api_keys") as keys:
        keys.drop_column("last_used_at")
        keys.drop_column("user_id")
        keys.drop_column("key_permissions")
