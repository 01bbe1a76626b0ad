"""The SQL console's gate: a query is parsed (sqlglot, ClickHouse dialect) and accepted only as
one SELECT over the organization's own tables, with no table functions, other databases or
SETTINGS of its own. What runs is the SQL regenerated from the checked tree, so the text the
engine sees is the text that was checked. The engine enforces the organization scope itself."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

# Names a query may use, and the stored table each one reads (Helicone calls it `_rmt`).
TABLES = {
    "request_response": "request_response",
    "request_response_rmt": "request_response",
    "request_annotations": "request_annotations",
    "session_annotations": "session_annotations",
    "request_rollup_hourly": "request_rollup_hourly",
}
MAX_SQL_CHARS = 20_000


class RejectedQuery(ValueError):
    """The query is not one the console runs; the message says why."""


def checked_select(sql: str) -> str:
    """The query as it will run, or `RejectedQuery`."""
    if len(sql) > MAX_SQL_CHARS:
        raise RejectedQuery(f"queries are limited to {MAX_SQL_CHARS} characters")
    try:
        statements = [s for s in sqlglot.parse(sql, read="clickhouse") if s is not None]
    except sqlglot.errors.SqlglotError as error:
        raise RejectedQuery(f"could not parse the query: {error}") from None
    if len(statements) != 1:
        raise RejectedQuery("send exactly one statement")
    (tree,) = statements
    if not isinstance(tree, exp.Query):
        raise RejectedQuery("only SELECT queries are allowed")
    if any(node.args.get("settings") for node in tree.walk() if isinstance(node, exp.Expression)):
        raise RejectedQuery("queries cannot carry their own SETTINGS")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        _check_table(table, ctes)
    return tree.sql(dialect="clickhouse", comments=False)  # comments could hide a second clause


def _check_table(table: exp.Table, ctes: set[str]) -> None:
    if not isinstance(table.this, exp.Identifier):
        raise RejectedQuery("table functions are not allowed")
    if table.args.get("db") or table.args.get("catalog"):
        raise RejectedQuery(
            f"only your own tables can be read, not {table.sql(dialect='clickhouse')}"
        )
    name = table.name
    if name in ctes:
        return
    if name not in TABLES:
        raise RejectedQuery(f"unknown table {name!r}; use one of {', '.join(sorted(TABLES))}")
    table.set("this", exp.to_identifier(TABLES[name]))
