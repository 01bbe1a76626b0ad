"""Options several commands share. The app DB is imported only when a command opens it, so that
`heliograph gateway` starts as lean as the gateway process itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from heliograph.settings import InvalidSetting, Settings, load_settings

if TYPE_CHECKING:
    from heliograph.services.container import AppDb
    from heliograph.services.keys import KeyService


def data_dir_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Where embedded stores live (env HELIOGRAPH_DATA_DIR, default ./heliograph-data).",
    )(function)


def read_settings(**overrides: Any) -> Settings:
    """The settings, `overrides` (flags) winning; a bad `HELIOGRAPH_*` value ends the command
    with one line naming the variable, not a traceback."""
    try:
        return load_settings(**overrides)
    except InvalidSetting as error:
        raise click.ClickException(str(error)) from None


def open_app_db(settings: Settings) -> AppDb:
    """The app DB and its services, migrated; a setting they refuse ends the command with one
    line naming it."""
    from heliograph.services.container import open_app_db as open_it
    from heliograph.services.vault import VaultError

    try:
        return open_it(settings)
    except (InvalidSetting, VaultError) as error:
        raise click.ClickException(str(error)) from None


def key_service(data_dir: Path | None) -> KeyService:
    settings = read_settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_app_db(settings).keys


def organizations(settings: Settings) -> list[tuple[str, str]]:
    """Every organization's id and name, from the app DB (migrated first, as `init` would)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app_db = open_app_db(settings)
    try:
        return app_db.keys.list_organizations()
    finally:
        app_db.engine.dispose()


def with_data_dir(command: str, data_dir: Path | None) -> str:
    """A command to suggest, with the `--data-dir` the user gave, so it acts on the same stores."""
    return f"{command} --data-dir {data_dir}" if data_dir else command
