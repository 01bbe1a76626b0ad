"""Session-level filters: leaves on Helicone's `sessions_request_response_rmt` table describe a
whole session (its total cost, request count, tag…). A session endpoint's filter is split into
those (for `HAVING`) and the conditions on requests (for `WHERE`)."""

from __future__ import annotations

from typing import Any

from heliograph.domain.filter_tree import (
    ALL_ROWS,
    AllRows,
    Branch,
    Column,
    Filter,
    Kind,
    Operator,
    SessionCondition,
    SessionFilter,
    SessionTagCondition,
    both,
)
from heliograph.domain.filters import (
    SESSION_TABLE,
    FilterError,
    condition,
    parse_filter,
    show,
    single,
)

SESSION_COLUMNS: dict[str, Column] = {
    name: Column(name, kind)
    for name, kind in {
        "session_session_id": Kind.TEXT,
        "session_session_name": Kind.TEXT,
        "session_total_cost": Kind.COST,
        "session_total_tokens": Kind.NUMBER,
        "session_prompt_tokens": Kind.NUMBER,
        "session_completion_tokens": Kind.NUMBER,
        "session_total_requests": Kind.NUMBER,
        "session_created_at": Kind.TIMESTAMP,
        "session_latest_request_created_at": Kind.TIMESTAMP,
    }.items()
}
SESSION_TAG = Column("session_tag", Kind.TEXT)


def parse_session_filter(node: Any) -> SessionFilter:
    """A session endpoint's filter, parsed and split into request and session conditions."""
    requests, sessions = split(parse_filter(node, _session_leaf))
    return SessionFilter(requests, sessions)


def split(tree: Filter) -> tuple[Filter, Filter]:
    """Separate the AND-ed conditions on sessions from those on requests. A session condition
    OR-ed with a request condition has no single meaning, so it is refused."""
    if isinstance(tree, SessionCondition | SessionTagCondition):
        return ALL_ROWS, tree
    if not isinstance(tree, Branch):
        return tree, ALL_ROWS
    left_requests, left_sessions = split(tree.left)
    right_requests, right_sessions = split(tree.right)
    if tree.operator == "and":
        return both(left_requests, right_requests), both(left_sessions, right_sessions)
    on_sessions = not isinstance(left_sessions, AllRows) or not isinstance(right_sessions, AllRows)
    if not on_sessions:
        return tree, ALL_ROWS
    if isinstance(left_requests, AllRows) and isinstance(right_requests, AllRows):
        return ALL_ROWS, tree
    raise FilterError(
        f"{SESSION_TABLE} conditions can be combined with request conditions only by 'and'"
    )


def _session_leaf(columns: Any) -> SessionCondition | SessionTagCondition:
    column, predicate = single(columns, f"column of {SESSION_TABLE}")
    operator, value = single(predicate, f"operator for {column}")
    if column == "session_tag":  # compared as text, by any operator
        return SessionTagCondition(condition(SESSION_TAG, column, operator, value, tuple(Operator)))
    spec = SESSION_COLUMNS.get(column)
    if spec is None:
        known = ", ".join([*SESSION_COLUMNS, "session_tag"])
        raise FilterError(f"unknown column {show(column)} in {SESSION_TABLE}; use one of {known}")
    return SessionCondition(condition(spec, column, operator, value))
