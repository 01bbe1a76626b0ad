"""The prompt playground's backend (`POST /v1/prompt-2025/playground`): a version run through the
gateway with chosen inputs, its answer relayed as it streams (chunks arrive long before the fake
provider finishes), the request logged like any other under the organization's playground key
(made on first use, audited, made again after a revocation), the organization's OpenAI key sent
upstream; refusals, bad input, read-only keys and other organizations' versions. On SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import replace
from typing import Any

import aiohttp
import orjson
import pytest

from conftest import Fake, Heliograph
from fake_provider import TEXT
from heliograph.appdb.engine import session_factory
from heliograph.domain.access import KeyPermissions
from heliograph.domain.prompts import PROMPT_VERSION_PROPERTY
from heliograph.services.audit import SYSTEM, AuditQuery
from heliograph.services.playground import (
    KEY_NAME,
    GatewayUnreachable,
    Playground,
    PlaygroundRun,
)
from test_prompt_gateway import BODY, COMPILED_MESSAGES, INPUTS, create_prompt, new_version

PLAYGROUND = "/v1/prompt-2025/playground"


@pytest.fixture
def heliograph(heliograph_on_each_db: Heliograph) -> Heliograph:
    return heliograph_on_each_db


async def production_of(hg: Heliograph, prompt_id: str, key: str | None = None) -> str:
    status, answer = await hg.api_post(
        "/v1/prompt-2025/query/production-version", {"promptId": prompt_id}, key
    )
    assert status == 200, answer
    return str(answer["data"]["id"])


async def run(
    hg: Heliograph, body: Any, key: str | None = None, raw: bytes | None = None
) -> tuple[int, bytes, str]:
    timeout = aiohttp.ClientTimeout(total=15)
    headers = {**hg.auth(key), "Content-Type": "application/json"}
    data = raw if raw is not None else orjson.dumps(body)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.post(hg.api + PLAYGROUND, data=data, headers=headers) as response:
            return response.status, await response.read(), response.headers.get("Helicone-Id", "")


def streamed_text(raw: bytes) -> str:
    parts = []
    for line in raw.decode().splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            for choice in orjson.loads(line[6:])["choices"]:
                parts.append(choice["delta"].get("content") or "")
    return "".join(parts)


def playground_keys(hg: Heliograph) -> list[Any]:
    keys = hg.running.services.keys.list_keys(hg.organization_id)
    return [key for key in keys if key.name == KEY_NAME]


async def test_a_version_runs_through_the_gateway_streamed_and_logged(
    heliograph: Heliograph, fake: Fake
) -> None:
    hg = heliograph
    prompt_id = await create_prompt(hg)
    version_id = await production_of(hg, prompt_id)
    extra = [{"role": "user", "content": "Go on."}]
    body = {"promptVersionId": version_id, "inputs": INPUTS, "messages": extra, "max_tokens": 9}
    status, raw, request_id = await run(hg, body)
    assert status == 200, raw
    assert streamed_text(raw) == TEXT
    upstream = fake.seen.requests[-1]
    assert upstream["body"]["messages"] == [*COMPILED_MESSAGES, *extra]
    assert upstream["body"]["max_tokens"] == 9
    assert "authorization" not in upstream["headers"], "no provider key anywhere"

    row = await hg.wait_for(request_id, timeout_s=5)
    assert row["response_status"] == 200
    assert row["properties"][PROMPT_VERSION_PROPERTY] == version_id
    (key,) = playground_keys(hg)
    assert key.permissions == KeyPermissions.WRITE
    query = AuditQuery(hg.organization_id, action="api_key.create")
    lines = hg.running.services.audit.query(query)
    assert [line.target_id for line in lines if line.details.get("for") == "playground"] == [
        key.key_id
    ]

    status, raw, _ = await run(hg, {**body, "stream": False})
    assert status == 200
    assert orjson.loads(raw)["choices"][0]["message"]["content"] == TEXT
    assert len(playground_keys(hg)) == 1, "the key is made once"


async def test_chunks_arrive_while_the_provider_is_still_streaming(
    heliograph: Heliograph, fake: Fake
) -> None:
    """The fake trickles a chunk every 50 ms for 10 s: the first ones reach the caller at once,
    and hanging up stops the provider."""
    hg = heliograph
    prompt_id = await create_prompt(hg)
    version_id = await new_version(hg, prompt_id, {**BODY, "model": "slow-stream"})
    body = {"promptVersionId": version_id, "inputs": INPUTS}
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        async with session.post(hg.api + PLAYGROUND, json=body, headers=hg.auth()) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            request_id = response.headers["Helicone-Id"]
            received = b""
            while received.count(b"data: ") < 3:
                received += await response.content.readany()
            assert time.monotonic() - started < 3, "chunks came as they were made"
    deadline = time.monotonic() + 5
    while fake.seen.cancelled == 0:
        assert time.monotonic() < deadline, "the provider was not told the caller left"
        await asyncio.sleep(0.05)
    row = await hg.wait_for(request_id, timeout_s=5)
    assert row["properties"][PROMPT_VERSION_PROPERTY] == version_id


async def test_a_refused_run_says_why_and_is_logged(heliograph: Heliograph, fake: Fake) -> None:
    hg = heliograph
    version_id = await production_of(hg, await create_prompt(hg))
    status, raw, request_id = await run(hg, {"promptVersionId": version_id, "inputs": {}})
    assert status == 400
    assert "topic" in orjson.loads(raw)["error"]
    assert not fake.seen.requests
    row = await hg.wait_for(request_id, timeout_s=5)
    assert row["response_status"] == 400


async def test_the_organizations_openai_key_goes_upstream(
    heliograph: Heliograph, fake: Fake
) -> None:
    hg = heliograph
    services = hg.running.services
    services.provider_keys.create(hg.organization_id, "openai", "sk-org-secret-1234", "m", SYSTEM)
    version_id = await production_of(hg, await create_prompt(hg))
    status, _, _ = await run(hg, {"promptVersionId": version_id, "inputs": INPUTS})
    assert status == 200
    assert fake.seen.requests[-1]["headers"]["authorization"] == "Bearer sk-org-secret-1234"


async def test_a_revoked_playground_key_is_made_again(heliograph: Heliograph, fake: Fake) -> None:
    hg = heliograph
    version_id = await production_of(hg, await create_prompt(hg))
    body = {"promptVersionId": version_id, "inputs": INPUTS}
    assert (await run(hg, body))[0] == 200
    (key,) = playground_keys(hg)
    async with aiohttp.ClientSession() as session:
        path = f"{hg.api}/v1/api-keys/{key.key_id}"
        async with session.delete(path, headers=hg.auth()) as response:
            assert response.status in (200, 204)
    assert playground_keys(hg)[0].revoked_at is not None
    await hg.running.services.verifier.refresh()  # the gateway has dropped it (within 2 s)
    status, raw, _ = await run(hg, body)
    assert status == 200, raw
    assert playground_keys(hg)[0].revoked_at is None


async def test_other_organizations_versions_and_bad_input_are_refused(
    heliograph: Heliograph, fake: Fake
) -> None:
    hg = heliograph
    _, other_key = hg.new_organization("other")
    theirs = await production_of(hg, await create_prompt(hg, "theirs", other_key), other_key)
    status, raw, _ = await run(hg, {"promptVersionId": theirs, "inputs": INPUTS})
    assert status == 404
    assert orjson.loads(raw)["error"] == f"no prompt version {theirs}"
    assert playground_keys(hg) == [], "nothing made for a refused call"
    assert (await run(hg, {"promptVersionId": "nosuch", "inputs": INPUTS}))[0] == 404

    mine = await production_of(hg, await create_prompt(hg))
    read_only = hg.running.services.keys.create_key(
        hg.organization_id, "reader", KeyPermissions.READ
    ).api_key
    assert (await run(hg, {"promptVersionId": mine, "inputs": INPUTS}, read_only))[0] == 403
    bad_bodies: list[Any] = [
        {"promptVersionId": mine, "inputs": INPUTS, "extra": 1},
        {"promptVersionId": mine, "inputs": ["topic"]},
        {"promptVersionId": mine, "inputs": INPUTS, "stream": "yes"},
        {"promptVersionId": mine, "inputs": INPUTS, "temperature": 9},
        {"promptVersionId": "x" * 65, "inputs": INPUTS},
        {"inputs": INPUTS},
        {"promptVersionId": mine, "inputs": {f"v{n}": n for n in range(300)}},
        [],
    ]
    for bad in bad_bodies:
        status, raw, _ = await run(hg, bad)
        assert status == 400, (bad, raw)
        assert orjson.loads(raw)["data"] is None
    for raw_body in (b'{"promptVersionId": ', b'{"promptVersionId": "\xff\xfe"}'):
        assert (await run(hg, None, raw=raw_body))[0] == 400
    assert not fake.seen.requests
    deep = b"[" * 500 + b"]" * 500
    nested = b'{"promptVersionId": "%s", "messages": [{"a": %s}]}' % (mine.encode(), deep)
    status, raw, _ = await run(hg, None, raw=nested)
    assert status == 400, raw
    assert b"nest at most" in raw
    assert not fake.seen.requests

    # Integers beyond 64 bits (the standard library reads them) go on as text, not a 500.
    huge = b"1" + b"0" * 30
    body = b'{"promptVersionId": "%s", "stream": false, "inputs": %s, "messages": [%s]}' % (
        mine.encode(),
        b'{"topic": ' + huge + b', "temperature": "0.5", "short": true}',
        b'{"role": "user", "content": ' + huge + b"}",
    )
    status, raw, _ = await run(hg, None, raw=body)
    assert status == 200, raw
    messages = fake.seen.requests[-1]["body"]["messages"]
    assert huge.decode() in messages[0]["content"]
    assert messages[-1]["content"] == huge.decode()


async def test_an_unreachable_gateway_is_a_502(heliograph: Heliograph) -> None:
    hg = heliograph
    services = hg.running.services
    version_id = await production_of(hg, await create_prompt(hg))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    settings = replace(services.settings, gateway_port=closed_port)
    sessions = session_factory(services.engine)
    playground = Playground(settings, sessions, services.prompts, services.vault, services.audit)
    run_ = PlaygroundRun(version_id, INPUTS)
    prepared = await asyncio.to_thread(playground.prepare, hg.organization_id, run_, SYSTEM)
    with pytest.raises(GatewayUnreachable):
        await playground.send(prepared)
