"""Session-level filters: leaves on Helicone's `sessions_request_response_rmt` table describe a
whole session (its total cost, request count, tag…) and compile to aggregate conditions for a
`HAVING` clause, while the rest of the same filter still narrows the requests in `WHERE`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from heliograph.domain.filters import (
    MAX_DEPTH,
    SESSION_TABLE,
    USAGE_TOTAL_SQL,
    Column,
    FilterError,
    SqlFilter,
    compile_filter,
    compile_tree,
    condition,
    is_branch,
    leaves,
    show,
    single,
    text_condition,
)

# The one definition of a session's duration: from its first request's start to its last
# response's end (`latency` runs to the last byte), as the session tree draws it.
SESSION_DURATION_SQL = (
    "(max(toUnixTimestamp64Milli(request_created_at) + latency)"
    " - min(toUnixTimestamp64Milli(request_created_at)))"
)

SESSION_COLUMNS: dict[str, Column] = {
    "session_session_id": Column("session_id", "text"),
    "session_session_name": Column("any(session_name)", "text"),
    "session_total_cost": Column("sum(cost)", "cost"),
    "session_total_tokens": Column(f"sum({USAGE_TOTAL_SQL})", "number"),
    "session_prompt_tokens": Column("sum(ifNull(prompt_tokens, 0))", "number"),
    "session_completion_tokens": Column("sum(ifNull(completion_tokens, 0))", "number"),
    "session_total_requests": Column("count()", "number"),
    "session_created_at": Column("min(request_created_at)", "timestamp"),
    "session_latest_request_created_at": Column("max(request_created_at)", "timestamp"),
}
# The newest tag of each session; `{org:UUID}` is bound by the store like every scoped query.
TAG_SQL = (
    "session_id IN (SELECT session_id FROM session_annotations "
    "WHERE organization_id = {{org:UUID}} AND kind = 'tag' GROUP BY session_id "
    "HAVING {predicate})"
)


def compile_session_filter(node: Any) -> tuple[str, str, dict[str, Any]]:
    """Split a filter into request conditions (for WHERE) and session conditions (for HAVING),
    compiled with one shared set of parameters."""
    request_part, session_part = split(node)
    target = SqlFilter()
    where, _ = compile_filter(request_part, target)
    having = compile_tree(session_part, target, _session_leaf)
    return where, having, target.params


def split(node: Any, depth: int = 0) -> tuple[Any, Any]:
    """Separate the AND-ed conditions on sessions from those on requests. A session condition
    OR-ed with a request condition has no single meaning, so it is refused."""
    if depth > MAX_DEPTH:
        raise FilterError(f"filter is nested deeper than {MAX_DEPTH} levels")
    if is_branch(node) and node.get("operator") == "and" and {"left", "right"} <= set(node):
        left_requests, left_sessions = split(node["left"], depth + 1)
        right_requests, right_sessions = split(node["right"], depth + 1)
        return _and(left_requests, right_requests), _and(left_sessions, right_sessions)
    tables = _tables(node)
    if SESSION_TABLE not in tables:
        return node, "all"
    if tables == {SESSION_TABLE}:
        return "all", node
    raise FilterError(
        f"{SESSION_TABLE} conditions can be combined with request conditions only by 'and'"
    )


def _session_leaf(node: Mapping[str, Any], target: SqlFilter) -> str:
    table, columns = single(node, "table")
    if table != SESSION_TABLE:  # split() keeps request leaves out of here
        raise FilterError(f"unexpected table {show(table)} in a session condition")
    column, predicate = single(columns, f"column of {table}")
    operator, value = single(predicate, f"operator for {column}")
    if column == "session_tag":
        latest_tag = "argMax(value, created_at)"
        tag = text_condition(latest_tag, "session_tag", operator, value, target)
        return TAG_SQL.format(predicate=tag)
    spec = SESSION_COLUMNS.get(column)
    if spec is None:
        known = ", ".join([*SESSION_COLUMNS, "session_tag"])
        raise FilterError(f"unknown column {show(column)} in {table}; use one of {known}")
    return condition(spec, column, operator, value, target)


def _tables(node: Any) -> set[str]:
    return {
        str(next(iter(leaf)))
        for leaf in leaves(node)
        if isinstance(leaf, Mapping) and len(leaf) == 1
    }


def _and(left: Any, right: Any) -> Any:
    if left == "all":
        return right
    if right == "all":
        return left
    return {"left": left, "operator": "and", "right": right}
