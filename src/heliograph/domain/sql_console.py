"""The SQL console's gate: a query is parsed (sqlglot, ClickHouse dialect) and accepted only as one
SELECT built from allow-listed parts: the documented tables (resolved with real scoping, so a CTE
never stands in for one), the pure functions listed in `sql_functions.py`, and plain
syntax. What runs is the SQL regenerated from the checked tree, so the engine sees what was checked.
"""

from __future__ import annotations

import re
from itertools import count

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, traverse_scope

from heliograph.domain.errors import InvalidInput
from heliograph.domain.sql_functions import AGGREGATE_COMBINATORS, AGGREGATES, SCALARS

# Names a query may use, and the stored table each one reads (Helicone calls it `_rmt`).
TABLES = {
    "request_response": "request_response",
    "request_response_rmt": "request_response",
    "request_annotations": "request_annotations",
    "session_annotations": "session_annotations",
    "request_rollup_hourly": "request_rollup_hourly",
}
MAX_SQL_CHARS = 20_000
MAX_NESTING = 32  # brackets within brackets; the parser's time grows fast with depth

# The rollup keeps aggregate states (binary) in these columns; the console sees them finalized,
# and every other column as it is.
ROLLUP_STATES = ("users", "latency_digest", "ttft_digest", "tokens_digest")

# Syntax nodes a query may contain besides functions and tables. Anything else is refused.
# Not PREWHERE: the engine evaluates it before the organization filter, so an expression that
# fails on a value would tell, by failing, that another organization's rows hold it.
SYNTAX = frozenset(
    """Select Union Intersect Except Subquery From Join Where Group Having Order Ordered
    Limit Offset With CTE TableAlias Column Identifier Star Literal Alias Paren Tuple Null Boolean
    Interval Var DataType DataTypeParam Lambda Window WindowSpec Bracket Dot In Between Like ILike
    Is Not Neg EQ NEQ GT GTE LT LTE NullSafeEQ NullSafeNEQ Add Sub Mul Div Mod IntDiv DPipe
    Distinct Final TableSample Filter JSONPath JSONPathKey JSONPathRoot JSONPathSubscript Any All
    BitwiseAnd BitwiseOr BitwiseXor BitwiseNot Escape Table""".split()  # noqa: SIM905
)
# Function nodes written as syntax rather than `name(...)`.
NAMELESS_FUNCTIONS = frozenset({"And", "Or", "Xor", "Case", "If", "Array"})
_CALLED = re.compile(r"[`\"]?([A-Za-z_][A-Za-z0-9_]*)[`\"]?\(")
_ALLOWED_FUNCTIONS = frozenset(
    name.lower()
    for name in (
        *SCALARS,
        *(
            base + first + second
            for base in AGGREGATES
            for first in AGGREGATE_COMBINATORS
            for second in AGGREGATE_COMBINATORS
            if first != second or not first
        ),
    )
)


class RejectedQuery(InvalidInput):
    """The query is not one the console runs; the message says why, in the user's terms."""


def checked_select(sql: str) -> str:
    """The query as it will run, or `RejectedQuery`."""
    try:
        return _checked(sql)
    except RecursionError:
        raise RejectedQuery("the query is nested too deeply") from None


def _checked(sql: str) -> str:
    tree = _parse(sql)
    for node in tree.walk():
        _check_node(node)
    cte_tables = _cte_references(tree)
    for table in list(tree.find_all(exp.Table)):
        if id(table) not in cte_tables:
            _use_stored_table(table)
    for membership in list(tree.find_all(exp.In)):
        _check_in(membership)
    _rename_ctes(tree, cte_tables)
    return tree.sql(dialect="clickhouse", comments=False)  # comments could hide a second clause


def _parse(sql: str) -> exp.Query:
    if len(sql) > MAX_SQL_CHARS:
        raise RejectedQuery(f"queries are limited to {MAX_SQL_CHARS} characters")
    if _nesting(sql) > MAX_NESTING:
        raise RejectedQuery(f"queries may nest brackets at most {MAX_NESTING} deep")
    try:
        statements = [s for s in sqlglot.parse(sql, read="clickhouse") if s is not None]
    except SqlglotError as error:
        if _writes_into(sql):
            raise RejectedQuery("queries cannot write INTO anything") from None
        raise RejectedQuery(f"could not parse the query: {_first_line(str(error))}") from None
    if len(statements) != 1:
        raise RejectedQuery("send exactly one statement")
    (tree,) = statements
    if not isinstance(tree, exp.Query):
        raise RejectedQuery("only SELECT queries are allowed")
    return tree


def _nesting(sql: str) -> int:
    """How deep brackets nest in the text (quotes not considered: an over-estimate is fine)."""
    depth = deepest = 0
    for character in sql:
        if character in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif character in ")]}":
            depth -= 1
    return deepest


def _writes_into(sql: str) -> bool:
    try:
        tokens = sqlglot.tokenize(sql, read="clickhouse")
    except SqlglotError:
        return False
    return any(token.text.upper() in ("INTO", "OUTFILE") for token in tokens)


