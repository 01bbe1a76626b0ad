"""What a hostile caller sends to the prompt, webhook, alert, playground and Azure inputs: bodies
that are malformed, not UTF-8, hold lone surrogates, nest deeply or are too large; `..` paths;
private addresses wherever a URL is taken. Each is a clear 4xx that reveals nothing, and a
request through the gateway is still logged afterwards. (Other organizations' ids, missing keys
and read-only keys are tried on every route, these included, by `test_isolation.py` and
`test_permissions.py`.)"""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import orjson
import pytest
from yarl import URL

from conftest import Fake, Heliograph

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
PROMPT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "{{hc:x:string}}"}]}
LEAKS = ("Traceback", ".py", "/work/", "sqlalchemy", "psycopg", "chdb")


async def post_raw(hg: Heliograph, path: str, data: bytes, method: str = "POST") -> tuple[int, str]:
    headers = {**hg.auth(), "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        async with session.request(method, hg.api + path, data=data, headers=headers) as answer:
            return answer.status, await answer.text()


async def targets(hg: Heliograph) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, a valid body) for each new write route, with ids that exist."""
    status, created = await hg.api_post(
        "/v1/prompt-2025", {"name": "attacked", "tags": [], "promptBody": PROMPT_BODY}
    )
    assert status == 201, created
    prompt = created["data"]
    rule = {"name": "r", "metric": "count", "threshold": 10**6, "window_minutes": 5}
    rule["channels"] = [{"type": "email", "to": ["ops@example.com"]}]
    status, alert = await hg.api_post("/v1/alerts", rule)
    assert status == 201, alert
    update = {
        "promptId": prompt["id"],
        "promptVersionId": prompt["versionId"],
        "commitMessage": "c",
        "promptBody": PROMPT_BODY,
    }
    return [
        ("POST", "/v1/prompt-2025", {"name": "n", "tags": ["t"], "promptBody": PROMPT_BODY}),
        ("POST", "/v1/prompt-2025/update", update),
        ("POST", "/v1/webhooks", {"destination": "https://hooks.example.com/in"}),
        ("POST", "/v1/alerts", rule),
        ("PATCH", f"/v1/alerts/{alert['data']['id']}", {"name": "renamed"}),
        ("POST", "/v1/prompt-2025/playground", {"promptVersionId": prompt["versionId"]}),
    ]


async def still_logging(hg: Heliograph) -> None:
    request_id = str(uuid.uuid4())
    headers = {**hg.gateway_auth(), "Helicone-Request-Id": request_id}
    async with aiohttp.ClientSession() as session:
        url = hg.gateway + "/openai/v1/chat/completions"
        async with session.post(url, json=CHAT, headers=headers) as answer:
            assert answer.status == 200
            await answer.read()
    row = await hg.wait_for(request_id, timeout_s=10)
    assert row["response_status"] == 200


def refused_cleanly(status: int, text: str, what: str) -> None:
    assert 400 <= status < 500, (what, status, text)
    assert orjson.loads(text)["data"] is None, what
    assert not [leak for leak in LEAKS if leak in text], (what, text)


async def test_malformed_non_utf8_deep_and_oversized_bodies_are_refused(
    heliograph: Heliograph,
) -> None:
    hg = heliograph
    deep = b'{"name": "n", "promptBody": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    bad_bodies = {
        "malformed JSON": b'{"name": ',
        "invalid UTF-8": b'{"name": "\xff\xfe", "destination": "\xc3\x28"}',
        "deeply nested": deep,
        "oversized": b'{"name": "' + b"a" * (9 * 1024 * 1024) + b'"}',
        "not an object": b"[1, 2, 3]",
    }
    for method, path, _ in await targets(hg):
        for what, data in bad_bodies.items():
            status, text = await post_raw(hg, path, data, method)
            refused_cleanly(status, text, f"{what} to {method} {path}")
    await still_logging(hg)


async def test_lone_surrogates_are_refused_or_stored_clean(heliograph: Heliograph) -> None:
    """`"\\ud800"` is valid JSON but not valid text: a route refuses it or keeps U+FFFD."""
    hg = heliograph
    for method, path, body in await targets(hg):
        for field in ("name", "destination", "commitMessage"):
            if field not in body:
                continue
            data = orjson.dumps(body).replace(orjson.dumps(body[field]), b'"a\\ud800b"', 1)
            status, text = await post_raw(hg, path, data, method)
            assert status < 500, (path, field, text)
            assert "\\ud800" not in text, (path, field, text)
            assert "\ud800" not in text, (path, field, text)
            if status >= 400:
                refused_cleanly(status, text, f"surrogate in {path}.{field}")
    _, listed = await hg.api_get("/v1/alerts")
    assert all("\ud800" not in rule["name"] for rule in listed["data"])
    await still_logging(hg)


@pytest.mark.parametrize(
    "path",
    [
        "/azure/openai/deployments/../../../admin/chat/completions",
        "/azure/openai/deployments/%2e%2e/%2e%2e/x/chat/completions",
        "/azure/openai/deployments/..%2f..%2fx/chat/completions",
        "/openai/openai/deployments/..\\..\\x/chat/completions",
    ],
)
async def test_dot_segments_on_the_azure_routes_are_refused(
    heliograph: Heliograph, fake: Fake, path: str
) -> None:
    before = len(fake.seen.requests)
    headers = {**heliograph.gateway_auth(), "Helicone-OpenAI-Api-Base": fake.origin}
    async with aiohttp.ClientSession() as session:
        url = URL(heliograph.gateway + path + "?api-version=2024-10-21", encoded=True)
        async with session.post(url, json=CHAT, headers=headers) as answer:  # sent as written
            text = await answer.text()
            assert answer.status == 400, (path, text)
            assert "invalid_path" in text
    assert len(fake.seen.requests) == before, "never forwarded"
    await still_logging(heliograph)


PRIVATE = (
    "https://127.0.0.1/in",
    "https://\uff11\uff12\uff17.0.0.1/in",  # full-width digits
    "https://[::ffff:10.0.0.1]/in",
    "https://169.254.169.254/latest",
    "https://localhost/in",
)


@pytest.mark.parametrize("url", PRIVATE)
async def test_private_addresses_are_refused_wherever_a_url_is_taken(
    heliograph: Heliograph, fake: Fake, url: str
) -> None:
    hg = heliograph
    status, answer = await hg.api_post("/v1/webhooks", {"destination": url})
    refused_cleanly(status, orjson.dumps(answer).decode(), f"webhook {url}")
    rule = {"name": "r", "metric": "count", "threshold": 1, "window_minutes": 5}
    rule["channels"] = [{"type": "webhook", "url": url}]
    status, answer = await hg.api_post("/v1/alerts", rule)
    refused_cleanly(status, orjson.dumps(answer).decode(), f"alert channel {url}")
    before = len(fake.seen.requests)
    origin = url.rsplit("/", 1)[0]
    headers = {**hg.gateway_auth(), "Helicone-OpenAI-Api-Base": origin}
    async with aiohttp.ClientSession() as session:
        target = hg.gateway + "/azure/openai/deployments/d/chat/completions?api-version=2024-10-21"
        async with session.post(target, json=CHAT, headers=headers) as response:
            assert response.status == 400, await response.text()
    assert len(fake.seen.requests) == before, "never forwarded"
    await still_logging(hg)
