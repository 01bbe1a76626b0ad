"""The users pages in Chromium: the per-user table with its search, sort and paging links, one
user's totals, charts, newest requests and sessions, ids that need URL-encoding, bad input, and
another organization never seeing the first's users."""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import parse_qs, quote, urlparse

from playwright.sync_api import Browser, Page, expect

from dashboard_browser import accessibility_violations, needs_chromium, sign_in, watched_context
from dashboard_harness import OTHER_WORD, SESSION_ID, Account, LiveDashboard

pytestmark = needs_chromium
Live = tuple[LiveDashboard, Account, Account]
CHAT = "/openai/v1/chat/completions"


def requests_of(page: Page) -> dict[str, int]:
    """User id -> the request count the table shows."""
    rows = page.locator("#users-table tbody tr")
    found = {}
    for index in range(rows.count()):
        cells = rows.nth(index).locator("td")
        found[cells.nth(0).inner_text()] = int(cells.nth(1).inner_text().replace(",", ""))
    return found


def test_the_list_counts_each_users_requests_and_search_survives_a_reload(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    page = acme_page
    page.goto(live.url + "/users?range=24h")
    counts = requests_of(page)
    assert counts["alice"] == 5
    assert counts["bob"] == 2
    assert counts["carol"] == 2
    assert "mallory" not in counts
    assert "mallory" not in page.content()
    assert accessibility_violations(page) == []

    page.fill("#user-search", "ali")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"q=ali"))
    assert "range=24h" in page.url
    page.reload()
    expect(page.locator("#user-search")).to_have_value("ali")
    assert requests_of(page) == {"alice": 5}

    page.fill("#user-search", "nobody-is-called-this")
    page.click("form.filters button[type=submit]")
    expect(page.locator(".empty")).to_contain_text("No user id contains")

    page.goto(live.url + "/users?range=24h&sort=total_requests&dir=asc")
    expect(page.locator('th[aria-sort="ascending"]')).to_contain_text("Requests")
    ascending = list(requests_of(page).values())
    assert ascending == sorted(ascending)
    page.locator("#users-table th a.sort", has_text="Requests").click()
    expect(page.locator('th[aria-sort="descending"]')).to_contain_text("Requests")
    assert next(iter(requests_of(page))) == "alice"


def test_a_user_page_shows_totals_charts_requests_and_sessions(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    page = acme_page
    page.goto(live.url + "/users?range=24h")
    page.get_by_role("link", name="alice", exact=True).click()
    expect(page).to_have_url(live.url + "/users/alice")
    expect(page.locator("h1")).to_have_text("alice")
    expect(page.locator(".tile", has_text="Requests").locator(".tile-value")).to_have_text("5")
    expect(page.locator("#chart-user-requests .main-svg").first).to_be_attached()
    expect(page.locator("#chart-user-cost .main-svg").first).to_be_attached()
    expect(page.locator("#user-requests tbody tr")).to_have_count(5)
    expect(page.locator("#user-sessions tbody tr", has_text="trip-planner")).to_have_count(1)
    session_link = page.locator("#user-sessions a").first
    assert session_link.get_attribute("href") == f"/sessions/{SESSION_ID}"

    href = page.locator("[data-all-requests]").get_attribute("href")
    assert href is not None
    (sent,) = parse_qs(urlparse(href).query)["filter"]
    assert json.loads(sent) == {"and": [{"field": "user_id", "op": "equals", "value": "alice"}]}
    assert accessibility_violations(page) == []

    page.goto(live.url + "/users/alice?range=1h")
    expect(page.locator("#range")).to_have_value("1h")


def test_ids_that_need_encoding_open_their_own_page(
    chromium: Browser, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    account = live.account(f"odd-{uuid.uuid4().hex[:6]}@users.test", "Odd ids")
    odd = "team/a b?x=1#2%41"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    live.send(account, CHAT, body, {"Helicone-User-Id": odd})
    live.send(account, CHAT, body, {"Helicone-User-Id": "plain"})
    live.wait_stored(account)
    context, watched = watched_context(chromium)
    try:
        sign_in(context, live, account.email)
        page = context.new_page()
        page.goto(live.url + "/users?range=24h")
        assert requests_of(page) == {odd: 1, "plain": 1}
        page.get_by_role("link", name=odd, exact=True).click()
        expect(page.locator("h1")).to_have_text(odd)
        expect(page.locator(".tile", has_text="Requests").locator(".tile-value")).to_have_text("1")
        expect(page.locator("#user-requests tbody tr")).to_have_count(1)
        page.goto(live.url + "/users/" + quote(odd, safe=""))
        expect(page.locator("#user-requests tbody tr")).to_have_count(1)
        page.goto(live.url + "/users/nobody-at-all")
        expect(page.locator(".tile", has_text="Requests").locator(".tile-value")).to_have_text("0")
        expect(page.locator("#user-requests")).to_have_count(0)
        assert accessibility_violations(page) == []
    finally:
        context.close()
    watched.check()


def test_bad_input_answers_with_an_error_page(acme_page: Page, live_dashboard: Live) -> None:
    live, _, _ = live_dashboard
    request = acme_page.context.request
    for query in ("sort=bogus", "dir=sideways", "page=0", "page=abc", "range=custom&start=x"):
        response = request.get(live.url + f"/users?{query}")
        assert response.status == 400, query
        assert "text/html" in response.headers["content-type"]
    assert request.get(live.url + "/users/alice?range=custom&start=nope").status == 400
    assert request.get(live.url + "/users/" + "x" * 1001).status == 404


def test_another_organization_sees_none_of_the_first_ones_users(
    chromium: Browser, live_dashboard: Live
) -> None:
    live, _, other = live_dashboard
    context, watched = watched_context(chromium)
    try:
        sign_in(context, live, other.email)
        page = context.new_page()
        page.goto(live.url + "/users?range=24h")
        assert requests_of(page) == {"mallory": 1}
        page.goto(live.url + "/users/alice?range=24h")
        expect(page.locator(".tile", has_text="Requests").locator(".tile-value")).to_have_text("0")
        content = page.content()
        assert "trip-planner" not in content
        assert SESSION_ID not in content
        assert "gpt-4o-mini" not in content
        page.goto(live.url + "/users/mallory?range=24h")
        expect(page.locator("#user-requests tbody tr")).to_have_count(1)
        assert OTHER_WORD not in page.content()  # bodies are never on this page
        assert accessibility_violations(page) == []
    finally:
        context.close()
    watched.check()
