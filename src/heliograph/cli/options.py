"""Options several commands share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from heliograph.services.container import open_app_db
from heliograph.services.keys import KeyService
from heliograph.settings import load_settings


def data_dir_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Where embedded stores live (env HELIOGRAPH_DATA_DIR, default ./heliograph-data).",
    )(function)


def key_service(data_dir: Path | None) -> KeyService:
    settings = load_settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_app_db(settings).keys
