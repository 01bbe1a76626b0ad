"""The webhooks page in Chromium: an owner creates a webhook from the form (a refused destination
shows the API's message), reveals its HMAC key, sends a test and a real request through the
gateway and watches both arrive, signed, in the delivery log, then deletes it; a viewer is told
the page is not for them."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import pytest
from aiohttp import web
from playwright.sync_api import Browser, Page, expect

from dashboard_browser import (
    accessibility_violations,
    expect_refusal,
    needs_chromium,
    sign_in,
    watched_context,
)
from dashboard_harness import PASSWORD, Account, LiveDashboard
from heliograph.domain.access import Role
from heliograph.services.outbound import OutboundPolicy

Live = tuple[LiveDashboard, Account, Account]
OWNER = "hooks@webhooks.test"
VIEWER = "watcher@webhooks.test"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "to the webhook"}]}


@dataclass
class Receiver:
    origin: str
    runner: web.AppRunner
    received: list[tuple[bytes, str]] = field(default_factory=list)  # (body, signature)


async def _start_receiver() -> Receiver:
    holder: list[Receiver] = []

    async def handle(request: web.Request) -> web.Response:
        holder[0].received.append((await request.read(), request.headers["Helicone-Signature"]))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/in", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    holder.append(Receiver(f"http://127.0.0.1:{runner.addresses[0][1]}", runner))
    return holder[0]


@pytest.fixture(scope="module")
def receiver(live_dashboard: Live) -> Iterator[Receiver]:
    """A receiver on loopback, listed as an allowed origin for as long as this module runs."""
    live, _, _ = live_dashboard
    assert live.running is not None
    services = live.running.services
    started = live.run(_start_receiver())
    listed = OutboundPolicy([started.origin])
    kept = services.webhooks._policy, services.webhook_delivery._policy
    services.webhooks._policy = services.webhook_delivery._policy = listed
    yield started
    services.webhooks._policy, services.webhook_delivery._policy = kept
    live.run(started.runner.cleanup())


@pytest.fixture(scope="module")
def owner(live_dashboard: Live) -> Account:
    live, _, _ = live_dashboard
    return live.account(OWNER, "Webhooks Org")


def _page(chromium: Browser, live: LiveDashboard, email: str) -> Iterator[Page]:
    context, watched = watched_context(chromium)
    sign_in(context, live, email)
    yield context.new_page()
    context.close()
    watched.check()


@pytest.fixture
def owner_page(chromium: Browser, live_dashboard: Live, owner: Account) -> Iterator[Page]:
    yield from _page(chromium, live_dashboard[0], owner.email)


def _reload_until(page: Page, selector: str, timeout_s: float = 15) -> None:
    """Reload until `selector` shows: the log is read when the page is."""
    deadline = time.monotonic() + timeout_s
    while page.locator(selector).count() == 0:
        assert time.monotonic() < deadline, f"{selector} never showed"
        page.wait_for_timeout(200)
        page.reload()


@needs_chromium
def test_a_webhook_is_created_tested_delivered_and_deleted_in_the_page(
    owner_page: Page, live_dashboard: Live, owner: Account, receiver: Receiver
) -> None:
    live, _, _ = live_dashboard
    page = owner_page
    page.goto(live.url + "/webhooks")
    expect(page.locator("h1")).to_have_text("Webhooks")
    expect(page.get_by_role("link", name="Webhooks")).to_be_visible()

    expect_refusal(page, 400, "Bad Request")
    page.fill("#webhook-destination", "https://10.0.0.1/in")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#new-webhook .form-error")).to_contain_text("private")

    page.fill("#webhook-destination", receiver.origin + "/in")
    page.fill("#webhook-filters", "team=hooks")
    with page.expect_navigation():
        page.get_by_role("button", name="Add webhook").click()
    row = page.locator("#webhooks tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(receiver.origin + "/in")
    expect(row).to_contain_text("team=hooks")
    key = row.locator("code[id^=key-]")
    expect(key).to_be_hidden()
    row.get_by_role("button", name="Reveal").click()
    expect(key).to_be_visible()
    hmac_key = key.inner_text()
    assert len(hmac_key) == 64

    with page.expect_navigation():
        row.get_by_role("button", name="Send test").click()
    live.send(owner, "/openai/v1/chat/completions", CHAT, {"Helicone-Property-Team": "hooks"})
    live.send(owner, "/openai/v1/chat/completions", CHAT, {"Helicone-Property-Team": "other"})
    _reload_until(page, ".delivery-log tr[data-status=delivered] >> nth=1")
    log = page.locator(".delivery-log tbody tr")
    expect(log).to_have_count(2)  # the test and the request with the team property
    expect(log.first).to_contain_text("delivered")
    assert accessibility_violations(page) == []

    bodies = [orjson.loads(body) for body, _ in receiver.received]
    assert sorted(bool(body.get("test")) for body in bodies) == [False, True]
    expected = [
        hmac.new(hmac_key.encode(), body, hashlib.sha256).hexdigest()
        for body, _ in receiver.received
    ]
    assert expected == [signature for _, signature in receiver.received]

    row.get_by_role("button", name="Delete").click()
    with page.expect_navigation():
        row.locator("button[data-armed]").click()
    expect(page.locator("#webhooks")).to_have_count(0)
    expect(page.locator(".delivery-log")).to_have_count(0)


@needs_chromium
def test_a_viewer_is_told_webhooks_are_not_for_them(
    chromium: Browser, live_dashboard: Live, owner: Account
) -> None:
    live, _, _ = live_dashboard
    assert live.running is not None
    live.running.services.accounts.create_user(VIEWER, PASSWORD, owner.organization_id, Role.VIEWER)
    for page in _page(chromium, live, VIEWER):
        page.goto(live.url + "/webhooks")
        expect(page.locator("#webhooks-not-allowed")).to_contain_text("may not")
        assert page.locator("form").filter(has=page.locator("[data-webhook-create]")).count() == 0
        assert page.locator("#new-webhook").count() == 0
        assert accessibility_violations(page) == []
