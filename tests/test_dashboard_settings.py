"""The settings page in Chromium, on an organization of its own: API keys shown once and working,
invitations signed up through, members' roles changed and removed, provider and proxy keys,
rate-limit rules, redaction, the audit log with its filter and pages, what a viewer may see, and
one organization never seeing another's settings."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from dashboard_browser import accessibility_violations, needs_chromium, sign_in, watched_context
from dashboard_harness import PASSWORD, Account, LiveDashboard
from heliograph.domain.errors import InvalidInput
from heliograph.domain.keys import KEY_PREFIX, PROXY_KEY_PREFIX
from heliograph.web.pages.settings import audit_action, audit_cursor

pytestmark = needs_chromium
Live = tuple[LiveDashboard, Account, Account]
OWNER = "owner@settings.test"
TABS = ("organization", "api-keys", "vault", "limits", "audit")


@pytest.fixture(scope="module")
def owner(live_dashboard: Live) -> Account:
    live, _, _ = live_dashboard
    return live.account(OWNER, "Settings Org")


@pytest.fixture
def owner_page(chromium: Browser, live_dashboard: Live, owner: Account) -> Iterator[Page]:
    live, _, _ = live_dashboard
    context, watched = watched_context(chromium)
    sign_in(context, live, owner.email)
    yield context.new_page()
    context.close()
    watched.check()


def shown_once(page: Page, button: str) -> str:
    """Click `button`, read the value the dialog shows once, close it (the page reloads)."""
    page.get_by_role("button", name=button).click()
    dialog = page.locator("dialog#shown-once")
    expect(dialog).to_be_visible()
    value = dialog.locator("input").input_value()
    with page.expect_navigation():
        dialog.get_by_role("button", name="Done").click()
    return value


def confirm_click(page: Page, row: str, button: str) -> None:
    """A destructive button: the first click arms it, the second acts and reloads the page."""
    page.locator(row).get_by_role("button", name=button).click()
    with page.expect_navigation():
        page.locator(row).locator("button[data-armed]").click()


def test_an_api_key_is_shown_once_works_is_renamed_and_revoked(
    owner_page: Page, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    page = owner_page
    page.goto(live.url + "/settings?tab=api-keys")
    page.fill("#key-name", "ci key")
    secret = shown_once(page, "Create key")
    assert secret.startswith(KEY_PREFIX)
    bearer = {"Authorization": f"Bearer {secret}"}
    listed = httpx.get(live.url + "/v1/api-keys", headers=bearer).json()["data"]
    assert "ci key" in [key["api_key_name"] for key in listed]

    row = page.locator("tr", has_text="ci key")
    expect(row).to_contain_text(secret[: len(KEY_PREFIX) + 7])
    expect(row).to_contain_text("rw")
    assert secret not in page.content()
    assert accessibility_violations(page) == []

    row.get_by_text("Rename").click()
    row.get_by_label("New name").fill("deploy key")
    with page.expect_navigation():
        row.get_by_role("button", name="Save").click()
    expect(page.locator("#api-keys")).to_contain_text("deploy key")
    expect(page.locator("#api-keys")).not_to_contain_text("ci key")

    confirm_click(page, "tr:has-text('deploy key')", "Revoke")
    expect(page.locator("body")).not_to_contain_text("deploy key")
    assert httpx.get(live.url + "/v1/api-keys", headers=bearer).status_code == 401


def test_an_invited_viewer_signs_up_sees_no_management_and_is_promoted_then_removed(
    chromium: Browser, owner_page: Page, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    page = owner_page
    page.goto(live.url + "/settings")
    page.fill("#organization-name", "Settings Org Renamed")
    with page.expect_navigation():
        page.get_by_role("button", name="Rename").click()
    expect(page.locator("#organization-switcher")).to_contain_text("Settings Org Renamed")

    page.fill("#invite-email", "gone@settings.test")
    shown_once(page, "Invite")
    confirm_click(page, "tr[data-invitation='gone@settings.test']", "Revoke")
    expect(page.locator("body")).not_to_contain_text("gone@settings.test")

    page.fill("#invite-email", "vic@settings.test")
    page.select_option("#invite-role", "viewer")
    link = shown_once(page, "Invite")
    token = re.search(r"/invite\?token=([\w-]+)", link)
    assert token is not None, link
    expect(page.locator("#invitations")).to_contain_text("vic@settings.test")

    context, watched = watched_context(chromium)
    invited = context.new_page()
    invited.goto(live.url + "/invite?token=" + token.group(1))
    expect(invited).to_have_url(re.compile(r"/signup\?invitation="))
    invited.fill("#password", PASSWORD)
    with invited.expect_navigation(url=live.url + "/"):
        invited.get_by_role("button", name="Join").click()
    _sees_no_management(invited, live)
    context.close()
    watched.check()

    page.reload()
    row = page.locator("tr[data-member='vic@settings.test']")
    expect(row.locator(".role")).to_have_text("viewer")
    row.get_by_label("Role of vic@settings.test").select_option("member")
    with page.expect_navigation():
        row.get_by_role("button", name="Change role").click()
    expect(page.locator("tr[data-member='vic@settings.test'] .role")).to_have_text("member")
    confirm_click(page, "tr[data-member='vic@settings.test']", "Remove")
    expect(page.locator("#members")).not_to_contain_text("vic@settings.test")


def _sees_no_management(page: Page, live: LiveDashboard) -> None:
    """A viewer reads every tab without an error and finds no button that changes anything."""
    for tab in TABS:
        page.goto(f"{live.url}/settings?tab={tab}")
        expect(page.locator("h1")).to_have_text("Settings")
        assert page.locator("main form[data-api] button").count() == 0, tab
    page.goto(live.url + "/settings?tab=organization")
    expect(page.locator("#members")).to_contain_text(OWNER)
    expect(page.locator(".read-only")).to_contain_text("may not invite")


def test_provider_keys_show_their_last_four_and_a_proxy_key_is_shown_once(
    owner_page: Page, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    page = owner_page
    page.goto(live.url + "/settings?tab=vault")
    page.select_option("#provider-name", "openai")
    page.fill("#provider-key-name", "prod openai")
    page.fill("#provider-key-secret", "sk-test-abcdefgh1234WXYZ")
    with page.expect_navigation():
        page.get_by_role("button", name="Add provider key").click()
    row = page.locator("#provider-keys tr", has_text="prod openai")
    expect(row).to_contain_text("...WXYZ")
    assert "abcdefgh1234" not in page.content()

    page.fill("#proxy-key-name", "team proxy")
    page.fill("#proxy-requests", "100")
    secret = shown_once(page, "Create proxy key")
    assert secret.startswith(PROXY_KEY_PREFIX)
    proxy = page.locator("#proxy-keys tr", has_text="team proxy")
    expect(proxy).to_contain_text("100 requests / 60 s")
    assert secret not in page.content()
    assert accessibility_violations(page) == []
    confirm_click(page, "#proxy-keys tr:has-text('team proxy')", "Revoke")
    expect(page.locator("body")).not_to_contain_text("team proxy")


def test_rate_limit_rules_and_redaction_are_changed_in_the_page(
    owner_page: Page, live_dashboard: Live, owner: Account
) -> None:
    live, _, _ = live_dashboard
    page = owner_page
    page.goto(live.url + "/settings?tab=limits")
    page.fill("#new-rule-name", "burst")
    page.fill("#new-rule-quota", "10")
    page.fill("#new-rule-window", "60")
    with page.expect_navigation():
        page.get_by_role("button", name="Add rule").click()
    row = page.locator("#rate-limits tr[data-rule='burst']")
    expect(row).to_contain_text("10;w=60")

    row.get_by_text("Edit").click()
    row.get_by_label("Quota").fill("25")
    row.get_by_label("Per (user").fill("user")
    with page.expect_navigation():
        row.get_by_role("button", name="Save").click()
    expect(page.locator("#rate-limits tr[data-rule='burst']")).to_contain_text("25;w=60")
    expect(page.locator("#rate-limits tr[data-rule='burst']")).to_contain_text("s=user")
    assert live.running is not None
    assert [rule.quota for rule in live.running.services.rules.list(owner.organization_id)] == [25]

    confirm_click(page, "#rate-limits tr[data-rule='burst']", "Delete")
    expect(page.locator("body")).not_to_contain_text("25;w=60")

    page.get_by_label("email").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Save redaction").click()
    expect(page.get_by_label("email")).to_be_checked()
    expect(page.get_by_label("phone")).not_to_be_checked()
    assert live.running.services.redaction.kinds(owner.organization_id) == ("email",)


def test_the_audit_log_filters_by_action_and_pages_with_a_cursor(
    chromium: Browser, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    auditor = live.account("audit@settings.test", "Audited Org")
    assert live.running is not None
    for index in range(55):
        live.running.services.keys.create_key(auditor.organization_id, f"probe {index}")
    context, watched = watched_context(chromium)
    sign_in(context, live, auditor.email)
    page = context.new_page()

    page.goto(live.url + "/settings?tab=audit")
    expect(page.locator("#audit tbody tr")).to_have_count(50)
    page.fill("#audit-action", "organization")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=organization"))
    actions = page.locator("#audit tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.action)"
    )
    assert actions
    assert all(action.startswith("organization.") for action in actions)

    page.goto(live.url + "/settings?tab=audit&action=api_key.create")
    expect(page.locator("#audit tbody tr")).to_have_count(50)
    page.get_by_role("link", name="Older").click()
    expect(page).to_have_url(re.compile(r"action=api_key.create&cursor="))
    expect(page.locator("#audit tbody tr")).to_have_count(6)  # 55 probes and the "traffic" key
    page.reload()
    expect(page.locator("#audit tbody tr")).to_have_count(6)
    expect(page.locator("#audit")).to_contain_text("api_key.create")
    expect(page.get_by_role("link", name="Newest")).to_be_visible()
    assert accessibility_violations(page) == []

    for bad in ("tab=audit&cursor=nope", "tab=audit&action=drop%20table", "tab=nowhere"):
        response = context.request.get(f"{live.url}/settings?{bad}")
        assert response.status == 400, bad
        assert "text/html" in response.headers["content-type"]
    context.close()
    watched.check()


def test_another_organization_never_sees_these_settings(
    chromium: Browser, owner_page: Page, live_dashboard: Live, owner: Account
) -> None:
    live, _, other = live_dashboard
    assert live.running is not None
    live.running.services.keys.create_key(owner.organization_id, "owners secret key")
    owner_page.goto(live.url + "/settings?tab=api-keys")
    expect(owner_page.locator("#api-keys")).to_contain_text("owners secret key")
    for tab in TABS:
        owner_page.goto(f"{live.url}/settings?tab={tab}")
        assert "oz@other.test" not in owner_page.content(), tab
        assert accessibility_violations(owner_page) == [], tab

    context, watched = watched_context(chromium)
    sign_in(context, live, other.email)
    page = context.new_page()
    for tab in TABS:
        page.goto(f"{live.url}/settings?tab={tab}")
        content = page.content()
        assert "owners secret key" not in content, tab
        assert OWNER not in content, tab
        assert "Settings Org" not in content, tab
    _refuses_foreign_ids(context, live, owner)
    context.close()
    watched.check()


def _refuses_foreign_ids(context: BrowserContext, live: LiveDashboard, owner: Account) -> None:
    """The REST routes the page calls refuse a person of another organization."""
    members = context.request.get(f"{live.url}/v1/organizations/{owner.organization_id}/members")
    assert members.status == 403
    assert OWNER not in members.text()


def test_the_audit_filter_takes_an_area_or_an_action_and_refuses_anything_else() -> None:
    assert audit_action(None) is None
    assert audit_action("  ") is None
    assert audit_action("api_key") == "api_key."
    assert audit_action("API_KEY.") == "api_key."
    assert audit_action("api_key.create") == "api_key.create"
    for bad in ("drop table", "a.b.c", ".create", "x;y"):
        with pytest.raises(InvalidInput):
            audit_action(bad)
    line = "0f2e354f-0adc-4bc0-bda9-5df568363271"
    assert audit_cursor(line) == line
    assert audit_cursor("") is None
    with pytest.raises(InvalidInput):
        audit_cursor("nope")
