"""The README's dashboard walk-through on a fresh install, in the browser only: the first person
signs up, creates a key in Settings, sends traffic with the official OpenAI SDK, finds a request
by a word in its body, reads its conversation, follows its session's tree, watches cost over the
week, revokes the key and invites a member, who joins through the link."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI
from playwright.sync_api import Browser, expect

from dashboard_browser import accessibility_violations, needs_chromium, watched_context
from dashboard_harness import PASSWORD, Account, LiveDashboard
from fake_provider import TEXT
from test_dashboard_settings import confirm_click, shown_once

pytestmark = needs_chromium
EMAIL = "first@journey.test"
WORD = "marzipan"
PATHS = ("/plan", "/plan/step-1", "/answer")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, analytics_dir: Path) -> Iterator[LiveDashboard]:
    """A new install: no person, no organization yet (its own app DB; the shared store)."""
    live = LiveDashboard(tmp_path_factory.mktemp("journey"), analytics_dir)
    try:
        live.start()
        yield live
    finally:
        live.stop()


def send_with_the_sdk(live: LiveDashboard, key: str) -> list[str]:
    client = OpenAI(
        api_key="sk-provider-key",
        base_url=live.gateway + "/openai/v1",
        default_headers={
            "Helicone-Auth": f"Bearer {key}",
            "Helicone-User-Id": "journey-user",
            "Helicone-Session-Id": "chat-42",
            "Helicone-Session-Name": "support",
        },
    )
    ids = []
    for index, path in enumerate(PATHS):
        request_id = str(uuid.uuid4())
        text = f"Tell me about {WORD}" if index == 1 else f"Step {index}"
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": text}],
            extra_headers={"Helicone-Request-Id": request_id, "Helicone-Session-Path": path},
        )
        ids.append(request_id)
    return ids


def test_a_new_user_follows_the_readme_in_the_browser(
    chromium: Browser, fresh: LiveDashboard
) -> None:
    live = fresh
    context, watched = watched_context(chromium)
    page = context.new_page()

    page.goto(live.url + "/signup")
    page.fill('input[name="email"]', EMAIL)
    page.fill('input[name="password"]', PASSWORD)
    page.fill('input[name="organization_name"]', "Journey Co")
    page.click('button[type="submit"]')
    expect(page).to_have_url(live.url + "/")
    organization_id = page.locator('meta[name="organization-id"]').get_attribute("content")
    assert organization_id

    page.goto(live.url + "/settings?tab=api-keys")
    page.fill("#key-name", "sdk")
    key = shown_once(page, "Create key")
    account = Account(EMAIL, organization_id, key)
    account.request_ids = send_with_the_sdk(live, key)
    live.wait_stored(account)

    page.goto(live.url + "/requests")
    page.fill("[data-search]", WORD)
    page.press("[data-search]", "Enter")
    expect(page).to_have_url(re.compile(rf"/requests\?.*q={WORD}"))
    rows = page.locator("table.data tbody tr")
    expect(rows).to_have_count(1)
    rows.first.locator("a").first.click()
    expect(page).to_have_url(f"{live.url}/requests/{account.request_ids[1]}")
    conversation = page.locator(".messages")
    expect(conversation).to_contain_text(f"Tell me about {WORD}")
    expect(conversation).to_contain_text(TEXT)
    assert accessibility_violations(page) == []

    page.get_by_role("link", name="support").click()
    expect(page).to_have_url(f"{live.url}/sessions/chat-42")
    for path in PATHS:
        expect(page.locator("main")).to_contain_text(path)

    page.goto(live.url + "/?range=24h")
    page.select_option("#range", "7d")
    expect(page).to_have_url(f"{live.url}/?range=7d")
    cost = page.locator(".tile", has_text="Cost").locator(".tile-value")
    assert cost.inner_text() not in ("$0", "\N{EN DASH}")
    expect(page.locator("#chart-cost .main-svg").first).to_be_attached()

    page.goto(live.url + "/settings?tab=api-keys")
    confirm_click(page, 'tr:has-text("sdk")', "Revoke")
    expect(page.locator("#api-keys")).to_have_count(0)
    refused = httpx.get(live.url + "/v1/api-keys", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 401

    page.goto(live.url + "/settings?tab=organization")
    page.fill("#invite-email", "bea@journey.test")
    link = shown_once(page, "Invite")
    assert "/invite?token=" in link
    context.close()
    watched.check()

    newcomer, newcomer_watch = watched_context(chromium)
    joining = newcomer.new_page()
    joining.goto(link.replace(link.split("/invite")[0], live.url))
    joining.fill('input[name="password"]', PASSWORD)
    joining.click('button[type="submit"]')
    expect(joining).to_have_url(live.url + "/")
    expect(joining.locator("#organization-switcher")).to_contain_text("Journey Co")
    newcomer.close()
    newcomer_watch.check()
