"""`python -m heliograph` runs the command line."""

from heliograph.cli.main import cli

cli()
