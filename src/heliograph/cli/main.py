"""The root command group."""

from __future__ import annotations

import click

from heliograph import __version__
from heliograph.cli import export, gateway, imports, init, keys, prices, secrets, serve, users


@click.group()
@click.version_option(__version__, prog_name="heliograph")
def cli() -> None:
    """Heliograph: an LLM gateway and observability platform."""


cli.add_command(serve.serve)
cli.add_command(init.init)
cli.add_command(keys.keys)
cli.add_command(gateway.gateway)
cli.add_command(export.export)
cli.add_command(secrets.secrets)
cli.add_command(users.users)
cli.add_command(prices.prices)
cli.add_command(imports.import_)
