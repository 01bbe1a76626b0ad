"""The pure parts of the sessions and users pages: the waterfall's bars and axis from a session
tree, the list URLs' parameters, and a user's series filled to the whole range."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from heliograph.domain.errors import InvalidInput
from heliograph.domain.sessions import build_tree
from heliograph.web.assets import Assets
from heliograph.web.pages.sessions import flatten, listing, requests_link, ticks, waterfall
from heliograph.web.pages.users import filled, user_listing
from heliograph.web.templating import Templates
from heliograph.web.time_range import Window


def row(
    request_id: str, path: str, created_ms: int, latency: int, status: int = 200
) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "session_path": path,
        "created_ms": created_ms,
        "latency": latency,
        "cost": 1000,
        "total_tokens": 10,
        "model": "m",
        "status": status,
    }


TREE = build_tree(
    "s",
    [
        row("a", "/plan", 1_000, 100),
        row("b", "/plan/search", 1_100, 300),
        row("c", "/answer", 1_500, 500),
        row("d", "/plan", 1_050, 0, status=500),
    ],
)


def test_flatten_gives_every_request_with_its_nodes_path() -> None:
    assert sorted((path, found["request_id"]) for path, found in flatten(TREE)) == [
        ("/answer", "c"),
        ("/plan", "a"),
        ("/plan", "d"),
        ("/plan/search", "b"),
    ]


def test_waterfall_places_bars_by_start_and_duration_on_the_sessions_span() -> None:
    bars = waterfall(TREE)
    assert [bar.request_id for bar in bars] == ["a", "d", "b", "c"]  # by start time
    by_id = {bar.request_id: bar for bar in bars}
    # The span is 1000 ms: from the first start (1000) to the last end (2000).
    assert (by_id["a"].left, by_id["a"].width) == (0, 10)
    assert (by_id["b"].left, by_id["b"].width) == (10, 30)
    assert (by_id["c"].left, by_id["c"].width) == (50, 50)
    assert by_id["d"].width == 0.5  # an instant request still shows
    assert by_id["d"].failed
    assert not by_id["a"].failed
    assert by_id["b"].label == "/plan/search · m"
    assert all(bar.left + bar.width <= 100 for bar in bars)


def test_a_waterfall_of_instant_requests_does_not_divide_by_zero() -> None:
    tree = build_tree("s", [row("a", "/", 5, 0), row("b", "/", 5, 0)])
    bars = waterfall(tree)
    assert [(bar.left, bar.width) for bar in bars] == [(0, 0.5), (0, 0.5)]
    axis = ticks(0)
    assert axis[0] == (0, 0)
    assert axis[-1] == (100, 1)


def test_ticks_mark_even_steps_of_the_span() -> None:
    assert ticks(1000) == [(0, 0), (25, 250), (50, 500), (75, 750), (100, 1000)]


def test_the_session_listing_checks_and_rebuilds_its_url() -> None:
    wanted = listing(
        "24h", None, None, " trip ", "trip-planner", "1", "0.5", "total_cost", "asc", "2"
    )
    assert wanted.search == "trip"
    assert wanted.min_requests == 1
    assert wanted.min_cost == 0.5
    assert not wanted.descending
    assert wanted.page == 2
    query = parse_qs(urlparse(wanted.link(page=1)).query)
    assert query == {
        "range": ["24h"],
        "q": ["trip"],
        "name": ["trip-planner"],
        "min_requests": ["1"],
        "min_cost": ["0.5"],
        "sort": ["total_cost"],
        "dir": ["asc"],
    }
    flipped = parse_qs(urlparse(wanted.sort_link("total_cost")).query)
    assert flipped["dir"] == ["desc"]
    assert "page" not in flipped
    assert wanted.filter_node() == {
        "left": {"sessions_request_response_rmt": {"session_total_requests": {"gte": 1}}},
        "operator": "and",
        "right": {"sessions_request_response_rmt": {"session_total_cost": {"gte": 0.5}}},
    }
    plain = listing(None, None, None, None, None, None, None, None, None, None)
    assert plain.filter_node() == "all"
    assert plain.sort == "latest_request_created_at"
    assert plain.descending
    assert plain.page == 1
    assert plain.link() == "/sessions?sort=latest_request_created_at&dir=desc"


@pytest.mark.parametrize(
    "arguments",
    [
        {"sort": "cost; DROP TABLE"},
        {"direction": "up"},
        {"page": "0"},
        {"page": "-1"},
        {"page": "1e3"},
        {"min_requests": "x"},
        {"min_cost": "nan"},
        {"min_cost": "-1"},
    ],
)
def test_the_session_listing_refuses_malformed_parameters(arguments: dict[str, str]) -> None:
    values: dict[str, str | None] = dict.fromkeys(
        (
            "range",
            "start",
            "end",
            "q",
            "name",
            "min_requests",
            "min_cost",
            "sort",
            "direction",
            "page",
        )
    )
    values.update(arguments)
    with pytest.raises(InvalidInput):
        listing(**values)


def test_the_user_listing_checks_its_parameters() -> None:
    wanted = user_listing("7d", None, None, "al", "user_id", None, None)
    assert wanted.sort_link("user_id").endswith("dir=asc")  # flips the current (descending) sort
    assert "dir=asc" in user_listing(None, None, None, None, "cost", None, None).sort_link(
        "user_id"
    )
    assert "dir=desc" in wanted.sort_link("cost")
    for bad in ({"sort": "bogus"}, {"direction": "x"}, {"page": "0"}):
        values: dict[str, str | None] = dict.fromkeys(
            ("range", "start", "end", "q", "sort", "direction", "page")
        )
        values.update(bad)
        with pytest.raises(InvalidInput):
            user_listing(**values)


def test_the_requests_link_filters_on_exactly_that_value() -> None:
    link = urlparse(requests_link("user_id", "a/b&c=d"))
    assert link.path == "/requests"
    (sent,) = parse_qs(link.query)["filter"]
    assert json.loads(sent) == {"and": [{"field": "user_id", "op": "equals", "value": "a/b&c=d"}]}


def test_a_series_is_filled_to_every_bucket_of_the_range() -> None:
    start = datetime(2026, 1, 1, 10, 30, 15, tzinfo=UTC)
    end = datetime(2026, 1, 1, 14, 0, tzinfo=UTC)
    chosen = Window("custom", start, end, "hour")
    points = [{"time": "2026-01-01T12:00:00Z", "count": 3}]
    series = filled(points, chosen, {"count": 0})
    assert series == [
        {"time": "2026-01-01T10:00:00Z", "count": 0},
        {"time": "2026-01-01T11:00:00Z", "count": 0},
        {"time": "2026-01-01T12:00:00Z", "count": 3},
        {"time": "2026-01-01T13:00:00Z", "count": 0},
    ]
    days = filled([], Window("custom", start, datetime(2026, 1, 3, tzinfo=UTC), "day"), {"cost": 0})
    assert [point["time"] for point in days] == ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]
    weeks = Window("custom", start, end, "week")
    assert filled(points, weeks, {"count": 0}) == points  # left as the store gave it


def test_the_tree_shows_nested_nodes_and_cuts_long_request_lists() -> None:
    environment = Templates(Assets()).environment
    template = environment.from_string(
        '{% from "session_tree.html" import tree_node %}{{ tree_node(tree, "/r?x", true, 1) }}'
    )
    html = template.render(tree=TREE)
    assert html.count("<details") == 4  # the session, /plan, /plan/search, /answer
    assert html.count("data-request=") == 3  # one request shown per node
    assert '1 more here: <a href="/r?x">' in html  # /plan's second request
    assert html.index('data-path="/plan"') < html.index('data-path="/plan/search"')
