"""The request explorer `/requests` in Chromium, on traffic sent through the gateway: the list,
the filter builder and body search, chosen columns, sorting and paging, live rows, exports, one
organization never seeing another's, and bad URLs answered with a 400 page."""

from __future__ import annotations

import re
from urllib.parse import quote

import orjson
from playwright.sync_api import Page, expect

from dashboard_browser import accessibility_violations, needs_chromium, sign_in
from dashboard_harness import OTHER_WORD, SEARCH_WORD, Account, LiveDashboard
from heliograph.services.audit import AuditQuery

pytestmark = needs_chromium
Live = tuple[LiveDashboard, Account, Account]
CHAT = "/openai/v1/chat/completions"


def shown_ids(page: Page) -> list[str]:
    rows = page.locator("tbody[data-live-rows] tr")
    return [str(row.get_attribute("data-id")) for row in rows.all()]


def stored_model(live: LiveDashboard, account: Account, index: int) -> str:
    """The model a request is stored with (the provider's answer names its exact version)."""
    assert live.running is not None
    requests = live.running.services.requests
    found = live.run(requests.get(account.organization_id, account.request_ids[index], False))
    assert found is not None
    return str(found["model"])


def filter_query(node: object) -> str:
    return "filter=" + quote(orjson.dumps(node).decode())


def test_the_list_shows_the_seeded_requests_with_links_to_each(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, acme, _ = live_dashboard
    page = acme_page
    page.goto(live.url + "/requests?range=24h")
    assert sorted(shown_ids(page)) == sorted(acme.request_ids)
    table = page.locator("#request-table")
    for text in (stored_model(live, acme, 5), "claude-3-5-haiku-20241022", "alice", "carol"):
        expect(table.get_by_role("cell", name=text, exact=True).first).to_be_visible()
    first = acme.request_ids[0]
    link = page.locator(f'tr[data-id="{first}"] a[href="/requests/{first}"]')
    expect(link).to_have_count(1)
    expect(page.locator(f'tr[data-id="{first}"]')).to_have_attribute(
        "data-href", f"/requests/{first}"
    )
    assert OTHER_WORD not in page.content()
    assert "mallory" not in page.content()


def test_a_filter_from_the_builder_changes_the_rows_and_survives_a_reload(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, acme, _ = live_dashboard
    page = acme_page
    page.goto(live.url + "/requests?range=24h")
    page.get_by_role("button", name="Filters").click()
    page.get_by_role("button", name="Add condition").click()
    condition = page.locator("#filter-builder li.condition").first
    condition.get_by_label("Field").select_option("user_id")
    condition.get_by_label("Operator").select_option("equals")
    condition.get_by_label("Value").fill("alice")
    assert accessibility_violations(page) == []
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"filter="))
    alice = acme.request_ids[:5]  # the session's steps
    expect(page.locator("tbody[data-live-rows] tr")).to_have_count(5)
    assert sorted(shown_ids(page)) == sorted(alice)
    page.reload()
    assert sorted(shown_ids(page)) == sorted(alice)
    expect(page.get_by_role("button", name="Filters (1)")).to_be_visible()
    # The builder shows the filter it came from; adding an OR group widens it.
    page.get_by_role("button", name="Filters (1)").click()
    expect(page.locator("#filter-builder li.condition").get_by_label("Value")).to_have_value(
        "alice"
    )


