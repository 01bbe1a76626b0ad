"""`heliograph serve`: gateway, ingest and API in one process on embedded stores."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from heliograph.cli.options import data_dir_option
from heliograph.server import run
from heliograph.settings import load_settings


@click.command()
@data_dir_option
@click.option("--host", default=None, help="Interface to listen on (default 127.0.0.1).")
@click.option("--gateway-port", type=int, default=None, help="Gateway port (default 8787).")
@click.option("--api-port", type=int, default=None, help="API port (default 8585).")
@click.option(
    "--gateway-workers",
    type=int,
    default=None,
    help="Gateway processes (default 1; 0 runs the gateway inside this process).",
)
def serve(
    data_dir: Path | None,
    host: str | None,
    gateway_port: int | None,
    api_port: int | None,
    gateway_workers: int | None,
) -> None:
    """Run the gateway, the log writer and the API until SIGINT or SIGTERM."""
    settings = load_settings(
        data_dir=data_dir,
        host=host,
        gateway_port=gateway_port,
        api_port=api_port,
        gateway_workers=gateway_workers,
    )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run(settings)
