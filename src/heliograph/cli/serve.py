"""`heliograph serve`: gateway, ingest and API in one process on embedded stores."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from heliograph.cli.options import data_dir_option, organizations, read_settings, with_data_dir
from heliograph.runtime import PortInUse
from heliograph.services.vault import VaultError
from heliograph.settings import InvalidSetting, Settings


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
    settings = read_settings(
        data_dir=data_dir,
        host=host,
        gateway_port=gateway_port,
        api_port=api_port,
        gateway_workers=gateway_workers,
    )
    try:
        if not organizations(settings):
            # Without one every request would be answered 401, with nothing said about why.
            init = with_data_dir("heliograph init", data_dir)
            raise click.ClickException(f"no organization yet; run `{init}` first to create one")
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        from heliograph.server import run  # the whole application: only this command needs it

        run(settings)
    except PortInUse as busy:
        raise click.ClickException(_port_in_use(busy, settings)) from None
    except (InvalidSetting, VaultError) as error:  # a setting the stores refuse: one line
        raise click.ClickException(str(error)) from None


def _port_in_use(busy: PortInUse, settings: Settings) -> str:
    option = "--gateway-port" if busy.port == settings.gateway_port else "--api-port"
    return f"{busy}; is Heliograph already running? Stop it, or choose another with {option}"
