"""The sessions pages in Chromium: the list with its filters, one session's tree and waterfall on
traffic sent through the gateway with `Helicone-Session-Path`, its tag and feedback saved through
the API, bad input, and another organization never seeing the session."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from dashboard_browser import accessibility_violations, needs_chromium, sign_in, watched_context
from dashboard_harness import PASSWORD, SESSION_ID, SESSION_PATHS, Account, LiveDashboard
from heliograph.domain.access import Role

pytestmark = needs_chromium
Live = tuple[LiveDashboard, Account, Account]
CHAT = "/openai/v1/chat/completions"


@pytest.fixture
def other_page(chromium: Browser, live_dashboard: Live) -> Iterator[Page]:
    """A page signed in as the second organization's owner."""
    live, _, other = live_dashboard
    context, watched = watched_context(chromium)
    sign_in(context, live, other.email)
    yield context.new_page()
    context.close()
    watched.check()


def test_the_list_shows_the_session_and_its_filters_survive_a_reload(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    page = acme_page
    page.goto(live.url + "/sessions?range=24h")
    row = page.locator("#sessions-table tbody tr", has_text="trip-planner")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(3)).to_have_text("5")
    expect(row).to_contain_text("alice")
    expect(page.locator("#names-heading")).to_be_visible()
    assert accessibility_violations(page) == []

    page.fill("#session-search", SESSION_ID[:8])
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(rf"q={SESSION_ID[:8]}"))
    assert "range=24h" in page.url
    page.reload()
    expect(page.locator("#session-search")).to_have_value(SESSION_ID[:8])
    expect(page.locator("#sessions-table tbody tr")).to_have_count(1)

    page.select_option("#range", "7d")  # the range picker keeps the filters
    expect(page).to_have_url(re.compile(r"range=7d"))
    assert f"q={SESSION_ID[:8]}" in page.url
    expect(page.locator("#sessions-table tbody tr")).to_have_count(1)

    page.keyboard.press("j")  # keyboard navigation: the first row, then open it
    page.keyboard.press("Enter")
    expect(page).to_have_url(live.url + f"/sessions/{SESSION_ID}")
    page.go_back()

    page.fill("#session-search", "no-such-session-anywhere")
    page.click("form.filters button[type=submit]")
    expect(page.locator(".empty")).to_contain_text("No sessions match")
    expect(page.locator("#sessions-table")).to_have_count(0)

    page.goto(live.url + "/sessions?range=24h&min_requests=6")
    expect(page.locator("#sessions-table")).to_have_count(0)
    page.goto(live.url + "/sessions?range=24h&min_requests=5&name=trip-planner")
    expect(page.locator("#session-name")).to_have_value("trip-planner")
    expect(page.locator("#sessions-table tbody tr")).to_have_count(1)

    page.locator("#sessions-table th a.sort", has_text="Requests").click()
    expect(page).to_have_url(re.compile(r"sort=total_requests"))
    assert "min_requests=5" in page.url
    expect(page.locator('th[aria-sort="descending"]')).to_contain_text("Requests")
    page.goto(live.url + "/sessions?range=24h&page=2")
    expect(page.locator(".empty")).to_contain_text("No sessions on this page")
    expect(page.get_by_role("link", name="Back to the first page")).to_be_visible()


