"""`heliograph secrets rotate`: re-encrypt every stored secret (provider keys, webhook signing
keys, alert channels) under a new master key, in one transaction. With the key in the data
directory the file is replaced once the transaction has committed; with
`HELIOGRAPH_SECRET_KEY`, the operator is told what to set it to."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import click

from heliograph.cli.options import data_dir_option, open_app_db, read_settings


@click.group()
def secrets() -> None:
    """Manage the key that encrypts stored provider keys, webhook keys and alert channels."""


@secrets.command("rotate")
@data_dir_option
@click.option(
    "--new-key",
    default=None,
    help="The new key (url-safe base64 of 32 bytes, or a passphrase of 32+ characters); "
    "default: a new random one.",
)
def rotate(data_dir: Path | None, new_key: str | None) -> None:
    """Re-encrypt every stored secret under a new secret key."""
    from heliograph.appdb.engine import session_factory
    from heliograph.services.audit import SYSTEM
    from heliograph.services.secret_rotation import SEALED, reseal_all
    from heliograph.services.vault import (
        VaultError,
        key_from_text,
        key_id_of,
        new_key_text,
        stage_key_file,
    )

    settings = read_settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app_db = open_app_db(settings)
    vault = app_db.vault
    text = new_key or new_key_text()

    def reseal() -> Counter[str]:
        return reseal_all(session_factory(app_db.engine), vault, app_db.audit, key, SYSTEM)

    try:
        key = key_from_text(text)
        if vault.from_environment:
            counts = reseal()
        else:
            vault.ensure_key()
            staged = stage_key_file(vault.key_file, text)
            try:
                counts = reseal()
            except BaseException:
                staged.unlink(missing_ok=True)
                raise
            os.replace(staged, vault.key_file)
            # A secret added by a running API between the commit and the rename was sealed
            # under the old key, which this process still holds: move it too.
            counts += reseal()
        if not counts:  # nothing to move, but the key changed: say so once, for the install
            details = {"secret_key_id": key_id_of(key), "provider_keys": 0}
            app_db.audit.record(SYSTEM, "secrets.rotate", None, details=details)
    except VaultError as error:
        raise click.ClickException(str(error)) from None
    finally:
        app_db.engine.dispose()
    moved = ", ".join(f"{counts[c.kind]} {c.kind.replace('_', ' ')}" for c in SEALED)
    click.echo(f"re-encrypted {moved} under secret key {key_id_of(key)}")
    if not vault.from_environment:
        click.echo(f"the new key is in {vault.key_file}; running processes read it on their own")
        return
    if new_key is None:
        click.echo(f"new secret key (shown once, store it now): {text}")
    click.echo(
        "set HELIOGRAPH_SECRET_KEY to the new key and restart every Heliograph process: "
        "the old key no longer opens the stored provider keys"
    )
