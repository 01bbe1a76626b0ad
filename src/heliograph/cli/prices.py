"""`heliograph prices`: price overrides' recompute over a time range."""

from __future__ import annotations

import click


@click.group()
def prices() -> None:
    """Prices: recompute stored costs after an override changes."""
