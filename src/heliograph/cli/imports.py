"""`heliograph import`: bring history from another platform (Helicone) into Heliograph."""

from __future__ import annotations

import click


@click.group(name="import")
def import_() -> None:
    """Import requests and keys from another platform."""
