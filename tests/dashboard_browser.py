"""Chromium for the browser suite, driven by Playwright's synchronous API: pages signed in as a
seeded person, which fail their test on any console error or any request leaving 127.0.0.1, and
an accessibility scan with axe-core."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request

from dashboard_harness import PASSWORD, LiveDashboard

CHROMIUM = os.environ.get("HELIOGRAPH_TEST_CHROMIUM", "/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"no Chromium at {CHROMIUM}: apt install chromium, or set HELIOGRAPH_TEST_CHROMIUM",
)
# Chromium's own background traffic (updates, safe browsing) off: the network here is closed.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
LOCAL_SCHEMES = ("data", "blob", "about")
SERIOUS = ("serious", "critical")


@dataclass
class Watched:
    """What a browser context did that a page must never do."""

    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)  # errors a test provokes on purpose

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        if message.text in self.expected:
            self.expected.remove(message.text)  # each expected error is forgiven once
            return
        self.console_errors.append(message.text)

    def on_page_error(self, error: Any) -> None:
        self.console_errors.append(f"uncaught: {error}")

    def on_request(self, request: Request) -> None:
        url = urlparse(request.url)
        if url.scheme not in LOCAL_SCHEMES and url.hostname != "127.0.0.1":
            self.outside_requests.append(request.url)

    def check(self) -> None:
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        assert self.outside_requests == [], f"requests off 127.0.0.1: {self.outside_requests}"


_WATCHED: dict[int, Watched] = {}


def expect_refusal(page: Page, status: int, reason: str) -> None:
    """The next console error for a response with `status` is the test's own doing: a form
    shown a 4xx on purpose (Chromium logs every failed fetch as a console error)."""
    text = f"Failed to load resource: the server responded with a status of {status} ({reason})"
    _WATCHED[id(page.context)].expected.append(text)


def _forget(context: BrowserContext) -> None:
    _WATCHED.pop(id(context), None)


def watched_context(browser: Browser, **options: Any) -> tuple[BrowserContext, Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, **options)
    watched = Watched()
    _WATCHED[id(context)] = watched
    context.on("close", lambda closed: _forget(closed))
    context.on("request", watched.on_request)
    context.on("page", lambda page: _watch_page(page, watched))
    return context, watched


def _watch_page(page: Page, watched: Watched) -> None:
    page.on("console", watched.on_console)
    page.on("pageerror", watched.on_page_error)


def sign_in(context: BrowserContext, live: LiveDashboard, email: str) -> None:
    """A session for `email`, through the API as the login form does (faster than typing)."""
    response = context.request.post(
        live.url + "/v1/auth/login", data={"email": email, "password": PASSWORD}
    )
    assert response.status == 200, response.text()


def accessibility_violations(page: Page) -> list[str]:
    """Serious and critical axe-core violations on the page as it is now."""
    results = Axe().run(page)
    violations = results.response["violations"]
    return [
        f"{item['id']} ({item['impact']}): {item['help']} at "
        f"{[node['target'] for node in item['nodes']][:3]}"
        for item in violations
        if item["impact"] in SERIOUS
    ]