def test_a_session_shows_its_tree_and_waterfall_and_opens_its_requests(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    page = acme_page
    page.goto(live.url + f"/sessions/{SESSION_ID}")
    expect(page.locator("h1")).to_have_text("trip-planner")
    tree = page.locator(".session-tree")
    paths = tree.locator("details[data-path]").evaluate_all("els => els.map(e => e.dataset.path)")
    assert sorted(paths) == sorted(("/", *SESSION_PATHS))

    def nested(*chain: str) -> str:
        return " > ul > li > ".join(f'details[data-path="{path}"]' for path in chain)

    expect(tree.locator(nested("/", "/plan", "/plan/search", "/plan/search/fetch"))).to_have_count(
        1
    )
    expect(tree.locator(nested("/", "/plan", "/plan/write"))).to_have_count(1)
    expect(tree.locator(nested("/", "/answer"))).to_have_count(1)
    expect(tree.locator("a[data-request]")).to_have_count(5)
    expect(page.locator(".tile", has_text="Requests").locator(".tile-value")).to_have_text("5")
    requests_href = page.get_by_role("link", name="Its requests").get_attribute("href")
    assert requests_href is not None
    assert SESSION_ID in unquote(requests_href)

    bars = page.locator("svg.waterfall rect.bar")
    expect(bars).to_have_count(5)
    labels = page.locator("svg.waterfall .bar-label").all_text_contents()
    assert sorted(label.split(" · ")[0] for label in labels) == sorted(SESSION_PATHS)
    assert all("gpt-4o-mini" in label for label in labels)
    assert accessibility_violations(page) == []

    # A node closes and opens like any <details>.
    plan = tree.locator('details[data-path="/plan"]')
    plan.locator("> summary").click()
    expect(tree.locator('details[data-path="/plan/search"]')).not_to_be_visible()
    plan.locator("> summary").click()
    expect(tree.locator('details[data-path="/plan/search"]')).to_be_visible()

    # The request page belongs to another module; a stand-in answers so that only the link counts.
    def stand_in(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>r</title>")

    page.route(re.compile(r".*/requests/[0-9a-f-]+$"), stand_in)
    link = tree.locator('details[data-path="/plan/search/fetch"] a[data-request]')
    request_id = link.get_attribute("data-request")
    assert request_id is not None
    link.click()
    expect(page).to_have_url(live.url + f"/requests/{request_id}")
    page.go_back()
    page.locator("svg.waterfall a").first.click()
    expect(page).to_have_url(re.compile(r"/requests/[0-9a-f-]{36}$"))


def test_a_tag_and_feedback_saved_on_the_page_show_after_a_reload(
    chromium: Browser, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    account = live.account(f"tagger-{uuid.uuid4().hex[:6]}@sessions.test", "Taggers")
    session_id = f"tagged-{uuid.uuid4().hex[:8]}"
    for path in ("/draft", "/draft/review"):
        headers = {"Helicone-Session-Id": session_id, "Helicone-Session-Path": path}
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": path}]}
        live.send(account, CHAT, body, headers)
    live.wait_stored(account)
    context, watched = watched_context(chromium)
    try:
        sign_in(context, live, account.email)
        page = context.new_page()
        page.goto(live.url + f"/sessions/{session_id}")
        expect(page.locator("svg.waterfall rect.bar")).to_have_count(2)
        page.fill("#session-tag", "needs-review")
        page.get_by_role("button", name="Save tag").click()
        expect(page.locator("[data-saved]")).to_have_text("Tag saved.")
        page.get_by_role("button", name="Bad").click()
        expect(page.locator("[data-saved]")).to_have_text("Feedback saved.")
        page.reload()
        expect(page.locator("#session-tag")).to_have_value("needs-review")
        expect(page.get_by_role("button", name="Bad")).to_have_attribute("aria-pressed", "true")
        expect(page.get_by_role("button", name="Good")).to_have_attribute("aria-pressed", "false")

        expect(page.locator("#session-tag")).to_have_attribute("maxlength", "200")
        assert accessibility_violations(page) == []
    finally:
        context.close()
    watched.check()

    # A viewer of the organization reads the tag and feedback but gets no forms to change them.
    assert live.running is not None
    viewer = f"viewer-{uuid.uuid4().hex[:6]}@sessions.test"
    live.running.services.accounts.create_user(
        viewer, PASSWORD, account.organization_id, Role.VIEWER
    )
    context, watched = watched_context(chromium)
    try:
        sign_in(context, live, viewer)
        page = context.new_page()
        page.goto(live.url + f"/sessions/{session_id}")
        expect(page.locator(".annotations")).to_contain_text("Tag: needs-review · Feedback: bad")
        expect(page.locator("[data-session-tag]")).to_have_count(0)
        expect(page.get_by_role("button", name="Good")).to_have_count(0)
    finally:
        context.close()
    watched.check()


def test_bad_input_and_unknown_sessions_answer_with_error_pages(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    request = acme_page.context.request
    assert request.get(live.url + "/sessions/no-such-session").status == 404
    assert "No such page" in request.get(live.url + "/sessions/no-such-session").text()
    for query in ("sort=bogus", "dir=up", "page=0", "page=x", "min_requests=-1", "min_cost=abc"):
        response = request.get(live.url + f"/sessions?{query}")
        assert response.status == 400, query
        assert "text/html" in response.headers["content-type"]
    assert request.get(live.url + "/sessions?range=custom&start=nonsense").status == 400
    assert request.get(live.url + "/sessions?q=" + "x" * 201).status in (400, 422)


def test_another_organization_never_sees_the_session(
    other_page: Page, live_dashboard: Live
) -> None:
    live, _, other = live_dashboard
    page = other_page
    page.goto(live.url + "/sessions?range=24h")
    expect(page.locator(".empty")).to_contain_text("No sessions match")
    assert "trip-planner" not in page.content()
    assert SESSION_ID not in page.content()
    assert accessibility_violations(page) == []
    response = page.context.request.get(live.url + f"/sessions/{SESSION_ID}")
    assert response.status == 404
    assert "trip-planner" not in response.text()
    api = page.context.request.post(
        live.url + f"/v1/session/{SESSION_ID}/tag",
        data={"tag": "stolen"},
        headers={
            "X-CSRF-Token": _csrf(page),
            "Heliograph-Organization-Id": other.organization_id,
        },
    )
    assert api.status == 404


def _csrf(page: Page) -> str:
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    return cookies.get("heliograph_csrf", "")
