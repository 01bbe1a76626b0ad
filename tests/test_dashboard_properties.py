"""The properties page in Chromium on traffic sent through the gateway: keys, a key's values with
their requests and links to the requests page, hiding and restoring a key, one organization never
seeing another's properties; and the page's pure parts (value links, per-value charts)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Browser, Page, expect

from dashboard_browser import accessibility_violations, needs_chromium, sign_in, watched_context
from dashboard_harness import Account, LiveDashboard
from heliograph.web.pages.properties import _per_value_chart, range_params, requests_link
from heliograph.web.time_range import window

Live = tuple[LiveDashboard, Account, Account]
CHAT = "/openai/v1/chat/completions"


def test_a_value_links_to_its_requests_with_the_requests_pages_filter() -> None:
    link = requests_link("Team & Co", 'a "quoted" value')
    assert link.startswith("/requests?filter=")
    (encoded,) = parse_qs(urlparse(link).query)["filter"]
    condition = {"field": "property:Team & Co", "op": "equals", "value": 'a "quoted" value'}
    assert json.loads(encoded) == {"and": [condition]}


def test_the_per_value_chart_has_one_series_per_value_and_zero_where_a_value_is_missing() -> None:
    points = [
        {"time": "2026-01-01T01:00:00Z", "value": "a", "requests": 2, "cost": 0.5},
        {"time": "2026-01-01T00:00:00Z", "value": "a", "requests": 1, "cost": 0.1},
        {"time": "2026-01-01T01:00:00Z", "value": "b", "requests": 4, "cost": 0.0},
        {"time": "2026-01-01T02:00:00Z", "value": "not charted", "requests": 9, "cost": 9.0},
    ]
    chart = _per_value_chart(points, ["a", "b"], "requests", "count")
    assert chart["x"] == ["2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"]
    assert chart["series"] == [{"name": "a", "y": [1, 2]}, {"name": "b", "y": [0, 4]}]
    assert chart["stacked"] is True


def test_links_to_another_key_keep_the_range() -> None:
    assert range_params(window("30d"), None, None) == {"range": "30d"}
    custom = window("custom", "2026-01-01", "2026-01-02")
    assert range_params(custom, "2026-01-01", "2026-01-02") == {
        "range": "custom",
        "start": "2026-01-01",
        "end": "2026-01-02",
    }


@needs_chromium
def test_properties_lists_keys_and_a_keys_values_with_their_requests(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    page = acme_page
    page.goto(live.url + "/properties?range=24h")
    keys = page.locator("#keys-heading + p + table")
    # The gateway keeps property keys as it receives header names: in lower case.
    expect(keys.get_by_role("link", name="environment", exact=True)).to_be_visible()
    expect(keys.get_by_role("link", name="team", exact=True)).to_be_visible()
    assert "secret-project" not in page.content().lower()
    assert accessibility_violations(page) == []

    keys.get_by_role("link", name="environment", exact=True).click()
    expect(page).to_have_url(live.url + "/properties?range=24h&key=environment")
    values = page.locator("#property-values tbody tr")
    expect(values).to_have_count(2)
    counts = {
        row.locator("td").nth(0).inner_text(): int(row.locator("td").nth(1).inner_text())
        for row in values.all()
    }
    assert counts == {"production": 5, "staging": 1}
    expect(page.locator("#chart-property-requests .main-svg").first).to_be_attached()
    assert accessibility_violations(page) == []

    page.reload()  # the key and the range come from the URL
    expect(page.locator("#property-values tbody tr")).to_have_count(2)
    expect(page.locator("#range")).to_have_value("24h")

    page.get_by_role("link", name="production", exact=True).click()
    page.wait_for_url("**/requests?**")
    (encoded,) = parse_qs(urlparse(page.url).query)["filter"]
    condition = {"field": "property:environment", "op": "equals", "value": "production"}
    assert json.loads(encoded) == {"and": [condition]}


@needs_chromium
def test_a_key_of_another_organization_has_no_values_here(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    acme_page.goto(live.url + "/properties?range=24h&key=secret-project")
    expect(acme_page.locator(".explore-main .empty")).to_contain_text("No requests")
    assert "hidden" not in acme_page.locator(".explore-main").inner_text()


@pytest.fixture
def other_page(chromium: Browser, live_dashboard: Live) -> Iterator[Page]:
    live, _, other = live_dashboard
    context, watched = watched_context(chromium)
    sign_in(context, live, other.email)
    yield context.new_page()
    context.close()
    watched.check()


@needs_chromium
def test_the_other_organization_never_sees_acmes_properties(
    other_page: Page, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    other_page.goto(live.url + "/properties?range=24h")
    keys = other_page.locator("#keys-heading + p + table")
    expect(keys.get_by_role("link", name="secret-project")).to_be_visible()
    assert "environment" not in keys.inner_text().lower()
    assert accessibility_violations(other_page) == []
    other_page.goto(live.url + "/properties?range=24h&key=environment")
    expect(other_page.locator(".explore-main .empty")).to_contain_text("No requests")
    assert "production" not in other_page.content()


@needs_chromium
def test_hiding_and_restoring_a_key(chromium: Browser, live_dashboard: Live) -> None:
    live, _, _ = live_dashboard
    account = live.account("hide@props.test", "Props")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    request_id = live.send(account, CHAT, body, {"Helicone-Property-Colour": "blue"})
    live.wait_for(account, request_id)
    context, watched = watched_context(chromium)
    sign_in(context, live, account.email)
    page = context.new_page()
    page.goto(live.url + "/properties?range=24h")
    keys = page.locator("#keys-heading + p + table")
    expect(keys.get_by_role("link", name="colour")).to_be_visible()
    expect(page.locator(".hidden-keys")).to_have_count(0)

    page.get_by_role("button", name="Hide colour").click()
    expect(page.locator(".hidden-keys li")).to_have_text("colour Restore")
    expect(keys.get_by_role("link", name="colour")).to_have_count(0)
    assert accessibility_violations(page) == []

    page.get_by_role("button", name="Restore colour").click()
    expect(keys.get_by_role("link", name="colour")).to_be_visible()
    expect(page.locator(".hidden-keys")).to_have_count(0)
    context.close()
    watched.check()
