"""The request page in Chromium, on traffic sent through the gateway: the conversation of each
provider rendered (tool calls, an inline image, streamed answers assembled), feedback and scores
saved through the API and shown after a reload, and no other organization's request."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.sync_api import Browser, Page, expect

from dashboard_browser import accessibility_violations, needs_chromium, sign_in, watched_context
from dashboard_harness import (
    OTHER_WORD,
    PASSWORD,
    SEARCH_WORD,
    TINY_PNG,
    Account,
    LiveDashboard,
)

pytestmark = needs_chromium
Live = tuple[LiveDashboard, Account, Account]
# Indexes into `acme.request_ids`, in the order `seed` sends them.
TOOLS, STREAMED, ANTHROPIC, GEMINI, ERROR = 5, 6, 7, 8, 11
ANSWER = "Hello, wörld! 👋 Ünïcödé"  # what the fake provider answers every model


def test_a_tool_using_conversation_shows_each_message_the_image_and_the_answer(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, acme, _ = live_dashboard
    page = acme_page
    page.goto(f"{live.url}/requests/{acme.request_ids[TOOLS]}")
    messages = page.locator(".messages .message")
    expect(messages).to_have_count(5)
    roles = [text.strip().lower() for text in messages.locator(".role").all_inner_texts()]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    expect(messages.nth(0)).to_contain_text("You are a careful assistant.")
    expect(messages.nth(1)).to_contain_text(f"What is a {SEARCH_WORD}? Look at this.")
    image = messages.nth(1).locator("img")
    expect(image).to_have_attribute("src", TINY_PNG)
    assert image.evaluate("img => img.complete && img.naturalWidth") == 1
    call = messages.nth(2).locator(".tool-call")
    expect(call.locator(".tool-name")).to_have_text("lookup_word")
    expect(call.locator("pre")).to_have_text('{\n  "word": "zephyrine"\n}')
    expect(messages.nth(3).locator(".tool-result")).to_contain_text("a kind of wind")
    expect(messages.nth(4)).to_contain_text(ANSWER)
    expect(page.locator(".response-divider")).to_have_count(1)
    summary = page.locator("section", has=page.locator("#summary-heading"))
    expect(summary).to_contain_text("gpt-4o")
    expect(summary.get_by_role("link", name="bob")).to_have_attribute("href", "/users/bob")
    tokens = page.locator("section", has=page.locator("#tokens-heading"))
    expect(tokens.locator("dd.total")).to_have_text("30")
    page.get_by_text("Request body").click()
    expect(page.get_by_label("Request body")).to_contain_text('"tool_call_id": "call_1"')
    assert OTHER_WORD not in page.content()
    assert accessibility_violations(page) == []


def test_streamed_anthropic_and_gemini_answers_render(
    acme_page: Page, live_dashboard: Live
) -> None:
    live, acme, _ = live_dashboard
    page = acme_page
    expected = {
        STREAMED: ("Stream me a haiku", "assistant"),
        ANTHROPIC: ("You answer briefly.", "assistant"),
        GEMINI: ("Say hello from Gemini", "model"),
    }
    for index, (asked, role) in expected.items():
        page.goto(f"{live.url}/requests/{acme.request_ids[index]}")
        expect(page.locator(".messages")).to_contain_text(asked)
        answer = page.locator(".response-divider ~ .message")
        expect(answer).to_have_count(1)
        expect(answer.locator(".role")).to_have_text(role)
        expect(answer.locator(".text")).to_have_text(ANSWER)  # streamed: one assembled text
    page.goto(f"{live.url}/requests/{acme.request_ids[ERROR]}")
    expect(page.locator(".message.role-error")).to_have_text(re.compile("boom"))
    page.goto(f"{live.url}/requests/{acme.request_ids[STREAMED]}")
    page.get_by_text("Response body").click()
    expect(page.get_by_label("Response body")).to_contain_text("data: [DONE]")
    expect(page.locator("section", has=page.locator("#summary-heading"))).to_contain_text("yes")


def test_a_session_request_links_to_its_session(acme_page: Page, live_dashboard: Live) -> None:
    live, acme, _ = live_dashboard
    acme_page.goto(f"{live.url}/requests/{acme.request_ids[1]}")
    session = acme_page.locator("section", has=acme_page.locator("#session-heading"))
    link = session.get_by_role("link", name="trip-planner")
    expect(link).to_have_attribute("href", "/sessions/b6f0c2a4-3d1e-4c55-9e7a-0a1b2c3d4e5f")
    expect(session).to_contain_text("/plan/search")
    properties = acme_page.locator("section", has=acme_page.locator("#properties-heading"))
    expect(properties).to_contain_text("travel")


def test_feedback_and_a_score_are_saved_and_shown_after_a_reload(
    chromium: Browser, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    account = live.account("rater@request.test", "Raters")
    request_id = live.send(
        account,
        "/openai/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "rate me"}]},
    )
    live.wait_for(account, request_id)
    context, watched = watched_context(chromium)
    sign_in(context, live, account.email)
    page = context.new_page()
    page.goto(f"{live.url}/requests/{request_id}")
    good = page.get_by_role("button", name="Good")
    expect(good).to_have_attribute("aria-pressed", "false")
    good.click()
    expect(page.locator("[data-feedback-status]")).to_have_text("Rated good.")
    page.reload()
    expect(page.get_by_role("button", name="Good")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="Bad")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("[data-feedback-status]")).to_have_text("Rated good.")

    page.get_by_label("Score name").fill("accuracy")
    page.get_by_label("Value").fill("0.75")
    page.get_by_role("button", name="Save score").click()
    scores = page.get_by_role("table", name="Scores")
    expect(scores.locator("tbody tr")).to_have_count(1)  # the page reloaded with it
    expect(scores.locator("tbody tr")).to_contain_text("accuracy")
    expect(scores.locator("td.num")).to_have_text("0.75")
    page.reload()
    expect(page.get_by_role("table", name="Scores").locator("td.num")).to_have_text("0.75")
    assert accessibility_violations(page) == []
    context.close()
    watched.check()


def test_bad_unknown_and_foreign_ids_are_a_404_page(acme_page: Page, live_dashboard: Live) -> None:
    live, _, other = live_dashboard
    for request_id in ("not-a-uuid", str(uuid.uuid4()), other.request_ids[0], "x" * 5000):
        response = acme_page.context.request.get(f"{live.url}/requests/{request_id}")
        assert response.status == 404, request_id
        assert "text/html" in response.headers["content-type"]
        assert "No such page." in response.text()
        assert OTHER_WORD not in response.text()


def test_anthropic_and_gemini_streams_sent_through_the_gateway_are_assembled(
    live_dashboard: Live,
) -> None:
    live, _, _ = live_dashboard
    account = live.account("streams@request.test", "Streams")
    anthropic = live.send(
        account,
        "/anthropic/v1/messages",
        {
            "model": "claude-3-5-haiku-20241022",
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "Stream a dish"}],
        },
    )
    gemini = live.send(
        account,
        "/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        {"contents": [{"role": "user", "parts": [{"text": "Stream a greeting"}]}]},
    )
    live.wait_stored(account)
    with httpx.Client(base_url=live.url) as client:
        login = {"email": account.email, "password": PASSWORD}
        assert client.post("/v1/auth/login", json=login).status_code == 200
        for request_id in (anthropic, gemini):
            html = client.get(f"/requests/{request_id}").text
            answer = html.split('class="response-divider"', 1)[1]
            assert answer.count(f'<div class="text">{ANSWER}</div>') == 1, request_id
            assert "not a format this page knows" not in html