def _check_node(node: exp.Expr) -> None:
    if node.args.get("settings"):
        raise RejectedQuery("queries cannot carry their own SETTINGS")
    if node.args.get("format"):
        raise RejectedQuery("queries cannot choose their output FORMAT")
    if node.args.get("into"):
        raise RejectedQuery("queries cannot write INTO anything")
    if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
        raise RejectedQuery("table functions are not allowed; read one of " + _table_list())
    if isinstance(node, exp.Func):
        _check_function(node)
    elif type(node).__name__ not in SYNTAX:
        raise RejectedQuery(f"this part of the query is not supported: {_snippet(node)}")
    if isinstance(node, exp.Column) and (node.args.get("db") or node.args.get("catalog")):
        raise RejectedQuery(f"only your own tables can be read, not {_snippet(node)}")


def _check_function(node: exp.Func) -> None:
    rendered = node.sql(dialect="clickhouse")
    called = _CALLED.match(rendered)
    if called is None:
        if type(node).__name__ in NAMELESS_FUNCTIONS:
            return
        raise RejectedQuery(f"this expression is not supported: {_snippet(node)}")
    name = called.group(1)
    if name.lower() not in _ALLOWED_FUNCTIONS:
        raise RejectedQuery(
            f"function {name}() is not available in the console (see the README's list)"
        )


def _cte_references(tree: exp.Query) -> dict[int, exp.Expr]:
    """By id, the table references that name a CTE in scope where they stand, and that CTE's
    query."""
    found: dict[int, exp.Expr] = {}
    try:
        scopes = traverse_scope(tree)
    except SqlglotError as error:
        message = f"could not resolve the query's tables: {_first_line(str(error))}"
        raise RejectedQuery(message) from None
    for scope in scopes:
        for table in scope.tables:
            source = scope.sources.get(table.name)
            local = not table.args.get("db")  # `db.name` is never a CTE
            if local and isinstance(source, Scope) and _is_table_cte(source.expression.parent):
                found[id(table)] = source.expression
    return found


def _is_table_cte(node: exp.Expr | None) -> bool:
    """`name AS (SELECT ...)`; the engine reads `(SELECT ...) AS name` as a value, not a table."""
    return isinstance(node, exp.CTE) and not node.args.get("scalar")


def _use_stored_table(table: exp.Table) -> None:
    if table.args.get("db") or table.args.get("catalog"):
        raise RejectedQuery(f"only your own tables can be read, not {_snippet(table)}")
    name = table.name
    if name not in TABLES:
        raise RejectedQuery(f"unknown table {name!r}; use one of {_table_list()}")
    alias = table.alias or name
    if TABLES[name] == "request_rollup_hourly":
        table.replace(
            exp.Subquery(
                this=_finalized_rollup(), alias=exp.TableAlias(this=exp.to_identifier(alias))
            )
        )
        return
    table.set("this", exp.to_identifier(TABLES[name]))
    if not table.alias:  # keeps qualified columns (`request_response_rmt.model`) meaning it
        table.set("alias", exp.TableAlias(this=exp.to_identifier(name)))


def _finalized_rollup() -> exp.Query:
    states = ", ".join(f"finalizeAggregation({column}) AS {column}" for column in ROLLUP_STATES)
    select = f"SELECT * EXCEPT ({', '.join(ROLLUP_STATES)}), {states} FROM request_rollup_hourly"
    return sqlglot.parse_one(select, read="clickhouse")  # type: ignore[return-value]


def _check_in(membership: exp.In) -> None:
    """`x IN name` reads a whole table; only the console's own, and as a subquery so the
    organization filter applies."""
    field = membership.args.get("field")
    listed = membership.args.get("expressions") or []
    if field is None and len(listed) == 1 and isinstance(listed[0].unnest(), exp.Column):
        field = listed[0].unnest()  # the engine reads `IN (name)` as `IN name`, a table
        membership.set("expressions", None)
    if field is None:
        return
    if not isinstance(field, exp.Column) or field.table or field.name not in TABLES:
        raise RejectedQuery(
            f"IN {_snippet(field)}: only the console's tables can follow IN; use one of "
            + _table_list()
        )
    subquery = sqlglot.parse_one(f"SELECT * FROM {TABLES[field.name]}", read="clickhouse")
    membership.set("field", None)
    membership.set("query", exp.Subquery(this=subquery))


def _rename_ctes(tree: exp.Query, cte_tables: dict[int, exp.Expr]) -> None:
    """Give every CTE a name no stored table has, and point the references sqlglot resolved to
    it there: if the engine ever scoped a name differently, it would find no table at all."""
    numbers = count(1)
    fresh_names: dict[int, str] = {}
    for cte in list(tree.find_all(exp.CTE)):
        if _is_table_cte(cte):
            fresh = f"console_cte_{next(numbers)}"
            fresh_names[id(cte.this)] = fresh
            cte.args["alias"].set("this", exp.to_identifier(fresh))  # keeps a column list
    for table in list(tree.find_all(exp.Table)):
        body = cte_tables.get(id(table))
        if body is not None and id(body) in fresh_names:
            if not table.alias:
                table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name)))
            table.set("this", exp.to_identifier(fresh_names[id(body)]))


def _table_list() -> str:
    return ", ".join(sorted(TABLES))


def _snippet(node: exp.Expr) -> str:
    text = node.sql(dialect="clickhouse")
    return text if len(text) <= 60 else text[:57] + "..."


def _first_line(message: str) -> str:
    return (message.strip().splitlines() or ["invalid SQL"])[0][:300]
