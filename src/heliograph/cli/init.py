"""`heliograph init`: create an organization and its first API key."""

from __future__ import annotations

import json
from pathlib import Path

import click

from heliograph.cli.options import data_dir_option, key_service, with_data_dir


@click.command()
@data_dir_option
@click.option("--name", "--org", "org_name", default="default", help="Organization name.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line: id and key.")
def init(data_dir: Path | None, org_name: str, as_json: bool) -> None:
    """Create an organization and print its first API key (shown only this once)."""
    service = key_service(data_dir)
    for organization_id, name in service.list_organizations():
        if name == org_name:
            raise click.ClickException(_already_exists(org_name, organization_id, data_dir))
    created = service.create_organization(org_name)
    click.echo(f"organization {org_name}: {created.organization_id}")
    click.echo(f"API key (store it now, it is not shown again): {created.api_key}")
    if as_json:
        payload = {"organization_id": created.organization_id, "api_key": created.api_key}
        click.echo(json.dumps(payload))


def _already_exists(org_name: str, organization_id: str, data_dir: Path | None) -> str:
    new_key = with_data_dir(f"heliograph keys create --org {organization_id}", data_dir)
    another = with_data_dir("heliograph init --name <name>", data_dir)
    return (
        f"organization {org_name!r} already exists ({organization_id}); "
        f"for a new key run `{new_key}`, for another organization `{another}`"
    )
