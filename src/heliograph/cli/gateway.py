"""`heliograph gateway`: only the gateway, shipping its logs to an API process's ingest endpoint."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from heliograph.cli.options import data_dir_option, read_settings
from heliograph.gateway_process import run_gateway
from heliograph.runtime import PortInUse


@click.command()
@data_dir_option
@click.option("--host", default=None, help="Interface to listen on (default 127.0.0.1).")
@click.option("--gateway-port", type=int, default=None, help="Gateway port (default 8787).")
def gateway(data_dir: Path | None, host: str | None, gateway_port: int | None) -> None:
    """Run a gateway process. Set HELIOGRAPH_INGEST_URL and HELIOGRAPH_INGEST_TOKEN to the API's."""
    settings = read_settings(data_dir=data_dir, host=host, gateway_port=gateway_port)
    if not settings.ingest_token:
        raise click.ClickException("HELIOGRAPH_INGEST_TOKEN is required to ship logs")
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        run_gateway(settings)
    except PortInUse as busy:
        raise click.ClickException(
            f"{busy}; is a gateway already running? Stop it, or choose another with --gateway-port"
        ) from None
