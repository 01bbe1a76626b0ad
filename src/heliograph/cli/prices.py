"""`heliograph prices recompute`: re-price the requests of a time range at the organization's
current price overrides, through a running API (so it works while `serve` holds the embedded
store)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime

import click

from heliograph.cli.options import read_settings

RECOMPUTE_TIMEOUT_S = 3600


@click.group()
def prices() -> None:
    """Prices: recompute stored costs after an override changes."""


@prices.command()
@click.option("--start", type=click.DateTime(), required=True, help="From (UTC), inclusive.")
@click.option("--end", type=click.DateTime(), required=True, help="To (UTC), exclusive.")
@click.option("--model", default=None, help="Only this model (case-insensitive).")
@click.option(
    "--key", envvar="HELIOGRAPH_API_KEY", required=True, help="API key (env HELIOGRAPH_API_KEY)."
)
@click.option(
    "--api-url", default=None, help="The API (env HELIOGRAPH_API_URL, default this host's)."
)
def recompute(
    start: datetime, end: datetime, model: str | None, key: str, api_url: str | None
) -> None:
    """Re-price stored requests from START to END (at most 400 days)."""
    base = (api_url or read_settings().resolved_api_url).rstrip("/")
    body = {"start": start.isoformat(), "end": end.isoformat(), "model": model}
    request = urllib.request.Request(  # noqa: S310 - the operator names the API URL
        f"{base}/v1/price-overrides/recompute",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=RECOMPUTE_TIMEOUT_S) as response:  # noqa: S310
            result = json.load(response)["data"]
    except urllib.error.HTTPError as error:
        raise click.ClickException(
            f"{error.code}: {error.read().decode(errors='replace')}"
        ) from None
    except urllib.error.URLError as error:
        raise click.ClickException(f"cannot reach the API at {base}: {error.reason}") from None
    click.echo(
        f"{result['rows_checked']} requests checked, {result['rows_repriced']} re-priced,"
        f" {result['rows_unknown']} still of unknown models;"
        f" {result['hours_rebuilt']} hours of metrics rebuilt"
    )
