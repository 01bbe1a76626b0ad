"""The gateway process's reads of the app DB (active keys by hash, an organization's rate-limit
rules and price overrides) and its one write (when keys were last used) in plain SQL over the
database driver: sqlite3, or psycopg for PostgreSQL. SQLAlchemy would be a quarter of a gateway
process's memory for these few statements; the tables are the ones `appdb/models.py` defines and
Alembic creates."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from heliograph.appdb.urls import normalise_url
from heliograph.domain.keys import Identity, hash_key
from heliograph.domain.pricing import PriceOverride
from heliograph.domain.ratelimit import RateLimitPolicy

SQLITE_PREFIX = "sqlite:///"
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DateTime in SQLite (UTC)


class AppDbLookups:
    """One connection per thread (the lookups run on the event loop's worker threads)."""

    def __init__(self, url: str) -> None:
        url = normalise_url(url)
        self._sqlite_path = url[len(SQLITE_PREFIX) :] if url.startswith(SQLITE_PREFIX) else None
        self._postgres_url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.mark = "?" if self._sqlite_path is not None else "%s"
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def lookup(self, key: str) -> Identity | None:
        key_hash = hash_key(key)
        return self.active([key_hash]).get(key_hash)

    def active(self, key_hashes: Sequence[str]) -> dict[str, Identity]:
        """The identities behind those of `key_hashes` that are still active, by hash."""
        marks = ", ".join([self.mark] * len(key_hashes))
        rows = self.query(
            "SELECT api_key_hash, organization_id, id, key_permissions FROM helicone_api_keys"
            f" WHERE api_key_hash IN ({marks}) AND revoked_at IS NULL",
            list(key_hashes),
        )
        return {row[0]: Identity(row[1], row[2], row[3]) for row in rows}

    def policies(self, organization_id: str) -> list[RateLimitPolicy]:
        """The organization's rules, oldest first."""
        rows = self.query(
            "SELECT quota, window_seconds, unit, segment FROM org_rate_limits"
            f" WHERE organization_id = {self.mark} AND deleted_at IS NULL ORDER BY created_at",
            [organization_id],
        )
        return [RateLimitPolicy(float(row[0]), int(row[1]), row[2], row[3]) for row in rows]

    def price_overrides(self, organization_id: str) -> list[PriceOverride]:
        """The organization's price overrides (`cents` rate limits charge at them)."""
        rows = self.query(
            "SELECT provider, model, input_per_mtok, output_per_mtok, cache_read_per_mtok,"
            " cache_write_per_mtok, per_request FROM price_overrides"
            f" WHERE organization_id = {self.mark}",
            [organization_id],
        )
        return [price_override(*row) for row in rows]

    def touch(self, used: Mapping[str, datetime]) -> None:
        """Set `last_used_at` of the keys in `used` (by id), unless a later use is already
        recorded: one UPDATE, executed for the whole batch."""
        mark = self.mark
        sql = (
            f"UPDATE helicone_api_keys SET last_used_at = {mark} WHERE id = {mark}"
            f" AND (last_used_at IS NULL OR last_used_at < {mark})"
        )
        # In id order, so two processes writing the same keys lock them in the same order.
        rows = [
            (self._time(when), key_id, self._time(when)) for key_id, when in sorted(used.items())
        ]
        connection = self._connection()
        try:
            connection.cursor().executemany(sql, rows)
            connection.commit()
        except Exception:
            self._local.connection = None
            raise

    def _time(self, moment: datetime) -> Any:
        """A time as the driver stores it: SQLAlchemy's text in SQLite, as it is in psycopg."""
        if self._sqlite_path is None:
            return moment
        return moment.astimezone(UTC).strftime(SQLITE_TIME)

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()

    def query(self, sql: str, parameters: list[str]) -> list[tuple[Any, ...]]:
        connection = self._connection()
        try:
            cursor = connection.execute(sql, parameters)
            rows = list(cursor.fetchall())
            if self._sqlite_path is None:
                connection.rollback()  # end the read transaction psycopg opened
            return rows
        except Exception:
            self._local.connection = None  # broken, perhaps: the next query connects again
            raise

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _connect(self) -> Any:
        if self._sqlite_path is not None:
            connection = sqlite3.connect(self._sqlite_path, check_same_thread=False)
            connection.execute("PRAGMA busy_timeout=5000")
            return connection
        import psycopg  # only when the app DB is PostgreSQL

        return psycopg.connect(self._postgres_url)


def price_override(
    provider: str,
    model: str,
    input_per_mtok: str,
    output_per_mtok: str,
    cache_read_per_mtok: str | None,
    cache_write_per_mtok: str | None,
    per_request: str,
) -> PriceOverride:
    """A stored override's columns (decimal text) as the value pricing takes."""
    return PriceOverride(
        provider,
        model,
        Decimal(input_per_mtok),
        Decimal(output_per_mtok),
        None if cache_read_per_mtok is None else Decimal(cache_read_per_mtok),
        None if cache_write_per_mtok is None else Decimal(cache_write_per_mtok),
        Decimal(per_request),
    )