def test_or_groups_and_the_home_pages_model_links_filter_the_list(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, acme, _ = live_dashboard
    page = acme_page
    either = {
        "and": [
            {
                "or": [
                    {"field": "user_id", "op": "equals", "value": "alice"},
                    {"field": "user_id", "op": "equals", "value": "carol"},
                ]
            }
        ]
    }
    page.goto(f"{live.url}/requests?range=24h&{filter_query(either)}")
    assert len(shown_ids(page)) == 7  # alice's five and carol's two
    # The range picker and the page size keep the rest of the view.
    page.get_by_label("Time range").select_option("7d")
    expect(page).to_have_url(re.compile(r"filter=.*range=7d|range=7d.*filter="))
    assert len(shown_ids(page)) == 7
    page.get_by_label("Rows per page").select_option("25")
    expect(page).to_have_url(re.compile(r"limit=25"))
    expect(page).to_have_url(re.compile(r"filter="))
    assert len(shown_ids(page)) == 7
    model = {"and": [{"field": "model", "op": "equals", "value": stored_model(live, acme, 5)}]}
    page.goto(f"{live.url}/requests?{filter_query(model)}")
    assert shown_ids(page) == [acme.request_ids[5]]


def test_the_body_search_finds_exactly_the_request_that_holds_the_word(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, acme, _ = live_dashboard
    page = acme_page
    page.goto(live.url + "/requests?range=24h")
    page.keyboard.press("/")
    expect(page.get_by_label("Search bodies")).to_be_focused()
    page.keyboard.type(SEARCH_WORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"q={SEARCH_WORD}"))
    assert shown_ids(page) == [acme.request_ids[5]]
    page.goto(f"{live.url}/requests?range=24h&q={OTHER_WORD}")
    assert shown_ids(page) == []
    expect(page.locator("main .empty")).to_be_visible()


def test_a_chosen_property_column_shows_its_values_and_survives_a_reload(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, acme, _ = live_dashboard
    page = acme_page
    page.goto(live.url + "/requests?range=24h")
    page.get_by_role("button", name="Columns").click()
    page.get_by_label("Property: environment").check()
    page.get_by_label("Request", exact=True).uncheck()
    page.get_by_role("button", name="Show these columns").click()
    expect(page).to_have_url(re.compile(r"cols=.*property%3Aenvironment"))
    for _ in range(2):
        header = page.locator("#request-table thead th", has_text="environment")
        expect(header).to_have_count(1)
        expect(page.locator("#request-table thead th", has_text="Request")).to_have_count(0)
        row = page.locator(f'tr[data-id="{acme.request_ids[5]}"]')
        expect(row.get_by_role("cell", name="staging", exact=True)).to_be_visible()
        expect(page.get_by_role("cell", name="production", exact=True)).to_have_count(5)
        page.reload()


def test_sorting_by_latency_and_cost_and_paging(acme_page: Page, live_dashboard: Live) -> None:
    live, acme, _ = live_dashboard
    page = acme_page
    page.goto(live.url + "/requests?range=24h")
    page.get_by_role("link", name="Latency").click()
    expect(page).to_have_url(re.compile(r"sort=latency&desc=1"))
    latencies = [
        milliseconds(text)
        for text in page.locator("tbody td.num")
        .filter(has_text=re.compile(r"s$"))
        .all_inner_texts()
    ]
    assert latencies == sorted(latencies, reverse=True)
    expect(page.locator('th[aria-sort="descending"]')).to_contain_text("Latency")
    page.get_by_role("link", name=re.compile("^Latency")).click()  # again: ascending
    expect(page).to_have_url(re.compile(r"sort=latency&desc=0"))
    expect(page.locator('th[aria-sort="ascending"]')).to_contain_text("Latency")
    page.goto(live.url + "/requests?range=24h&sort=cost&desc=1&cols=cost")
    costs = [
        float(text.lstrip("$") or 0) for text in page.locator("tbody td.num").all_inner_texts()
    ]
    assert len(costs) == len(acme.request_ids)
    assert costs == sorted(costs, reverse=True)
    for query in ("range=24h&limit=3", "range=24h&limit=3&sort=latency&desc=1"):
        page.goto(f"{live.url}/requests?{query}")
        first = shown_ids(page)
        assert len(first) == 3
        page.get_by_role("link", name="Next").click()
        expect(page).to_have_url(re.compile(r"cursor=|offset=3"))
        second = shown_ids(page)
        assert len(second) == 3
        assert not set(first) & set(second)
        page.reload()
        assert shown_ids(page) == second


def milliseconds(text: str) -> float:
    number = float(text.split()[0].replace(",", ""))
    return number * 1000 if text.endswith(" s") else number


def test_a_new_request_appears_live_without_losing_the_readers_place(
    chromium: object, live_dashboard: Live
) -> None:
    from playwright.sync_api import Browser

    from dashboard_browser import watched_context

    live, _, _ = live_dashboard
    assert isinstance(chromium, Browser)
    account = live.account("live@watch.test", "Watchers")
    live.send(
        account, CHAT, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one"}]}
    )
    live.wait_stored(account)
    context, watched = watched_context(chromium)
    sign_in(context, live, account.email)
    page = context.new_page()
    try:
        page.goto(live.url + "/requests?range=1h")
        assert shown_ids(page) == account.request_ids
        fresh = live.send(
            account, CHAT, {"model": "gpt-4o", "messages": [{"role": "user", "content": "two"}]}
        )
        row = page.locator(f'tr[data-id="{fresh}"]')
        expect(row).to_be_visible(timeout=15_000)
        assert shown_ids(page)[0] == fresh
        expect(row).to_have_class(re.compile("fresh"))
        # A reader who moved into the list is not disturbed: a button offers the new rows.
        page.keyboard.press("j")
        later = live.send(
            account, CHAT, {"model": "gpt-4o", "messages": [{"role": "user", "content": "3"}]}
        )
        button = page.get_by_role("button", name="1 new request")
        expect(button).to_be_visible(timeout=15_000)
        expect(page.locator(f'tr[data-id="{later}"]')).to_have_count(0)
        button.click()
        assert shown_ids(page)[0] == later
        expect(button).to_be_hidden()
        # A score becomes a column and a filter field.
        assert live.running is not None
        scores = {"accuracy": 0.75}
        live.run(
            live.running.services.requests.annotate(account.organization_id, fresh, scores, "api")
        )
        scored = {"and": [{"field": "score:accuracy", "op": "gte", "value": 0.5}]}
        page.goto(f"{live.url}/requests?range=1h&cols=model,score:accuracy&{filter_query(scored)}")
        assert shown_ids(page) == [fresh]
        expect(page.locator(f'tr[data-id="{fresh}"] td.num')).to_have_text("0.75")
        page.get_by_role("button", name="Filters (1)").click()
        expect(page.get_by_label("Field")).to_have_value("score:accuracy")
        # On a later page, new requests are counted (not the first page's) and a click shows them.
        page.goto(f"{live.url}/requests?range=1h&limit=1")
        page.get_by_role("link", name="Next").click()
        expect(page).to_have_url(re.compile("cursor="))
        last = live.send(
            account, CHAT, {"model": "gpt-4o", "messages": [{"role": "user", "content": "4"}]}
        )
        expect(page.get_by_role("button", name="1 new request")).to_be_visible(timeout=15_000)
        page.get_by_role("button", name="1 new request").click()
        expect(page).not_to_have_url(re.compile("cursor="))
        assert shown_ids(page) == [last]
    finally:
        context.close()
    watched.check()


def test_exports_hold_the_filtered_requests_only_and_are_audited(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, acme, _ = live_dashboard
    page = acme_page
    alice = {"and": [{"field": "user_id", "op": "equals", "value": "alice"}]}
    query = f"range=24h&{filter_query(alice)}"
    jsonl = page.request.get(f"{live.url}/requests/export?{query}&format=jsonl")
    assert jsonl.status == 200
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in jsonl.body().splitlines()]
    assert sorted(line["request_id"] for line in lines) == sorted(acme.request_ids[:5])
    assert {line["request_user_id"] for line in lines} == {"alice"}
    page.goto(f"{live.url}/requests?{query}")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    rows = download.value.path().read_text().splitlines()
    assert rows[0].startswith("request_id,")
    assert sorted(row.split(",")[0] for row in rows[1:]) == sorted(acme.request_ids[:5])
    assert live.running is not None
    audit = live.running.services.audit.query(
        AuditQuery(acme.organization_id, action="export.requests")
    )
    assert {line.details["format"] for line in audit} >= {"jsonl", "csv"}
    assert all(line.actor == acme.email for line in audit)


def test_each_organization_sees_only_its_own_requests(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, acme, other = live_dashboard
    page = acme_page
    page.goto(f"{live.url}/requests?range=24h&q={OTHER_WORD}")
    assert shown_ids(page) == []
    foreign = {"and": [{"field": "request_id", "op": "equals", "value": other.request_ids[0]}]}
    page.goto(f"{live.url}/requests?range=24h&{filter_query(foreign)}")
    assert shown_ids(page) == []
    export = page.request.get(f"{live.url}/requests/export?range=24h&format=jsonl&q={OTHER_WORD}")
    assert export.body() == b""
    page.context.clear_cookies()
    sign_in(page.context, live, other.email)
    page.goto(live.url + "/requests?range=24h")
    assert shown_ids(page) == other.request_ids
    expect(page.get_by_role("cell", name="mallory")).to_be_visible()
    for request_id in acme.request_ids:
        assert request_id not in page.content()


def test_bad_urls_get_a_400_page_that_says_why(acme_page: Page, live_dashboard: Live) -> None:
    live, _, _ = live_dashboard
    client = acme_page.request
    sign_in(acme_page.context, live, live_dashboard[1].email)
    cases = {
        "/requests?filter=%7Bnot%20json": "not valid JSON",
        "/requests?"
        + filter_query({"field": "nope", "op": "equals", "value": 1}): "unknown filter field",
        "/requests?"
        + filter_query(
            {"field": "latency", "op": "contains", "value": "x"}
        ): "not valid for latency",
        "/requests?cols=created_at,bogus": "unknown column",
        "/requests?sort=path": "cannot sort by",
        "/requests?limit=100000": "limit takes",
        "/requests?cursor=garbage": "cursor",
        "/requests?range=custom&start=yesterday": "ISO date",
        "/requests/live?after=garbage": "cursor",
        "/requests/export?format=xml": "jsonl or csv",
        "/requests/export?format=" + "x" * 300: "jsonl or csv",
        "/requests/live": "after=",
        "/requests?q=" + "x" * 1001: "at most 1000",
        "/requests/export?filter=%5B%5D": "must be an object",
    }
    for path, reason in cases.items():
        response = client.get(live.url + path)
        assert response.status == 400, path
        assert "text/html" in response.headers["content-type"]
        assert reason in response.text(), (path, response.text()[-600:])
    assert client.get(live.url + "/requests/not-a-request").status in (400, 404)
