"""The prompt pages: the line diff on its own; the pages read on SQLite and PostgreSQL without a
browser (list, tag filter, detail with its diff, editor, playground, another organization's ids
answered 404); and in Chromium, a prompt created, edited into 1.1, diffed, deployed to staging
and undeployed, a playground run streamed with its logged request linked, and a viewer's
changes refused with the 403 shown."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from browser import Browser as ApiClient
from conftest import Heliograph
from dashboard_browser import (
    accessibility_violations,
    expect_refusal,
    needs_chromium,
    sign_in,
    watched_context,
)
from dashboard_harness import PASSWORD, Account, LiveDashboard
from heliograph.domain.access import Role
from heliograph.services.audit import Actor
from heliograph.services.prompts import PromptVersionInfo
from heliograph.web.pages.prompts import (
    MAX_DIFF_LINES,
    DiffLine,
    body_lines,
    editable,
    line_diff,
)

Live = tuple[LiveDashboard, Account, Account]
OWNER = "owner@prompts.test"
VIEWER = "viewer@prompts.test"
ACTOR = Actor(label="test")
FAKE_TEXT = "Hello, wörld! 👋 Ünïcödé"  # what the fake provider answers, word by word
TRIP_BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "temperature": 0.2,
    "messages": [
        {"role": "system", "content": "You plan trips to {{hc:city:string}}."},
        {"role": "user", "content": "Plan {{hc:days:number}} days. Formal: {{hc:formal:boolean}}"},
    ],
}


# ---- the diff, alone --------------------------------------------------------------------------


def kinds(lines: list[DiffLine]) -> list[tuple[str, str]]:
    return [(line.kind, line.text) for line in lines]


def test_the_diff_marks_added_and_removed_lines_with_context_and_gaps() -> None:
    old = [f"line {n}" for n in range(1, 21)]
    new = [*old[:9], "line ten", *old[10:], "line 21"]
    lines = line_diff(old, new, context=2)
    assert kinds(lines) == [
        ("gap", "…"),
        ("same", "line 8"),
        ("same", "line 9"),
        ("removed", "line 10"),
        ("added", "line ten"),
        ("same", "line 11"),
        ("same", "line 12"),
        ("gap", "…"),
        ("same", "line 19"),
        ("same", "line 20"),
        ("added", "line 21"),
    ]
    assert (lines[3].old, lines[3].new, lines[4].old, lines[4].new) == (10, None, None, 10)
    assert (lines[1].old, lines[1].new) == (8, 8)
    assert line_diff(old, old) == []
    assert kinds(line_diff([], ["{", "}"])) == [("added", "{"), ("added", "}")]


def test_a_large_change_is_diffed_in_bounded_time_and_shown_in_part() -> None:
    old = {"model": "m", "messages": [], "x": [str(n) for n in range(30_000)]}
    new = {**old, "x": [str(n * 7) for n in range(30_000)]}  # about 200 KiB, every line changed
    started = time.monotonic()
    lines = line_diff(body_lines(old), body_lines(new))
    assert time.monotonic() - started < 5  # SequenceMatcher alone takes over 30 s here
    assert len(lines) == MAX_DIFF_LINES + 1
    assert lines[-1].kind == "gap"
    assert lines[-1].text.endswith("more lines not shown")
    assert ("removed", '    "1",') in kinds(lines)


def test_a_body_diff_reads_sorted_pretty_json() -> None:
    changed = {**TRIP_BODY, "temperature": 0.7}
    lines = line_diff(body_lines(TRIP_BODY), body_lines(changed))
    assert ("removed", '  "temperature": 0.2') in kinds(lines)
    assert ("added", '  "temperature": 0.7') in kinds(lines)
    assert body_lines({"b": 1, "a": [1]}) == ["{", '  "a": [', "    1", "  ],", '  "b": 1', "}"]


def test_the_editor_keeps_what_it_does_not_show_as_fields() -> None:
    body = {
        "model": "m",
        "tools": [{"type": "function"}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}], "name": "ada"},
            {"role": "assistant", "content": "ok"},
        ],
    }
    fields = editable(body)
    assert fields["model"] == "m"
    first, second = fields["messages"]
    assert first["json"]
    assert '"text": "hi"' in first["content"]
    assert first["extra"] == '{"name":"ada"}'
    assert second == {"role": "assistant", "content": "ok", "json": False, "extra": ""}
    assert '"tools"' in fields["params"]
    assert '"model"' not in fields["params"]
    assert editable({"messages": []})["params"] == ""


# ---- the pages without a browser, on each app DB ----------------------------------------------


async def page(client: ApiClient, path: str) -> tuple[int, str]:
    async with client.session.get(client.api + path, allow_redirects=False) as response:
        return response.status, (await response.read()).decode()


async def test_the_pages_read_prompts_and_refuse_other_organizations(
    heliograph_on_each_db: Heliograph,
) -> None:
    heliograph = heliograph_on_each_db
    services = heliograph.running.services
    org = heliograph.organization_id
    services.accounts.create_user("ada@prompts.test", PASSWORD, org)
    first = services.prompts.create(org, "trip <writer>", ["travel", "beta"], TRIP_BODY, ACTOR)
    changed = {**TRIP_BODY, "temperature": 0.7}
    second = services.prompts.new_version(
        org, first.prompt_id, first.id, False, "warmer", changed, ACTOR
    )
    services.prompts.create(org, "untagged", [], {"model": "x", "messages": []}, ACTOR)
    other_org, _ = heliograph.new_organization("elsewhere")
    foreign = services.prompts.create(other_org, "secret plan", ["hush-tag"], TRIP_BODY, ACTOR)
    base = f"/prompts/{first.prompt_id}"

    async with ApiClient(heliograph.api) as client:
        status, body = await client.login("ada@prompts.test", PASSWORD)
        assert status == 200, body
        status, html = await page(client, "/prompts?tag=travel")
        assert status == 200
        assert "trip &lt;writer&gt;" in html
        assert "<writer>" not in html
        assert "untagged" not in html
        assert "secret plan" not in html
        assert re.search(r'class="badge env env-production">1\.0<', html)
        status, html = await page(client, "/prompts?q=untag")
        assert "untagged" in html
        assert "trip &lt;writer&gt;" not in html

        status, html = await page(client, base)
        assert status == 200
        assert "Version 1.1" in html
        assert "from 1.0 to 1.1" in html
        assert re.search(r'class="diff-removed">.*&#34;temperature&#34;: 0\.2', html)
        assert re.search(r'class="diff-added">.*&#34;temperature&#34;: 0\.7', html)
        status, html = await page(client, f"{base}?version={first.id}&against={second.id}")
        assert status == 200
        assert "from 1.1 to 1.0" in html
        status, html = await page(client, f"{base}/edit?from={first.id}")
        assert status == 200
        assert "edit 1.0" in html
        assert "city" in html
        status, html = await page(client, f"{base}/playground")
        assert status == 200
        assert 'data-version-id="' + first.id + '"' in html
        assert 'data-type="number"' in html
        assert 'type="checkbox"' in html

        foreign_paths = (
            f"/prompts/{foreign.prompt_id}",
            f"/prompts/{foreign.prompt_id}/edit",
            f"/prompts/{foreign.prompt_id}/playground",
            f"{base}?version={foreign.id}",
            f"{base}/edit?from={foreign.id}",
            f"{base}/playground?version={uuid.uuid4()}",
            "/prompts/" + "x" * 300,
            "/prompts/%FF%FE",
        )
        for path in foreign_paths:
            status, html = await page(client, path)
            assert status == 404, path
            assert "secret plan" not in html
            assert "hush-tag" not in html
        for path in ("/prompts?q=%FF", "/prompts?tag=%FF%FE"):
            status, html = await page(client, path)
            assert status == 200, path
            assert "No prompt matches." in html
        refused = (
            "/prompts?page=0",
            "/prompts?page=abc",
            "/prompts?q=" + "x" * 300,
            "/prompts/%00",
        )
        for path in (*refused, f"{base}?version=%00"):
            status, html = await page(client, path)
            assert status == 400, path


# ---- in Chromium --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def owner(live_dashboard: Live) -> Account:
    live, _, _ = live_dashboard
    return live.account(OWNER, "Prompts Org")


@pytest.fixture
def owner_page(chromium: Browser, live_dashboard: Live, owner: Account) -> Iterator[Page]:
    live, _, _ = live_dashboard
    context, watched = watched_context(chromium)
    sign_in(context, live, owner.email)
    yield context.new_page()
    context.close()
    watched.check()


def a_prompt(live: LiveDashboard, owner: Account, name: str) -> PromptVersionInfo:
    assert live.running is not None
    prompts = live.running.services.prompts
    return prompts.create(owner.organization_id, name, ["fixture"], TRIP_BODY, ACTOR)


def fill_inputs(page: Page) -> None:
    page.get_by_label("city").fill("Lisbon")
    page.get_by_label("days").fill("3")
    page.get_by_label("formal").check()


def fill_message(page: Page, number: int, text: str) -> None:
    page.locator(f"#content-{number}").fill(text)


@needs_chromium
def test_a_prompt_is_created_edited_diffed_deployed_and_undeployed(
    owner_page: Page, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    page = owner_page
    page.goto(live.url + "/prompts")
    page.fill("#new-prompt-name", "city guide")
    page.fill("#new-prompt-tags", "travel, beta")
    fill_message(page, 1, "You know {{hc:city:string}} well.")
    fill_message(page, 2, "Name {{hc:count:number}} sights.")
    expect(page.locator("[data-variables]")).to_contain_text("city")
    expect(page.locator("[data-variables]")).to_contain_text("count")
    assert accessibility_violations(page) == []
    page.fill("#prompt-params", "{oops")
    page.get_by_role("button", name="Create prompt").click()
    expect(page.locator("form[data-prompt-form] .form-error")).to_contain_text("not JSON")
    page.fill("#prompt-params", '{"temperature": 0.3}')
    with page.expect_navigation(url=re.compile(r"/prompts/\w+$")):
        page.get_by_role("button", name="Create prompt").click()
    expect(page.locator("#versions tbody tr")).to_have_count(1)
    expect(page.locator("#deployments")).to_contain_text("production: 1.0")
    prompt_url = page.url

    page.goto(live.url + "/prompts?tag=beta")
    row = page.locator("#prompts tbody tr", has_text="city guide")
    expect(row).to_contain_text("travel")
    expect(row).to_contain_text("1.0")

    page.goto(prompt_url)
    page.get_by_role("link", name="Edit version 1.0").click()
    fill_message(page, 2, "Name {{hc:count:number}} sights, briefly.")
    page.get_by_role("button", name="Add message").click()
    fill_message(page, 3, "a message removed again")
    page.get_by_role("button", name="Remove message 3").click()
    page.fill("#commit-message", "Briefer")
    with page.expect_navigation(url=re.compile(r"\?version=")):
        page.get_by_role("button", name="Save new version").click()
    expect(page.locator("#version-heading")).to_contain_text("Version 1.1")
    expect(page.locator("#versions")).to_contain_text("Briefer")
    expect(page.locator("#diff tr.diff-removed")).to_contain_text('sights."')
    expect(page.locator("#diff tr.diff-added")).to_contain_text("sights, briefly.")
    assert "a message removed again" not in page.content()

    page.fill("#deploy-environment", "staging")
    with page.expect_navigation():
        page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.locator("#version-environments")).to_contain_text("staging")
    expect(page.locator("#deployments")).to_contain_text("staging: 1.1")
    expect(page.locator("#deployments")).to_contain_text("production: 1.0")
    assert accessibility_violations(page) == []
    with page.expect_navigation():
        page.get_by_role("button", name="Undeploy from staging").click()
    expect(page.locator("#version-environments")).not_to_contain_text("staging")
    expect(page.locator("#deployments")).not_to_contain_text("staging")

    page.fill("#rename-prompt", "city guide, renamed")
    with page.expect_navigation():
        page.get_by_role("button", name="Rename").click()
    expect(page.locator("h1")).to_contain_text("city guide, renamed")
    page.fill("#prompt-tags", "travel, europe")
    with page.expect_navigation():
        page.get_by_role("button", name="Save tags").click()
    expect(page.locator(".facts")).to_contain_text("europe")
    page.get_by_role("button", name="Delete prompt").click()  # arms it
    with page.expect_navigation(url=live.url + "/prompts"):
        page.locator("button[data-armed]").click()
    expect(page.locator("main")).not_to_contain_text("city guide")


@needs_chromium
def test_the_playground_streams_the_answer_and_links_the_logged_request(
    owner_page: Page, live_dashboard: Live, owner: Account
) -> None:
    live, _, _ = live_dashboard
    prompt = a_prompt(live, owner, "playground trip")
    page = owner_page
    page.goto(f"{live.url}/prompts/{prompt.prompt_id}/playground")
    expect_refusal(page, 400, "Bad Request")
    page.get_by_role("button", name="Run").click()
    error = page.locator("form[data-playground] .form-error")
    expect(error).to_contain_text("400")
    expect(error).to_contain_text("city")

    fill_inputs(page)
    page.get_by_text("Options").click()
    page.get_by_label("Model").fill("slow-stream")  # the fake's "." every 50 ms for 10 s
    page.get_by_role("button", name="Run").click()
    status = page.locator("[data-run-status]")
    expect(page.locator("#playground-answer")).to_contain_text("...")
    expect(status).to_have_text("Streaming…")  # text shown before the answer has ended
    page.reload()  # hangs up on the slow stream

    fill_inputs(page)
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#playground-answer")).to_have_text(FAKE_TEXT)
    expect(status).to_have_text("Done.")
    expect(error).to_be_hidden()
    assert accessibility_violations(page) == []
    link = page.get_by_role("link", name="The logged request")
    href = link.get_attribute("href") or ""
    found = re.fullmatch(r"/requests/([0-9a-f-]{36})", href)
    assert found, href
    live.wait_for(owner, found.group(1))
    link.click()
    expect(page.locator("main")).to_contain_text("Lisbon")


@needs_chromium
def test_a_viewer_reads_the_pages_but_every_change_is_refused(
    chromium: Browser, live_dashboard: Live, owner: Account
) -> None:
    live, _, _ = live_dashboard
    assert live.running is not None
    prompt = a_prompt(live, owner, "read only trip")
    accounts = live.running.services.accounts
    accounts.create_user(VIEWER, PASSWORD, owner.organization_id, Role.VIEWER)
    context, watched = watched_context(chromium)
    sign_in(context, live, VIEWER)
    page = context.new_page()
    try:
        page.goto(f"{live.url}/prompts/{prompt.prompt_id}")
        expect(page.locator(".read-only")).to_contain_text("viewer")
        page.fill("#deploy-environment", "staging")
        expect_refusal(page, 403, "Forbidden")
        page.get_by_role("button", name="Deploy", exact=True).click()
        expect(page.locator("form[data-api$='/update/environment'] .form-error")).to_contain_text(
            "403"
        )

        page.get_by_role("link", name="Edit version 1.0").click()
        page.fill("#commit-message", "not allowed")
        expect_refusal(page, 403, "Forbidden")
        page.get_by_role("button", name="Save new version").click()
        expect(page.locator("form[data-prompt-form] .form-error")).to_contain_text("403")
        assert (
            live.running.services.prompts.versions(owner.organization_id, prompt.prompt_id)[0].id
            == prompt.id
        )
    finally:
        context.close()
    watched.check()
