"""The cache and SQL console pages in Chromium on traffic sent through the gateway: the cache hit,
its saving and the replayed request; a query run from the form, reproduced by its URL, refused
with the console's message, downloaded as CSV; and another organization's console never reading
Acme's rows. Plus the console page's pure parts."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, expect

from dashboard_browser import accessibility_violations, needs_chromium, sign_in, watched_context
from dashboard_harness import OTHER_WORD, Account, LiveDashboard
from heliograph.services.audit import AuditQuery
from heliograph.web.pages.sql import _columns, cell

Live = tuple[LiveDashboard, Account, Account]
BY_MODEL = "SELECT model, count() AS n FROM request_response GROUP BY model ORDER BY n DESC"


def test_result_cells_show_nulls_and_nested_values_plainly() -> None:
    assert cell(None) == "NULL"
    assert cell({"a": [1, 2]}) == '{"a":[1,2]}'
    assert cell(["x"]) == '["x"]'
    assert cell(3.5) == "3.5"
    assert _columns([{"a": 1}, {"a": 2, "b": 3}]) == ["a", "b"]


def _cached_pair(live: LiveDashboard, acme: Account) -> tuple[str, str]:
    """(the original request, its replay from the cache) among Acme's seeded requests."""
    assert live.running is not None
    requests = live.running.services.requests
    for request_id in acme.request_ids:
        row = live.run(requests.get(acme.organization_id, request_id, False))
        if row is not None and row.get("cache_reference_id"):
            return str(row["cache_reference_id"]), request_id
    raise AssertionError("no cache hit was seeded")


def _money(text: str) -> float:
    return float(text.replace("$", "").replace(",", ""))


@needs_chromium
def test_cache_shows_the_hit_its_saving_and_the_replayed_request(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, acme, _ = live_dashboard
    original, replay = _cached_pair(live, acme)
    page = acme_page
    page.goto(live.url + "/cache?range=24h")
    hits = page.locator(".tile", has_text="Cache hits").locator(".tile-value")
    assert int(hits.inner_text().replace(",", "")) >= 1
    saved = page.locator(".tile", has_text="Cost saved").locator(".tile-value")
    assert _money(saved.inner_text()) > 0
    expect(page.locator("#chart-cache-hits .main-svg").first).to_be_attached()
    row = page.locator("#cached-requests tbody tr", has_text=original)
    expect(row).to_have_count(1)
    expect(row.get_by_role("link", name=original)).to_have_attribute(
        "href", f"/requests/{original}"
    )
    expect(row.locator(f'a[href="/requests/{replay}"]')).to_have_count(1)
    assert _money(row.locator("td").nth(3).inner_text()) > 0
    assert accessibility_violations(page) == []


@needs_chromium
def test_sql_runs_from_the_form_and_its_url_reproduces_it(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    page = acme_page
    page.goto(live.url + "/sql")
    expect(page.locator(".schema summary", has_text="request_response").first).to_be_visible()
    assert accessibility_violations(page) == []
    page.fill("#sql-query", BY_MODEL)
    page.press("#sql-query", "Control+Enter")
    page.wait_for_url(re.compile(r"/sql\?q="))
    expect(page.locator("#sql-result thead th")).to_have_text(["model", "n"])
    first = _result(page)
    # `model` is the model that answered: five session steps, a stream and two cache requests.
    assert first["gpt-4o-mini-2024-07-18"] >= 8
    assert first["claude-3-5-haiku-20241022"] >= 1
    assert list(first.values()) == sorted(first.values(), reverse=True)
    assert accessibility_violations(page) == []

    page.reload()
    expect(page.locator("#sql-query")).to_have_value(BY_MODEL)
    assert _result(page) == first


def _result(page: Page) -> dict[str, int]:
    rows = page.locator("#sql-result tbody tr")
    expect(rows.first).to_be_visible()
    return {
        row.locator("td").nth(0).inner_text(): int(row.locator("td").nth(1).inner_text())
        for row in rows.all()
    }


@needs_chromium
def test_sql_shows_the_consoles_message_for_a_bad_query(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    page = acme_page
    response = page.goto(
        live.url + "/sql?q=" + quote("SELECT no_such_column FROM request_response")
    )
    assert response is not None
    assert response.status == 200
    expect(page.locator(".sql-error")).to_have_text("unknown column or alias (no_such_column)")
    expect(page.locator("#sql-result")).to_have_count(0)
    assert accessibility_violations(page) == []
    page.goto(live.url + "/sql?q=" + quote("DROP TABLE request_response"))
    expect(page.locator(".sql-error")).not_to_be_empty()
    expect(page.locator("#sql-query")).to_have_value("DROP TABLE request_response")


@needs_chromium
def test_sql_downloads_the_result_as_csv_and_records_the_export(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, acme, _ = live_dashboard
    page = acme_page
    page.goto(live.url + "/sql?q=" + quote(BY_MODEL))
    expected = _result(page)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename == "heliograph-query.csv"
    path = download.path()
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0] == ["model", "n"]
    assert {model: int(n) for model, n in rows[1:]} == expected
    assert live.running is not None
    audit = live.running.services.audit
    exports = audit.query(AuditQuery(acme.organization_id, action="export.sql"))
    assert exports
    assert exports[0].details == {"sql": BY_MODEL}
    assert exports[0].actor_user_id is not None


@pytest.fixture
def other_page(chromium: Browser, live_dashboard: Live) -> Iterator[Page]:
    live, _, other = live_dashboard
    context, watched = watched_context(chromium)
    sign_in(context, live, other.email)
    yield context.new_page()
    context.close()
    watched.check()


@needs_chromium
def test_another_organizations_console_never_reads_acmes_rows(
    other_page: Page, live_dashboard: Live
) -> None:
    live, _, other = live_dashboard
    other_page.goto(live.url + "/sql?q=" + quote("SELECT count() AS n FROM request_response"))
    expect(other_page.locator("#sql-result tbody td")).to_have_text(str(len(other.request_ids)))
    everything = "SELECT request_body, properties FROM request_response"
    other_page.goto(live.url + "/sql?q=" + quote(everything))
    result = other_page.locator("#sql-result tbody").inner_text()
    assert OTHER_WORD in result
    assert "Lisbon" not in result
    assert "production" not in result
    other_page.goto(live.url + "/cache?range=24h")
    expect(other_page.locator(".tile", has_text="Cache hits").locator(".tile-value")).to_have_text(
        "0"
    )
    assert accessibility_violations(other_page) == []
