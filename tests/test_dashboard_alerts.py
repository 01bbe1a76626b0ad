"""The alerts page in Chromium: a rule created from the form, refused input shown by the form, a
webhook URL shown masked, a rule disabled and deleted from its row, and a rule's history after
the evaluator saw Acme's traffic cross it (told by e-mail: no SMTP server here, and it says so)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from dashboard_browser import accessibility_violations, expect_refusal, needs_chromium
from dashboard_harness import Account, LiveDashboard

Live = tuple[LiveDashboard, Account, Account]
SLACK = "https://hooks.slack.com/services/T0/B0/secretab12"


@pytest.fixture
def live(live_dashboard: Live) -> Iterator[Live]:
    """The live dashboard; Acme's alerts are removed afterwards, whatever the test left."""
    yield live_dashboard
    running, acme = live_dashboard[0].running, live_dashboard[1]
    assert running is not None
    for rule in running.services.alerts.list_rules(acme.organization_id):
        running.services.alerts.delete(acme.organization_id, rule.id)


def create(page: Page, name: str, metric: str, threshold: str, **fields: str) -> None:
    form = page.locator("#new-alert")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Metric").select_option(metric)
    if "aggregation" in fields:
        form.get_by_label("Aggregation").select_option(fields["aggregation"])
    form.get_by_label("Threshold").fill(threshold)
    form.get_by_label("Window (minutes)").fill(fields.get("window", "60"))
    form.locator("#alert-filter").fill(fields.get("filter", '"all"'))
    form.get_by_label("Webhook URL (Slack-compatible)").fill(fields.get("webhook", ""))
    form.get_by_label("E-mail to (comma-separated)").fill(fields.get("emails", ""))
    form.get_by_role("button", name="Create alert").click()


@needs_chromium
def test_create_see_disable_delete_and_read_history(acme_page: Page, live: Live) -> None:
    dashboard, acme, _ = live
    page = acme_page
    page.goto(dashboard.url + "/alerts")
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    expect(page.get_by_text("No alert rules yet.")).to_be_visible()
    expect(page.get_by_role("link", name="Alerts")).to_have_attribute("aria-current", "page")

    error = page.locator("#new-alert .form-error")
    expect_refusal(page, 400, "Bad Request")
    create(page, "Bad", "count", "1", webhook="http://hooks.example.com/x")
    expect(error).to_contain_text("https")
    create(page, "Bad", "count", "1", emails="ops@acme.test", filter="{")
    expect(error).to_contain_text("The filter is not valid JSON.")
    filter_text = '{"request_response_rmt": {"nope": {"equals": "x"}}}'
    expect_refusal(page, 400, "Bad Request")
    create(page, "Bad", "count", "1", emails="ops@acme.test", filter=filter_text)
    expect(error).to_contain_text("nope")
    create(page, "Bad", "count", "1")
    expect(error).to_contain_text("Add a webhook URL or an e-mail address.")

    create(page, "Busy Acme", "count", "0", emails="ops@acme.test, cto@acme.test")
    busy = page.locator("tr[data-alert]", has_text="Busy Acme")
    expect(busy).to_contain_text("ops@acme.test, cto@acme.test")
    expect(busy.locator("[data-cell=state]")).to_have_text("ok")
    page.locator("#new-alert").get_by_label("Metric").select_option("latency")
    expect(page.get_by_label("Aggregation")).to_be_visible()
    create(page, "Slow Slack", "latency", "5000", aggregation="p95", webhook=SLACK)
    slack = page.locator("tr[data-alert]", has_text="Slow Slack")
    expect(slack).to_contain_text("https://hooks.slack.com/…ab12")
    expect(slack).to_contain_text("p95")
    assert SLACK not in page.content()
    slack.get_by_role("button", name="Disable").click()  # nothing is sent to Slack from here
    expect(slack.locator(".badge")).to_have_text("disabled")

    running = dashboard.running
    assert running is not None
    dashboard.run(running.services.alert_evaluator.evaluate_now())
    page.reload()
    busy = page.locator("tr[data-alert]", has_text="Busy Acme")
    expect(busy.locator("[data-cell=state]")).to_have_text("firing")
    history = page.locator("details", has_text="History of Busy Acme")
    history.locator("summary").click()
    fired = history.locator("tr[data-event=fired]")
    expect(fired).to_contain_text("fired")
    expect(fired).to_contain_text("failed (no SMTP server is configured")
    slow = page.locator("details", has_text="History of Slow Slack")
    slow.locator("summary").click()
    expect(slow).to_contain_text("It has not fired yet.")
    assert accessibility_violations(page) == []

    slack = page.locator("tr[data-alert]", has_text="Slow Slack")
    delete = slack.get_by_role("button", name="Delete")
    delete.click()
    expect(delete).to_contain_text("Click again")
    delete.click()
    expect(page.locator("tr[data-alert]", has_text="Slow Slack")).to_have_count(0)
    expect(page.locator("tr[data-alert]")).to_have_count(1)
    listed = running.services.alerts.list_rules(acme.organization_id)
    assert [rule.name for rule in listed] == ["Busy Acme"]
