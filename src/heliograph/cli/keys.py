"""`heliograph keys create|list|revoke`: an organization's API keys."""

from __future__ import annotations

from pathlib import Path

import click

from heliograph.cli.options import data_dir_option, key_service
from heliograph.domain.access import KeyPermissions

MAX_NAME_CHARS = 200


@click.group()
def keys() -> None:
    """Manage an organization's API keys."""


@keys.command("create")
@data_dir_option
@click.option("--org", "org_id", required=True, help="Organization id.")
@click.option("--name", default="default", help="A name to recognise the key by.")
@click.option(
    "--permissions",
    type=click.Choice([p.value for p in KeyPermissions]),
    default=KeyPermissions.READ_WRITE.value,
    show_default=True,
    help="rw: read and write; r: read only; w: log and send feedback only.",
)
def create(data_dir: Path | None, org_id: str, name: str, permissions: str) -> None:
    """Create a key and print it once."""
    if not 1 <= len(name.strip()) <= MAX_NAME_CHARS:
        raise click.ClickException(f"--name must be 1 to {MAX_NAME_CHARS} characters")
    try:
        created = key_service(data_dir).create_key(org_id, name, KeyPermissions(permissions))
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{created.key_id} {created.api_key}")


@keys.command("list")
@data_dir_option
@click.option("--org", "org_id", default=None, help="Organization id (default: every one).")
def list_keys(data_dir: Path | None, org_id: str | None) -> None:
    """List keys: id, name, permissions, visible prefix, created, last used, revoked."""
    service = key_service(data_dir)
    organizations = service.list_organizations()
    for organization_id, org_name in organizations:
        if org_id and organization_id != org_id:
            continue
        for key in service.list_keys(organization_id):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            used = f"used {key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never used"
            click.echo(
                f"{organization_id} ({org_name})  {key.key_id}  {key.name}  {key.permissions}  "
                f"{key.prefix}...  {key.created_at:%Y-%m-%d %H:%M}  {used}  {state}"
            )


@keys.command("revoke")
@data_dir_option
@click.option("--org", "org_id", required=True, help="Organization id.")
@click.argument("key_id")
def revoke(data_dir: Path | None, org_id: str, key_id: str) -> None:
    """Revoke a key (running servers stop accepting it within the key cache TTL)."""
    if not key_service(data_dir).revoke_key(org_id, key_id):
        raise click.ClickException(f"no active key {key_id} in organization {org_id}")
    click.echo(f"revoked {key_id}")
