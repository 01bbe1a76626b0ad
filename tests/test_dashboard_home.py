"""The dashboard's front door and home page in Chromium: sign-in by the form, the redirect for
visitors without a session, the home tiles and charts on traffic sent through the gateway, and
one organization never seeing another's."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from dashboard_browser import accessibility_violations, expect_refusal, needs_chromium
from dashboard_harness import OTHER_WORD, PASSWORD, Account, LiveDashboard

pytestmark = needs_chromium
Live = tuple[LiveDashboard, Account, Account]
PAGES = ("/", "/requests", "/sessions", "/users", "/properties", "/cache", "/sql", "/settings")


def test_the_login_form_signs_in_and_returns_to_the_page_asked_for(
    anonymous_page: Page, live_dashboard: Live
) -> None:
    live, acme, _ = live_dashboard
    page = anonymous_page
    page.goto(live.url + "/requests?range=24h")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill('input[name="email"]', acme.email)
    page.fill('input[name="password"]', "not the password")
    expect_refusal(page, 401, "Unauthorized")
    page.click('button[type="submit"]')
    expect(page.locator(".form-error")).to_contain_text("wrong e-mail or password")
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    expect(page).to_have_url(live.url + "/requests?range=24h")
    assert accessibility_violations(page) == []


def test_a_visitor_without_a_session_reaches_no_page(
    anonymous_page: Page, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    for path in (*PAGES, "/requests/00000000-0000-0000-0000-000000000000", "/sessions/x"):
        response = anonymous_page.goto(live.url + path)
        assert response is not None
        assert re.search(r"/login\?next=", anonymous_page.url), path
    assert accessibility_violations(anonymous_page) == []


def test_home_shows_the_organizations_traffic_as_tiles_and_charts(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, acme, _ = live_dashboard
    page = acme_page
    page.goto(live.url + "/?range=24h")
    tiles = page.locator(".tile")
    expect(tiles.first).to_be_visible()
    requests_tile = page.locator(".tile", has_text="Requests").locator(".tile-value")
    assert int(requests_tile.inner_text().replace(",", "")) >= len(acme.request_ids)
    expect(page.locator("#chart-requests .main-svg").first).to_be_attached()
    expect(page.locator("#chart-cost .main-svg").first).to_be_attached()
    expect(page.get_by_role("link", name="gpt-4o-mini")).to_be_visible()
    expect(page.get_by_role("link", name="alice")).to_be_visible()
    assert OTHER_WORD not in page.content()
    assert "mallory" not in page.content()
    assert accessibility_violations(page) == []


def test_home_follows_the_dark_theme(acme_page: Page, live_dashboard: Live) -> None:
    live, _, _ = live_dashboard
    acme_page.emulate_media(color_scheme="dark")
    acme_page.goto(live.url + "/")
    background = acme_page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 19, 24)"
    assert accessibility_violations(acme_page) == []
