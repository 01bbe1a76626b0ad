"""The weekly report: built from what the gateway logged, read through the API, e-mailed to
owners and admins (not viewers) by a local SMTP server started here, and sent once a week."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from heliograph.domain.access import KeyPermissions, Role
from heliograph.services.weekly_report import report_text
from smtp_inbox import Inbox, smtp_server

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def smtp() -> Iterator[tuple[str, Inbox]]:
    with smtp_server() as running:
        yield running


async def _send_chats(hg: Heliograph, count: int, fail: bool = False) -> list[str]:
    ids = []
    headers = hg.gateway_auth()
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            body = {**CHAT, "model": "error-500"} if fail else CHAT
            path = "/openai/v1/chat/completions"
            async with session.post(hg.gateway + path, json=body, headers=headers) as response:
                await response.read()
                ids.append(response.headers["Helicone-Id"])
    return ids


async def test_the_report_counts_the_week_and_mails_owners_and_admins_once(
    tmp_path: Path, analytics_dir: Path, fake: Fake, smtp: tuple[str, Inbox], database_url: str
) -> None:
    """On SQLite, then PostgreSQL (the week is claimed in the app DB)."""
    url, inbox = smtp
    settings = heliograph_settings(
        tmp_path, analytics_dir, fake, smtp_url=url, database_url=database_url
    )
    hg = await start_heliograph(settings)
    try:
        services = hg.running.services
        org = hg.organization_id
        services.accounts.create_user("owner@example.com", "a long passphrase 1", org, Role.OWNER)
        services.accounts.create_user("admin@example.com", "a long passphrase 2", org, Role.ADMIN)
        services.accounts.create_user("view@example.com", "a long passphrase 3", org, Role.VIEWER)
        ids = await _send_chats(hg, 3)
        await hg.wait_for(ids[-1])

        status, body = await hg.api_get("/v1/reports/weekly")
        assert status == 200, body
        report = body["data"]
        assert report["week"]["requests"] == 3
        assert report["week"]["errors"] == 0
        assert report["previous"]["requests"] == 0
        assert report["top_models"][0]["model"] == "gpt-4o-mini-2024-07-18"  # as the fake answers
        assert report["top_models"][0]["requests"] == 3
        assert report["week"]["cost_usd"] > 0
        assert "Requests             3   (new this week)" in report["text"]

        sent = await services.weekly_reports.send_due()
        assert sent == 1
        assert sorted(m["To"] for m in inbox.messages) == [
            "admin@example.com",
            "owner@example.com",
        ]
        text = inbox.messages[0].get_payload()
        assert isinstance(text, str)
        assert "gpt-4o-mini" in text
        # The week is claimed: a second check (another API process, or the next hour) sends
        # nothing, and a week later the report goes again.
        assert await services.weekly_reports.send_due() == 0
        later = datetime.now(UTC) + timedelta(days=7, minutes=1)
        assert await services.weekly_reports.send_due(later) == 1
        assert len(inbox.messages) == 4
    finally:
        await hg.running.stop()


async def test_sending_now_needs_configure_and_an_smtp_server(heliograph: Heliograph) -> None:
    services = heliograph.running.services
    reader = services.keys.create_key(heliograph.organization_id, "reader", KeyPermissions.READ)
    status, body = await heliograph.api_post("/v1/reports/weekly/send", {}, reader.api_key)
    assert status == 403, body
    status, body = await heliograph.api_post("/v1/reports/weekly/send", {})
    assert status == 409
    assert "HELIOGRAPH_SMTP_URL" in body["error"]
    # Without SMTP, the schedule sends nothing and claims no week.
    assert await services.weekly_reports.send_due() == 0


async def test_errors_and_the_week_before_show_in_the_text(heliograph: Heliograph) -> None:
    ids = await _send_chats(heliograph, 2)
    ids += await _send_chats(heliograph, 2, fail=True)
    await heliograph.wait_for(ids[-1])
    report = await heliograph.running.services.weekly_reports.build(heliograph.organization_id)
    assert (report.week.requests, report.week.errors) == (4, 2)
    assert report.week.error_rate == 50.0
    text = report_text(report)
    assert "50.0% of requests" in text
    assert text.startswith("test: ")
