"""`heliograph import`: bring history from another platform (Helicone) into Heliograph.

`import helicone` opens the stores itself. The embedded analytics store (chDB) allows one process
per data directory, so requests are imported with `serve` stopped (keys alone, and any import
into a ClickHouse server, work alongside it)."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from heliograph.cli.options import data_dir_option, open_app_db, read_settings
from heliograph.domain.money import nano_to_usd
from heliograph.domain.times import stored_time

if TYPE_CHECKING:
    from heliograph.services.container import AppDb
    from heliograph.services.helicone_import import Tally
    from heliograph.settings import Settings


@click.group(name="import")
def import_() -> None:
    """Import requests and keys from another platform."""


@import_.command("helicone")
@data_dir_option
@click.option(
    "--requests",
    "requests_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="request_response_rmt export: JSON lines (.jsonl) or CSV with a header (.csv).",
)
@click.option(
    "--keys",
    "keys_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="helicone_api_keys export (CSV with a header).",
)
@click.option("--org", "org", required=True, help="Organization id or name to import into.")
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default=None, help="Of --requests."
)
@click.option("--since", type=click.DateTime(), default=None, help="Only requests from (UTC).")
@click.option("--until", type=click.DateTime(), default=None, help="Only requests before (UTC).")
@click.option("--strict", is_flag=True, help="Stop at the first row that cannot be imported.")
def helicone(
    data_dir: Path | None,
    requests_file: Path | None,
    keys_file: Path | None,
    org: str,
    fmt: str | None,
    since: datetime | None,
    until: datetime | None,
    strict: bool,
) -> None:
    """Import Helicone requests and API keys; a second run adds nothing."""
    from heliograph.domain.errors import InvalidInput

    if requests_file is None and keys_file is None:
        raise click.UsageError("give --requests, --keys or both")
    settings = read_settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app_db = open_app_db(settings)
    try:
        org_id = _organization(app_db, org)
        if keys_file is not None:
            _print("keys", _import_keys(app_db, org_id, keys_file, strict))
        if requests_file is not None:
            window = (_stored(since), _stored(until))
            tally = _import_requests(settings, app_db, org_id, requests_file, fmt, window, strict)
            _print("requests", tally)
    except InvalidInput as error:
        raise click.ClickException(str(error)) from None
    finally:
        app_db.engine.dispose()


def _organization(app_db: AppDb, wanted: str) -> str:
    from heliograph.services.helicone_import import find_organization

    return find_organization(app_db.keys.list_organizations(), wanted)


def _import_keys(app_db: AppDb, org_id: str, path: Path, strict: bool) -> Tally:
    from heliograph.appdb.engine import session_factory
    from heliograph.ingest.helicone_files import key_rows
    from heliograph.services.helicone_import import KeyImport

    importer = KeyImport(session_factory(app_db.engine), app_db.audit, org_id)
    return importer.run(key_rows(path), strict)


def _import_requests(
    settings: Settings,
    app_db: AppDb,
    org_id: str,
    path: Path,
    fmt: str | None,
    window: tuple[str | None, str | None],
    strict: bool,
) -> Tally:
    from heliograph.analytics.chdb_executor import embedded_store_in_use
    from heliograph.analytics.executor import StoreUnavailable
    from heliograph.analytics.store import open_store
    from heliograph.ingest.helicone_files import request_rows
    from heliograph.services.helicone_import import RequestImport

    analytics_dir = settings.resolved_analytics_dir
    if not settings.clickhouse_url and embedded_store_in_use(analytics_dir):
        raise click.ClickException(
            f"the analytics store in {analytics_dir} is open in another process (is "
            "`heliograph serve` running?); stop it, import, then start it again"
        )
    rows = request_rows(path, fmt)
    # The first row reads the header (or the first object): a file that is not an export is
    # refused before the store is opened.
    first = next(rows, None)
    rows = itertools.chain([first] if first is not None else [], rows)
    store = open_store(settings.clickhouse_url, analytics_dir)
    try:
        asyncio.run(store.migrate())
        importer = RequestImport(
            store,
            org_id,
            settings.body_dir,
            settings.max_stored_body_bytes,
            app_db.redaction.redactor_for(org_id),
            *window,
            strict=strict,
        )
        with _Bar(path) as progress:
            return importer.run(rows, progress)
    except StoreUnavailable as error:
        raise click.ClickException(
            f"the analytics store refused a batch ({str(error)[:200]!r}); what "
            "was stored is kept: run the same command again to import the rest"
        ) from None
    finally:
        asyncio.run(store.close())


class _Bar:
    """A progress bar on standard error: how far into the file, and rows per second."""

    def __init__(self, path: Path) -> None:
        self._bar = click.progressbar(
            length=max(path.stat().st_size, 1),
            label="importing",
            file=sys.stderr,
            item_show_func=lambda text: text,
        )
        self._started = time.monotonic()
        self._shown = 0
        self._next_at = 0.0

    def __enter__(self) -> _Bar:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(None, None, None)

    def __call__(self, offset: int, tally: Tally) -> None:
        now = time.monotonic()
        if now < self._next_at:
            return  # drawing costs more than reading a row
        self._next_at = now + 0.2
        rate = tally.read / max(now - self._started, 1e-6)
        self._bar.update(offset - self._shown, f"{tally.read:,} rows, {rate:,.0f} rows/s")
        self._shown = offset


def _stored(moment: datetime | None) -> str | None:
    """A `--since`/`--until` value (UTC) as stored times are written, so they compare as text."""
    return None if moment is None else stored_time(moment.replace(tzinfo=UTC))


def _print(what: str, tally: Tally) -> None:
    click.echo(
        f"{what}: {tally.read:,} read, {tally.imported:,} imported, {tally.present:,} already "
        f"present, {tally.skipped:,} skipped, {tally.refused:,} refused"
        + (f", {tally.conflicting:,} belong to another organization" if tally.conflicting else "")
    )
    for reason in tally.reasons:
        click.echo(f"  refused {reason}")
    if what == "requests":
        cost = nano_to_usd(tally.cost_nano)
        click.echo(
            f"imported totals: {tally.imported:,} requests, {tally.tokens:,} tokens, ${cost:,.6f}"
        )
