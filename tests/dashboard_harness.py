"""A live Heliograph for the browser suite: the fake provider and a whole Heliograph running in a
thread of their own (so that Playwright's synchronous API drives Chromium from the test thread),
with two organizations, a person in each, and traffic sent through the real gateway."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from fake_provider import start_fake
from heliograph import server
from heliograph.providers.registry import BUILT_IN
from heliograph.services.audit import SYSTEM
from heliograph.settings import load_settings

T = TypeVar("T")
PASSWORD = "correct horse battery staple"
SEARCH_WORD = "zephyrine"  # in one request's body only: the body search finds it
OTHER_WORD = "quokkalantern"  # in the second organization's only request
SESSION_ID = "b6f0c2a4-3d1e-4c55-9e7a-0a1b2c3d4e5f"
SESSION_PATHS = ("/plan", "/plan/search", "/plan/search/fetch", "/plan/write", "/answer")
TINY_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8Dw"
    "HwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


@dataclass
class Account:
    email: str
    organization_id: str
    api_key: str
    request_ids: list[str] = field(default_factory=list)


class LiveDashboard:
    def __init__(self, data_dir: Path, analytics_dir: Path) -> None:
        self._data_dir = data_dir
        self._analytics_dir = analytics_dir
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.running: server.Running | None = None
        self._fake: Any = None

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def start(self) -> None:
        self.run(self._start())

    async def _start(self) -> None:
        runner, port, _ = await start_fake()
        self._fake = runner
        origin = f"http://127.0.0.1:{port}"
        env = {f"HELIOGRAPH_{p.prefix.upper()}_BASE_URL": origin for p in BUILT_IN}
        settings = load_settings(
            env,
            data_dir=self._data_dir,
            analytics_dir=self._analytics_dir,
            gateway_port=0,
            api_port=0,
            flush_interval_ms=50,
            # Every browser test signs in afresh; the throttle itself is tested elsewhere.
            login_attempts_per_account=100_000,
            login_attempts_per_address=100_000,
        )
        self.running = await server.start(settings)

    def stop(self) -> None:
        if self.running is not None:
            self.run(self.running.stop())
        if self._fake is not None:
            self.run(self._fake.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        assert self.running is not None
        return f"http://127.0.0.1:{self.running.api_port}"

    @property
    def gateway(self) -> str:
        assert self.running is not None
        return f"http://127.0.0.1:{self.running.gateway_port}"

    def account(self, email: str, organization: str) -> Account:
        """A person owning a new organization, and an API key for its gateway traffic."""
        assert self.running is not None
        services = self.running.services
        _, organization_id = services.accounts.create_user(email, PASSWORD, organization)
        assert organization_id is not None
        key = services.keys.create_key(organization_id, "traffic").api_key
        return Account(email, organization_id, key)

    def send(
        self,
        account: Account,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> str:
        """One request through the gateway; returns its id once the API can read it."""
        request_id = str(uuid.uuid4())
        sent = {
            "Helicone-Auth": f"Bearer {account.api_key}",
            "Helicone-Request-Id": request_id,
            **(headers or {}),
        }
        response = httpx.post(self.gateway + path, json=body, headers=sent, timeout=30)
        response.read()
        account.request_ids.append(request_id)
        return request_id

    def wait_stored(self, account: Account, timeout_s: float = 20) -> None:
        """Until every request sent for `account` is readable through the API."""
        for request_id in account.request_ids:
            self.wait_for(account, request_id, timeout_s)

    def wait_for(self, account: Account, request_id: str, timeout_s: float = 20) -> None:
        async def poll() -> None:
            assert self.running is not None
            requests = self.running.services.requests
            deadline = asyncio.get_running_loop().time() + timeout_s
            while await requests.get(account.organization_id, request_id, False) is None:
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"request {request_id} was not stored in {timeout_s}s")
                await asyncio.sleep(0.05)

        self.run(poll(), timeout_s + 5)


def seed(live: LiveDashboard) -> tuple[Account, Account]:
    """Two organizations' traffic: the first has models of three providers, a session tree,
    users, properties, a cached answer, an error, streamed and tool-using conversations; the
    second has one request, which the first must never see."""
    acme = live.account("ada@acme.test", "Acme")
    other = live.account("oz@other.test", "Other")
    chat = "/openai/v1/chat/completions"
    session = {"Helicone-Session-Id": SESSION_ID, "Helicone-Session-Name": "trip-planner"}
    for index, path in enumerate(SESSION_PATHS):
        live.send(
            acme,
            chat,
            {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "You plan trips."},
                    {"role": "user", "content": f"Step {index}: plan a trip to Lisbon"},
                ],
            },
            {
                **session,
                "Helicone-Session-Path": path,
                "Helicone-User-Id": "alice",
                "Helicone-Property-Environment": "production",
                "Helicone-Property-Team": "travel",
            },
        )
    live.send(
        acme,
        chat,
        {
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "You are a careful assistant."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": f"What is a {SEARCH_WORD}? Look at this."},
                        {"type": "image_url", "image_url": {"url": TINY_PNG}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "lookup_word",
                                "arguments": '{"word": "zephyrine"}',
                            },
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "a kind of wind"},
            ],
            "tools": [{"type": "function", "function": {"name": "lookup_word", "parameters": {}}}],
        },
        {"Helicone-User-Id": "bob", "Helicone-Property-Environment": "staging"},
    )
    live.send(
        acme,
        chat,
        {
            "model": "gpt-4o-mini",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Stream me a haiku"}],
        },
        {"Helicone-User-Id": "bob"},
    )
    live.send(
        acme,
        "/anthropic/v1/messages",
        {
            "model": "claude-3-5-haiku-20241022",
            "max_tokens": 100,
            "system": "You answer briefly.",
            "messages": [{"role": "user", "content": "Name a Portuguese dish"}],
        },
        {"Helicone-User-Id": "carol"},
    )
    live.send(
        acme,
        "/gemini/v1beta/models/gemini-2.0-flash:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": "Say hello from Gemini"}]}]},
        {"Helicone-User-Id": "carol"},
    )
    cached = {"Helicone-Cache-Enabled": "true", "Helicone-User-Id": "dave"}
    question = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "cache me"}]}
    live.send(acme, chat, question, cached)
    live.wait_stored(acme)
    live.send(acme, chat, question, cached)
    live.send(acme, chat, {"model": "error-500", "messages": [{"role": "user", "content": "x"}]})
    live.send(
        other,
        chat,
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": OTHER_WORD}]},
        {"Helicone-User-Id": "mallory", "Helicone-Property-Secret-Project": "hidden"},
    )
    live.wait_stored(acme)
    live.wait_stored(other)
    configure_the_other(live, other)
    return acme, other


def configure_the_other(live: LiveDashboard, other: Account) -> None:
    """The second organization's prompt, webhook and alert, each named with `OTHER_WORD`; none
    of them ever sends anything (a sample rate of 0, a threshold never reached)."""
    assert live.running is not None
    services, org_id = live.running.services, other.organization_id
    message = {"role": "user", "content": OTHER_WORD}
    body = {"model": "gpt-4o-mini", "messages": [message]}
    services.prompts.create(org_id, OTHER_WORD, [OTHER_WORD], body, SYSTEM)
    services.webhooks.create(org_id, f"https://{OTHER_WORD}.example.com/in", 0.0, [], True)
    to = [f"{OTHER_WORD}@example.com"]
    alert = {"name": OTHER_WORD, "metric": "count", "threshold": 10**6, "window_minutes": 5}
    services.alerts.create(org_id, {**alert, "channels": [{"type": "email", "to": to}]})
