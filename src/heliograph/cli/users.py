"""`heliograph users create|reset-password|list`: people, set up from the command line (headless
installs, and a reset when no SMTP server is configured)."""

from __future__ import annotations

from pathlib import Path

import click

from heliograph.cli.options import data_dir_option, open_app_db, read_settings
from heliograph.domain.access import Role
from heliograph.domain.errors import InvalidInput
from heliograph.settings import Settings

ROLES = [role.value for role in Role]


@click.group()
def users() -> None:
    """Manage the people who sign in."""


@users.command("create")
@data_dir_option
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option(
    "--org", "organization", default=None, help="Organization id or name (made when absent)."
)
@click.option("--role", type=click.Choice(ROLES), default="owner", show_default=True)
def create(
    data_dir: Path | None, email: str, password: str, organization: str | None, role: str
) -> None:
    """Create a person, a member of ORG with ROLE."""
    app_db = open_app_db(_settings(data_dir))
    try:
        user_id, organization_id = app_db.accounts.create_user(
            email, password, organization, Role(role)
        )
    except InvalidInput as error:
        raise click.ClickException(str(error)) from None
    finally:
        app_db.engine.dispose()
    click.echo(f"user {email}: {user_id}")
    if organization_id is not None:
        click.echo(f"{role} of organization {organization_id}")


@users.command("reset-password")
@data_dir_option
@click.option("--email", required=True)
@click.option("--password", prompt="New password", hide_input=True, confirmation_prompt=True)
def reset_password(data_dir: Path | None, email: str, password: str) -> None:
    """Set a new password; every session of the account ends."""
    app_db = open_app_db(_settings(data_dir))
    try:
        app_db.accounts.set_password(email, password)
    except (InvalidInput, LookupError) as error:
        raise click.ClickException(str(error).strip("'\"")) from None
    finally:
        app_db.engine.dispose()
    click.echo(f"password of {email} changed; every session of it has ended")


@users.command("list")
@data_dir_option
def list_users(data_dir: Path | None) -> None:
    """Every person: id, e-mail, organizations and roles."""
    app_db = open_app_db(_settings(data_dir))
    try:
        for user_id, email in app_db.accounts.list_users():
            memberships = app_db.organizations.memberships(user_id)
            roles = ", ".join(f"{m.name} ({m.role})" for m in memberships) or "no organization"
            click.echo(f"{user_id}  {email}  {roles}")
    finally:
        app_db.engine.dispose()


def _settings(data_dir: Path | None) -> Settings:
    settings = read_settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings
