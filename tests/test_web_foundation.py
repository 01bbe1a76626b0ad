"""The dashboard's foundation without a browser: the sign-in redirect and its `next` target,
security headers, static files, error pages in HTML beside the API's JSON, the organization
cookie checked against memberships, and the formats pages share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from multidict import CIMultiDict

from browser import Browser
from conftest import Heliograph
from heliograph.domain.errors import InvalidInput
from heliograph.web.security import CONTENT_SECURITY_POLICY
from heliograph.web.templating import as_json, count, milliseconds, usd, when
from heliograph.web.time_range import window
from heliograph.web.viewer import local_path

PASSWORD = "a long enough password"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/requests?range=24h", "/requests?range=24h"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_sign_in_returns_only_to_a_path_on_this_site(target: str | None, expected: str) -> None:
    assert local_path(target) == expected


def test_time_ranges() -> None:
    week = window("7d")
    assert week.increment == "hour"
    assert timedelta(days=7) - (week.end - week.start) < timedelta(seconds=1)
    assert window("bogus").name == "24h"
    custom = window("custom", "2026-01-01", "2026-01-03T12:00:00+00:00")
    assert custom.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert custom.increment == "hour"
    with pytest.raises(InvalidInput, match="before its end"):
        window("custom", "2026-01-03", "2026-01-01")
    with pytest.raises(InvalidInput, match="not an ISO date"):
        window("custom", "yesterday")
    with pytest.raises(InvalidInput, match="needs its start"):
        window("custom")


def test_formats() -> None:
    assert usd(0.000123) == "$0.000123"
    assert usd(1.234) == "$1.23"
    assert usd(12345) == "$12,345"
    assert usd(None) == "\N{EN DASH}"
    assert milliseconds(340) == "340 ms"
    assert milliseconds(1520) == "1.52 s"
    assert count(1234567) == "1,234,567"
    assert 'datetime="2026-12-02T10:00:00+00:00"' in when("2026-12-02T10:00:00Z")
    assert str(when("<b>not a time</b>")) == "&lt;b&gt;not a time&lt;/b&gt;"


def test_json_in_a_script_block_cannot_close_it() -> None:
    encoded = str(as_json({"text": "</script><script>alert(1)</script>", "and": "&"}))
    for character in "<>&":
        assert character not in encoded


async def signed_in(heliograph: Heliograph, email: str = "ada@example.test") -> Browser:
    services = heliograph.running.services
    services.accounts.create_user(email, PASSWORD, heliograph.organization_id)
    browser = Browser(heliograph.api)
    status, body = await browser.login(email, PASSWORD)
    assert status == 200, body
    return browser


async def get(
    client: aiohttp.ClientSession, url: str, **headers: str
) -> tuple[int, CIMultiDict[str], str]:
    async with client.get(url, allow_redirects=False, headers=headers) as response:
        body = await response.read()
        return response.status, response.headers.copy(), body.decode(errors="replace")


async def test_pages_send_a_visitor_to_sign_in_and_the_api_still_answers_401(
    heliograph: Heliograph,
) -> None:
    async with aiohttp.ClientSession() as client:
        status, headers, _ = await get(client, heliograph.api + "/?range=24h&x=%22")
        assert status == 303
        assert headers["Location"] == "/login?next=/?range=24h&x=%22"
        status, _, body = await get(client, heliograph.api + "/v1/api-keys")
        assert status == 401
        assert '"error"' in body
        status, _, body = await get(client, heliograph.api + "/login?next=//evil.example")
        assert status == 200
        assert 'data-next="/"' in body
        assert "evil.example" not in body


async def test_every_response_carries_the_security_headers(heliograph: Heliograph) -> None:
    async with aiohttp.ClientSession() as client:
        for path in ("/login", "/v1/api-keys", "/healthz", "/nowhere"):
            _, headers, _ = await get(client, heliograph.api + path)
            assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["X-Frame-Options"] == "DENY"


async def test_static_files_are_cached_by_content_and_gzipped(heliograph: Heliograph) -> None:
    async with aiohttp.ClientSession(auto_decompress=False) as client:
        status, headers, _ = await get(client, heliograph.api + "/login")
        assert status == 200
        url = heliograph.api + "/static/app.css"
        status, headers, _ = await get(client, url, **{"Accept-Encoding": "gzip"})
        assert status == 200
        assert headers["Content-Encoding"] == "gzip"
        assert "immutable" in headers["Cache-Control"]
        status, _, _ = await get(client, url, **{"If-None-Match": headers["ETag"]})
        assert status == 304
        status, headers, _ = await get(client, heliograph.api + "/static/plotly.min.js")
        assert status == 200
        assert headers["Content-Type"].startswith("text/javascript")
        for bad in ("/static/nothing.js", "/static/..%2Fapp.py", "/static/%2e%2e%2fsettings.py"):
            status, _, body = await get(client, heliograph.api + bad)
            assert status == 404, bad
            assert "import" not in body


async def test_unknown_pages_are_html_and_unknown_api_routes_json(heliograph: Heliograph) -> None:
    async with await signed_in(heliograph) as browser:
        async with browser.session.get(heliograph.api + "/nowhere") as response:
            assert response.status == 404
            assert response.headers["Content-Type"].startswith("text/html")
            assert "No such page." in await response.text()
        status, body = await browser.get("/v1/nowhere")
        assert status == 404
        assert "error" in body


async def test_a_session_cookie_without_its_csrf_cookie_is_no_session(
    heliograph: Heliograph,
) -> None:
    async with await signed_in(heliograph) as browser:
        async with browser.session.get(heliograph.api + "/", allow_redirects=False) as response:
            assert response.status == 200
        browser.session.cookie_jar.clear(lambda cookie: cookie.key == "heliograph_csrf")
        async with browser.session.get(heliograph.api + "/", allow_redirects=False) as response:
            assert response.status == 303


async def test_the_organization_cookie_never_opens_an_organization_one_is_not_in(
    heliograph: Heliograph,
) -> None:
    other_id, _ = heliograph.new_organization("someone else's")
    async with await signed_in(heliograph) as browser:
        browser.session.cookie_jar.update_cookies({"heliograph_org": other_id})
        async with browser.session.get(heliograph.api + "/") as response:
            html = await response.text()
        assert f'content="{heliograph.organization_id}"' in html
        assert other_id not in html
