"""`heliograph init`: create an organization and its first API key."""

from __future__ import annotations

import json
from pathlib import Path

import click

from heliograph.cli.options import data_dir_option, key_service


@click.command()
@data_dir_option
@click.option("--org", "org_name", default="default", help="Organization name.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line: id and key.")
def init(data_dir: Path | None, org_name: str, as_json: bool) -> None:
    """Create an organization and print its first API key (shown only this once)."""
    created = key_service(data_dir).create_organization(org_name)
    click.echo(f"organization {org_name}: {created.organization_id}")
    click.echo(f"API key (store it now, it is not shown again): {created.api_key}")
    if as_json:
        payload = {"organization_id": created.organization_id, "api_key": created.api_key}
        click.echo(json.dumps(payload))
