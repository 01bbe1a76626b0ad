"""`heliograph export`: every request matching a filter, as JSON lines or CSV, streamed from a
running API (so it works while `serve` holds the embedded store)."""

from __future__ import annotations

import json
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

import click

from heliograph.cli.options import read_settings


@click.command()
@click.option(
    "--key", envvar="HELIOGRAPH_API_KEY", required=True, help="API key (env HELIOGRAPH_API_KEY)."
)
@click.option(
    "--api-url", default=None, help="The API (env HELIOGRAPH_API_URL, default this host's)."
)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
@click.option("--filter", "filter_json", default='"all"', help="A FilterNode as JSON.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="File (default: standard output).",
)
def export(key: str, api_url: str | None, fmt: str, filter_json: str, out: Path | None) -> None:
    """Export requests; memory stays constant however many there are."""
    try:
        filter_node = json.loads(filter_json)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint="--filter") from None
    base = (api_url or read_settings().resolved_api_url).rstrip("/")
    request = urllib.request.Request(  # noqa: S310 - the operator names the API URL
        f"{base}/v1/request/export",
        data=json.dumps({"filter": filter_node, "format": fmt}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:  # noqa: S310
            if out is None:
                _copy(response, sys.stdout.buffer)
            else:
                with out.open("wb") as handle:
                    _copy(response, handle)
    except urllib.error.HTTPError as error:
        raise click.ClickException(
            f"{error.code}: {error.read().decode(errors='replace')}"
        ) from None
    except urllib.error.URLError as error:
        raise click.ClickException(f"cannot reach the API at {base}: {error.reason}") from None


def _copy(source: BinaryIO, target: BinaryIO) -> None:
    shutil.copyfileobj(source, target, length=64 * 1024)
