"""The narrow interface both engines implement: run SQL with bound parameters, insert JSON rows.

Everything above it sees rows as plain dicts decoded from `JSONEachRow`, the format both chDB and
a ClickHouse server speak, so the two engines return identical values for identical SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from heliograph.domain.errors import HeliographError

# Query-level settings sent with every read: both engines format numbers the same way, and a
# column name in WHERE always means the column, even where an aggregate has that alias.
READ_SETTINGS = {"output_format_json_quote_64bit_integers": 0, "prefer_column_name_to_alias": 1}


class StoreUnavailable(HeliographError, RuntimeError):
    """The analytics engine could not run the statement (down, slow, or failing)."""


# Settings whose value is a ClickHouse literal of its own (a map), not a string to quote.
LITERAL_SETTINGS = frozenset({"additional_table_filters"})


def settings_clause(settings: Mapping[str, Any]) -> str:
    """`SETTINGS a = 1, b = 'x'` for engines that take settings in the query text."""
    parts = []
    for name, value in settings.items():
        if isinstance(value, int) or name in LITERAL_SETTINGS:
            parts.append(f"{name} = {value}")
        else:
            parts.append(f"{name} = '{str(value).replace(chr(39), chr(92) + chr(39))}'")
    return "SETTINGS " + ", ".join(parts)


class Executor(Protocol):
    def query(
        self, sql: str, params: Mapping[str, Any], settings: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Run a SELECT and return its rows; `settings` add to the read settings."""

    def query_bytes(
        self,
        sql: str,
        params: Mapping[str, Any],
        fmt: str,
        settings: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Run a SELECT and return its output in ClickHouse format `fmt`."""

    def command(self, sql: str) -> None:
        """Run a statement that returns nothing (DDL)."""

    def insert(self, table: str, json_rows: bytes, dedup_token: str) -> None:
        """Insert newline-separated JSON objects; a retried batch with the same token is a no-op."""

    def close(self) -> None: ...


def decode_rows(json_each_row: bytes) -> list[dict[str, Any]]:
    """The rows of a `JSONEachRow` result, as both engines return them."""
    return [orjson.loads(line) for line in json_each_row.splitlines() if line]


def escape_param(value: Any) -> str:
    """A parameter value in ClickHouse's escaped text form, as `{name:Type}` binding expects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_literal(item) for item in value) + "]"
    text = str(value)
    return (
        text.replace("\\", "\\\\")
        .replace("\n", "\\n")
        .replace("\t", "\\t")
        .replace("\r", "\\r")
        .replace("\0", "\\0")
    )


def _literal(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
