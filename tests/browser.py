"""A browser-like client for cookie-authenticated tests: one cookie jar, the CSRF token echoed
from its cookie on unsafe requests, and the organization named in a header."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import aiohttp

CSRF_COOKIE = "heliograph_csrf"
SESSION_COOKIE = "heliograph_session"


class Browser:
    def __init__(self, api: str, organization_id: str | None = None) -> None:
        self.api = api
        self.organization_id = organization_id
        # unsafe=True: keep cookies set by a bare IP address (127.0.0.1).
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.session.close()

    def cookie(self, name: str) -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None

    def headers(self, method: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {}
        csrf = self.cookie(CSRF_COOKIE)
        if method not in ("GET", "HEAD") and csrf:
            headers["X-CSRF-Token"] = csrf
        if self.organization_id:
            headers["Heliograph-Organization-Id"] = self.organization_id
        headers.update(extra or {})
        return headers

    async def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        async with self.session.request(
            method, self.api + path, json=body, headers=self.headers(method, headers)
        ) as response:
            return response.status, await response.json(content_type=None)

    async def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return await self.call("GET", path, None, headers)

    async def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        return await self.call("POST", path, body, headers)

    async def signup(self, email: str, password: str, **extra: Any) -> tuple[int, Any]:
        status, body = await self.post(
            "/v1/auth/signup", {"email": email, "password": password, **extra}
        )
        if status == 201:
            self.organization_id = body["data"]["organization_id"]
        return status, body

    async def login(self, email: str, password: str) -> tuple[int, Any]:
        return await self.post("/v1/auth/login", {"email": email, "password": password})
