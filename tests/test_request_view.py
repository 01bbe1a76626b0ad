"""The request list's URL grammar: view state read from and written back to the URL, the URL
filter turned into Helicone's FilterNode, and body previews; refusals are 400s that say why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from heliograph.domain.filter_tree import Branch
from heliograph.domain.filters import FilterError, parse_filter
from heliograph.web.pages.requests import REQUEST_TEXT, RESPONSE_TEXT, preview
from heliograph.web.request_view import (
    DEFAULT_COLUMNS,
    builder_fields,
    count_conditions,
    helicone_node,
    joined,
    read_view,
)
from heliograph.web.time_range import Window

WINDOW = Window("24h", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), "hour")


def model_is(name: str) -> dict[str, Any]:
    return {"field": "model", "op": "equals", "value": name}


def test_an_empty_url_is_the_default_view() -> None:
    view = read_view({})
    assert view.columns == DEFAULT_COLUMNS
    assert (view.sort, view.descending, view.limit, view.range) == ("created_at", True, 50, "24h")
    assert view.is_newest_first
    assert view.is_first_page
    assert view.query() == "range=24h"


def test_the_whole_view_survives_a_round_trip_through_the_url() -> None:
    url_filter = {
        "and": [model_is("gpt-4o"), {"or": [{"field": "user_id", "op": "equals", "value": "bob"}]}]
    }
    params = {
        "filter": orjson.dumps(url_filter).decode(),
        "q": "zephyrine",
        "cols": "created_at,property:Environment,score:accuracy,cost",
        "sort": "latency",
        "desc": "0",
        "range": "24h",
        "limit": "3",
        "offset": "6",
    }
    view = read_view(params)
    assert view.filter == url_filter
    assert view.columns == ("created_at", "property:Environment", "score:accuracy", "cost")
    assert not view.is_newest_first
    assert not view.is_first_page
    again = read_view(dict(parse_qsl(view.query(offset=6))))
    assert again == view
    assert "offset" not in view.query()  # a changed view starts on its first page


def test_the_home_pages_model_link_format_filters_by_model() -> None:
    view = read_view({"filter": orjson.dumps({"and": [model_is("gpt-4o")]}).decode()})
    tree = view.tree(WINDOW)
    assert isinstance(tree, Branch)
    assert tree.operator == "and"
    assert "gpt-4o" in repr(tree)


def test_properties_scores_cached_and_search_become_helicone_leaves() -> None:
    node = helicone_node(
        {
            "or": [
                {"field": "property:Environment", "op": "equals", "value": "production"},
                {"field": "score:accuracy", "op": "gte", "value": "0.5"},
                {"field": "cached", "op": "equals", "value": "true"},
            ]
        }
    )
    tree = parse_filter(node)
    text = repr(tree)
    assert "Environment" in text
    assert "accuracy" in text
    assert "CachedCondition(cached=True)" in text
    view = read_view({"q": "needle"})
    assert "request_body" in repr(view.tree(WINDOW))
    assert "response_body" in repr(view.tree(WINDOW))


def test_a_missing_value_means_no_value() -> None:
    view = read_view({"filter": orjson.dumps(model_is(None)).decode()})  # type: ignore[arg-type]
    assert "'null'" in repr(view.tree(WINDOW))


def test_long_groups_stay_shallow() -> None:
    many = {"and": [model_is(f"m{index}") for index in range(150)]}
    tree = parse_filter(helicone_node(many))  # balanced: far under the parser's depth limit
    assert isinstance(tree, Branch)
    assert joined("and", []) == "all"


def test_the_time_range_bounds_the_tree_and_live_reads_leave_the_end_open() -> None:
    closed, open_ended = read_view({}).tree(WINDOW), read_view({}).tree(WINDOW, open_end=True)
    assert repr(closed).count("request_created_at") == 2
    assert repr(open_ended).count("request_created_at") == 1


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"filter": "{not json"}, "not valid JSON"),
        ({"filter": '{"field": "nope", "op": "equals", "value": 1}'}, "unknown filter field"),
        ({"filter": '{"field": "model", "op": "gte", "value": "x"}'}, "not valid for model"),
        ({"filter": '{"field": "latency", "op": "gte", "value": "fast"}'}, "takes a number"),
        ({"filter": '{"and": {"field": "model"}}'}, "takes a list"),
        ({"filter": '{"field": "model", "op": "equals"}'}, "a filter node is"),
        ({"filter": "[1, 2]"}, "must be an object"),
        ({"filter": '{"field": "cached", "op": "equals", "value": "maybe"}'}, "cached takes"),
        ({"cols": "created_at,bogus"}, "unknown column"),
        ({"sort": "path"}, "cannot sort by"),
        ({"limit": "0"}, "limit takes"),
        ({"limit": "many"}, "limit takes"),
        ({"offset": "-3"}, "offset takes"),
        ({"filter": "x" * 20_001}, "at most"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(params: dict[str, str], reason: str) -> None:
    with pytest.raises(FilterError, match=reason) as refused:
        read_view(params)
    assert refused.value.status == 400


def test_deep_groups_are_refused() -> None:
    node: dict[str, Any] = model_is("x")
    for _ in range(12):
        node = {"and": [node]}
    with pytest.raises(FilterError, match="deeper"):
        read_view({"filter": orjson.dumps(node).decode()})


def test_the_builder_lists_every_field_with_its_operators() -> None:
    fields = {field["name"]: field for field in builder_fields(["Environment"], ["accuracy"])}
    assert fields["model"]["ops"][0] == "equals"
    assert "contains" in fields["model"]["ops"]
    assert fields["latency"]["kind"] == "number"
    assert "gte" in fields["latency"]["ops"]
    assert fields["cached"]["ops"] == ["equals"]
    assert fields["property:Environment"]["label"] == "Property: Environment"
    assert fields["score:accuracy"]["ops"] == ["equals", "not-equals", "gte", "lte", "lt", "gt"]
    assert "request_body" in fields
    assert "request_created_at" in fields
    orjson.dumps(fields)


def test_conditions_are_counted_through_groups() -> None:
    assert count_conditions(None) == 0
    assert count_conditions(model_is("a")) == 1
    assert count_conditions({"and": [model_is("a"), {"or": [model_is("b"), model_is("c")]}]}) == 3


def test_previews_take_the_message_text_of_each_provider_shape() -> None:
    openai = {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": [{"type": "text", "text": "hi there"}]},
        ]
    }
    gemini = {"contents": [{"role": "user", "parts": [{"text": "from gemini"}]}]}
    assert preview(openai, REQUEST_TEXT) == "hi there"
    assert preview(gemini, REQUEST_TEXT) == "from gemini"
    assert preview({"choices": [{"message": {"content": "answer"}}]}, RESPONSE_TEXT) == "answer"
    assert preview({"content": [{"type": "text", "text": "claude"}]}, RESPONSE_TEXT) == "claude"
    assert preview({"odd": True}, RESPONSE_TEXT) == '{"odd":true}'
    assert preview(None, RESPONSE_TEXT) == ""
    with_tools = {
        "messages": [{"role": "user", "content": "the question"}, {"role": "tool", "content": "x"}]
    }
    assert preview(with_tools, REQUEST_TEXT) == "the question"
    stream = (
        'data: {"choices": [{"delta": {"role": "assistant"}}]}\n\n'
        'data: {"choices": [{"delta": {"content": "Hello, "}}]}\n\n'
        'data: {"choices": [{"delta": {"content": "world"}}]}\n\ndata: [DONE]\n\n'
    )
    assert preview(stream, RESPONSE_TEXT) == "Hello, world"
    anthropic = (
        "event: content_block_delta\n"
        'data: {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}}\n\n'
    )
    assert preview(anthropic, RESPONSE_TEXT) == "Hi"
    long = preview("word " * 500, REQUEST_TEXT)
    assert len(long) == 120
    assert long.endswith("\N{HORIZONTAL ELLIPSIS}")
