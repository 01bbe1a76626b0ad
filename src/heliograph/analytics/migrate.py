"""Applies the numbered files in `sql/schema/` once each, in order, recording them in a table.

Files are never edited after release and numbers are never reused; a change is a new file.
Files named `*.server.sql` concern only a ClickHouse server (users, row policies); the embedded
store records them as applied without running them.
"""

from __future__ import annotations

import logging
import time
from importlib import resources

from heliograph.analytics.executor import Executor

log = logging.getLogger("heliograph.analytics")

MIGRATIONS_TABLE = "heliograph_migrations"


def schema_files() -> list[tuple[int, str, str]]:
    """`(number, name, sql)` for every schema file, sorted by number."""
    folder = resources.files("heliograph.analytics").joinpath("sql/schema")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number = int(entry.name.split("_", 1)[0])
            found.append((number, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def apply_migrations(
    executor: Executor, server: bool = False, values: dict[str, str] | None = None
) -> list[str]:
    """Apply every schema file not yet applied; return the names applied now. `values` fill
    `{name}` placeholders in server-only files (hex digests, never free text)."""
    executor.command(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version UInt32, name String, "
        "applied_at DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY version"
    )
    rows = executor.query(f"SELECT version FROM {MIGRATIONS_TABLE}", {})
    done = {int(row["version"]) for row in rows}
    applied = []
    for number, name, sql in schema_files():
        if number in done:
            continue
        # Some migrations rework existing rows (backfills, new indexes): minutes on a large store.
        log.info("applying analytics schema %s", name)
        started = time.perf_counter()
        server_only = name.endswith(".server.sql")
        for statement in statements(sql) if server or not server_only else []:
            executor.command(statement.format(**(values or {})) if server_only else statement)
        executor.command(
            f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES ({number}, '{name}')"
        )
        log.info("applied %s in %.1f s", name, time.perf_counter() - started)
        applied.append(name)
    return applied


def statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
