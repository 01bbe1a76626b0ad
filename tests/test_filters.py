"""The FilterNode grammar: SQL generation by example, and by hypothesis against the real engine
(every generated filter compiles, runs on chDB, and never puts a value into the SQL text)."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heliograph.analytics.chdb_executor import ChdbExecutor
from heliograph.analytics.filter_sql import filter_sql, session_filter_sql
from heliograph.analytics.migrate import apply_migrations
from heliograph.analytics.request_reads import order_sql
from heliograph.analytics.scope import scope_of
from heliograph.analytics.sessions import sessions_sql
from heliograph.domain.filter_tree import OPERATORS_BY_KIND, Kind
from heliograph.domain.filters import (
    COLUMNS,
    SESSION_TABLE,
    FilterError,
    parse_filter,
)
from heliograph.domain.queries import AggregateQuery
from heliograph.domain.session_filters import SESSION_COLUMNS, parse_session_filter
from heliograph.domain.sorts import parse_sort

ORG = "00000000-0000-0000-0000-000000000001"


def compile_filter(node: Any) -> tuple[str, dict[str, Any]]:
    """A filter as the API parses it and the store compiles it."""
    return filter_sql(parse_filter(node), scope_of(ORG))


def compile_session_filter(node: Any) -> tuple[str, str, dict[str, Any]]:
    parsed = parse_session_filter(node)
    return session_filter_sql(parsed.requests, parsed.sessions, scope_of(ORG))


def compile_sort(sort: Any) -> str:
    return order_sql(parse_sort(sort))


def test_leaf_compiles_to_a_bound_parameter() -> None:
    sql, params = compile_filter({"request_response_rmt": {"model": {"equals": "gpt-4o"}}})
    assert sql == "model = {p0:String}"
    assert params == {"p0": "gpt-4o"}


def test_branches_nest_and_keep_parameter_order() -> None:
    node = {
        "left": {"request_response_rmt": {"latency": {"gte": 100}}},
        "operator": "or",
        "right": {"properties": {"app": {"contains": "50%_off"}}},
    }
    sql, params = compile_filter(node)
    # A logged value counts only when no value was added later for the key; an added one does.
    added = "SELECT request_id FROM request_properties WHERE organization_id = {org:UUID} "
    added += "AND key = {p1:String}"
    assert sql == (
        "(latency >= {p0:Float64} OR ((mapContains(properties, {p1:String}) "
        "AND properties[{p1:String}] ILIKE {p2:String} "
        f"AND request_id NOT IN ({added})) "
        f"OR request_id IN ({added} GROUP BY request_id "
        "HAVING argMax(value, created_at) ILIKE {p3:String})))"
    )
    like = "%50\\%\\_off%"
    assert params == {"p0": 100.0, "p1": "app", "p2": like, "p3": like}


def test_cost_is_compared_in_nano_usd() -> None:
    _, params = compile_filter({"request_response_rmt": {"cost": {"gt": 0.0123}}})
    assert params == {"p0": 12_300_000}


def test_null_and_empty_map_to_empty() -> None:
    sql, params = compile_filter({"request_response_rmt": {"user_id": {"not-equals": "null"}}})
    assert sql == "NOT empty(user_id)"
    assert params == {}


def test_timestamps_are_normalised_to_utc() -> None:
    node = {"request_response_rmt": {"request_created_at": {"gte": "2026-01-01T02:00:00+02:00"}}}
    _, params = compile_filter(node)
    assert params == {"p0": "2026-01-01 00:00:00.000"}


@pytest.mark.parametrize("node", ["everything", 3, [], {"left": "all"}, {"request": "x"}])
def test_malformed_nodes_raise_filter_error(node: Any) -> None:
    with pytest.raises(FilterError):
        compile_filter(node)


@pytest.mark.parametrize("moment", ["0999-01-01T00:00:00", "2400-01-01T00:00:00Z"])
def test_timestamps_outside_the_engine_range_are_rejected(moment: str) -> None:
    with pytest.raises(FilterError, match="between the years"):
        compile_filter({"request_response_rmt": {"request_created_at": {"gte": moment}}})


def test_sort_defaults_to_newest_first_and_rejects_unknown_keys() -> None:
    assert compile_sort(None) == "request_created_at DESC, request_id DESC"
    assert compile_sort({"cost": "asc"}) == "cost ASC, request_id ASC"
    with pytest.raises(FilterError):
        compile_sort({"cost; DROP TABLE x": "asc"})


VALUES_BY_KIND: dict[str, st.SearchStrategy[Any]] = {
    "text": st.text(max_size=20),
    "body": st.text(max_size=20),
    "number": st.one_of(st.integers(-(10**9), 10**9), st.floats(-1e9, 1e9, allow_nan=False)),
    "cost": st.floats(0, 1000, allow_nan=False),
    "timestamp": st.datetimes(datetime(1901, 1, 2), datetime(2298, 12, 30)).map(
        lambda moment: moment.isoformat()
    ),
    "bool": st.booleans(),
    "uuid": st.uuids().map(str),
}


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    column = draw(st.sampled_from(sorted(COLUMNS)))
    kind = COLUMNS[column].kind
    operator = draw(st.sampled_from(OPERATORS_BY_KIND[kind]))
    value = draw(VALUES_BY_KIND[kind])
    if draw(st.booleans()) and kind == "text":
        return {"properties": {draw(st.text(min_size=1, max_size=8)): {operator: value}}}
    return {"request_response_rmt": {column: {operator: value}}}


filters = st.recursive(
    st.one_of(leaves(), st.just("all")),
    lambda children: st.fixed_dictionaries(
        {"left": children, "operator": st.sampled_from(["and", "or"]), "right": children}
    ),
    max_leaves=8,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(node=filters)
def test_every_valid_filter_runs_on_the_engine(chdb_executor: ChdbExecutor, node: Any) -> None:
    apply_migrations(chdb_executor)
    sql, params = compile_filter(node)
    for value in params.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in sql, "a value leaked into the SQL text"
    params["org"] = "00000000-0000-0000-0000-000000000001"
    rows = chdb_executor.query(
        f"SELECT count() AS n FROM request_response WHERE organization_id = {{org:UUID}} AND {sql}",
        params,
    )
    assert rows[0]["n"] == 0


@settings(max_examples=200, deadline=None)
@given(
    node=st.recursive(
        st.one_of(st.none(), st.integers(), st.text(max_size=10), st.booleans()),
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.text(max_size=25), children, max_size=3),
        ),
        max_leaves=10,
    )
)
def test_arbitrary_json_is_either_compiled_or_rejected_cleanly(node: Any) -> None:
    with contextlib.suppress(FilterError):
        compile_filter(node)


@st.composite
def session_leaves(draw: st.DrawFn) -> dict[str, Any]:
    column = draw(st.sampled_from([*sorted(SESSION_COLUMNS), "session_tag"]))
    kind = SESSION_COLUMNS[column].kind if column in SESSION_COLUMNS else Kind.TEXT
    operator = draw(st.sampled_from(OPERATORS_BY_KIND[kind]))
    return {SESSION_TABLE: {column: {operator: draw(VALUES_BY_KIND[kind])}}}


session_filters = st.recursive(
    st.one_of(leaves(), session_leaves(), st.just("all")),
    lambda children: st.fixed_dictionaries(
        {"left": children, "operator": st.sampled_from(["and", "or"]), "right": children}
    ),
    max_leaves=8,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(node=session_filters)
def test_session_filters_run_on_the_engine_or_are_refused(
    chdb_executor: ChdbExecutor, node: Any
) -> None:
    """Request and session conditions joined by `and` split into WHERE and HAVING and run;
    only an `or` between the two kinds is refused."""
    apply_migrations(chdb_executor)
    refusal = ""
    try:
        parsed = parse_session_filter(node)
        query = AggregateQuery(filter=parsed.requests, sessions=parsed.sessions)
        sql, params = sessions_sql(scope_of(ORG), query)
    except FilterError as refused:
        refusal = str(refused)
    if refusal:
        assert "only by 'and'" in refusal
    else:
        assert chdb_executor.query(sql, params) == []


def test_session_conditions_go_to_having_and_request_conditions_to_where() -> None:
    node = {
        "left": {SESSION_TABLE: {"session_total_cost": {"gte": 1}}},
        "operator": "and",
        "right": {
            "left": {"request_response_rmt": {"model": {"equals": "m"}}},
            "operator": "and",
            "right": {SESSION_TABLE: {"session_tag": {"equals": "gold"}}},
        },
    }
    where, having, params = compile_session_filter(node)
    assert where == "model = {p0:String}"
    assert having.startswith("(sum(cost) >= {p1:UInt64} AND session_id IN (SELECT session_id")
    assert params == {"p0": "m", "p1": 1_000_000_000, "p2": "gold"}


def test_body_search_reads_only_parts_the_text_index_picks(chdb_executor: ChdbExecutor) -> None:
    apply_migrations(chdb_executor)
    org = "00000000-0000-0000-0000-0000000000b0"
    for body in ("the quarterly forecast", "a recipe for bread"):
        row = {
            "request_id": str(uuid.uuid4()),
            "organization_id": org,
            "request_created_at": "2026-01-01 00:00:00.000",
            "provider": "OPENAI",
            "model": "m",
            "status": 200,
            "latency": 1,
            "is_stream": False,
            "pricing_status": "priced",
            "request_body": body,
        }
        chdb_executor.insert("request_response", orjson.dumps(row), uuid.uuid4().hex)  # a part each
    search = {"request_response_rmt": {"request_body": {"contains": "FORECAST"}}}
    sql, params = compile_filter(search)
    params["org"] = org
    where = f"organization_id = {{org:UUID}} AND {sql}"
    explain = f"EXPLAIN indexes = 1 SELECT 1 FROM request_response WHERE {where}"
    plan = "\n".join(line["explain"] for line in chdb_executor.query(explain, params))
    index_part = plan.split("idx_request_body_text", 1)[1]
    assert "Granules: 1/2" in index_part
    rows = chdb_executor.query(f"SELECT request_body FROM request_response WHERE {where}", params)
    assert rows == [{"request_body": "the quarterly forecast"}]


def _chain(leaf: Any, count: int) -> Any:
    """`count` copies of `leaf` OR-ed in a balanced tree (shallow, unlike a chain)."""
    if count == 1:
        return leaf
    half = count // 2
    return {"left": _chain(leaf, half), "operator": "or", "right": _chain(leaf, count - half)}


@pytest.mark.parametrize(
    ("node", "limit"),
    [
        ({"request_response_rmt": {"request_body": {"contains": "x" * 100_000}}}, "1000 char"),
        ({"request_response_rmt": {"model": {"equals": "x" * 1001}}}, "1000 char"),
        ({"properties": {"k": {"contains": "x" * 1001}}}, "1000 char"),
        ({"properties": {"k" * 501: {"equals": "x"}}}, "key takes at most 500"),
        ({"request_response_rmt": {"latency": {"gt": "9" * 41}}}, "at most 40 char"),
        ({"request_response_rmt": {"cost": {"gt": 1e300}}}, "below 1e18"),
        (_chain({"request_response_rmt": {"status": {"equals": 200}}}, 201), "at most 200 cond"),
    ],
)
def test_oversized_filters_are_refused_naming_the_limit(node: Any, limit: str) -> None:
    with pytest.raises(FilterError, match=limit) as raised:
        compile_filter(node)
    assert len(str(raised.value)) < 200  # the term itself is never echoed back


def test_oversized_session_filters_are_refused() -> None:
    leaf = {SESSION_TABLE: {"session_tag": {"contains": "x" * 5000}}}
    with pytest.raises(FilterError, match="at most 1000 char"):
        compile_session_filter(leaf)
    many = _chain({SESSION_TABLE: {"session_total_requests": {"gte": 1}}}, 201)
    with pytest.raises(FilterError, match="at most 200 cond"):
        compile_session_filter({"left": many, "operator": "and", "right": "all"})


def test_unknown_names_are_shortened_in_errors() -> None:
    with pytest.raises(FilterError) as raised:
        compile_filter({"request_response_rmt": {"c" * 10_000: {"equals": "x"}}})
    assert len(str(raised.value)) < 200


@pytest.mark.parametrize(
    "node",
    [
        {"request_response_rmt": {"request_body": {"contains": "abc\ud800"}}},
        {"properties": {"\udc00": {"equals": "x"}}},
        {"request_response_rmt": {"scores": {"\ud800": {"gte": 1}}}},
    ],
)
def test_lone_surrogates_are_refused(node: Any) -> None:
    with pytest.raises(FilterError, match="not valid Unicode"):
        compile_filter(node)
