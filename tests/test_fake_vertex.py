"""The fake Vertex AI (tests/fake_provider/vertex_api.py) behind the fake Google token endpoint,
driven by the official SDKs in Vertex mode: google-genai for Gemini, anthropic's
`AsyncAnthropicVertex` for Claude, each authenticating with a service account for real."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import anthropic
import pytest
from aiohttp import web
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from google.oauth2 import credentials as oauth2_credentials
from google.oauth2 import service_account

from fake_provider import TEXT, google_oauth, vertex_api
from fake_provider.google_oauth import FakeAccount
from fake_provider.shared import SEEN, Seen
from heliograph.gateway.google_tokens import SCOPE, VertexTokens
from heliograph.translation.vertex import (
    chat_to_vertex_anthropic,
    vertex_anthropic_path,
    vertex_gemini_path,
)

PROJECT, LOCATION = "fake-project", "us-central1"


@dataclass
class Fake:
    origin: str
    seen: Seen
    account: FakeAccount


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    """The token endpoint and Vertex on one loopback app, as tests/fake_provider/app.py will
    mount them, and a service account whose token_uri is that endpoint."""
    app = web.Application()
    app[SEEN] = seen = Seen()
    google_oauth.add_routes(app.router)
    vertex_api.add_routes(app.router)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    origin = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield Fake(origin, seen, google_oauth.service_account(f"{origin}/token", project=PROJECT))
    await runner.cleanup()


def credentials(account: FakeAccount) -> service_account.Credentials:
    return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call,no-any-return]
        account.info, scopes=[SCOPE]
    )


def genai_client(fake: Fake) -> genai.Client:
    return genai.Client(
        vertexai=True,
        project=PROJECT,
        location=LOCATION,
        credentials=credentials(fake.account),
        http_options=types.HttpOptions(base_url=fake.origin, api_version="v1"),
    )


async def test_google_genai_sdk_generates_and_streams(fake: Fake) -> None:
    client = genai_client(fake)
    answer = await client.aio.models.generate_content(model="gemini-2.5-flash", contents="Hi")
    assert answer.text == TEXT
    assert answer.usage_metadata is not None
    assert answer.usage_metadata.total_token_count == 14
    pieces = [
        chunk.text
        async for chunk in await client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="Hi"
        )
    ]
    assert "".join(p or "" for p in pieces) == TEXT
    paths = [r["path"] for r in fake.seen.requests]
    base = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/gemini-2.5-flash"
    assert paths == [f"{base}:generateContent", f"{base}:streamGenerateContent?alt=sse"]
    assert fake.seen.requests[0]["body"]["contents"][0]["parts"] == [{"text": "Hi"}]
    assert fake.account.exchanges == 1
    assert fake.seen.requests[0]["headers"]["authorization"] == (f"Bearer {fake.account.tokens[0]}")


async def test_google_genai_sdk_without_a_valid_token_gets_googles_401(fake: Fake) -> None:
    made_up = oauth2_credentials.Credentials(token="ya29.made-up")  # type: ignore[no-untyped-call]
    client = genai.Client(
        vertexai=True,
        project=PROJECT,
        location=LOCATION,
        credentials=made_up,
        http_options=types.HttpOptions(base_url=fake.origin, api_version="v1"),
    )
    with pytest.raises(genai_errors.ClientError) as refused:
        await client.aio.models.generate_content(model="gemini-2.5-flash", contents="Hi")
    assert refused.value.code == 401
    assert refused.value.status == "UNAUTHENTICATED"
    assert fake.seen.requests[0]["headers"]["authorization"] == "Bearer ya29.made-up"


async def test_anthropic_vertex_sdk_messages_and_stream(fake: Fake) -> None:
    client = anthropic.AsyncAnthropicVertex(
        region=LOCATION,
        project_id=PROJECT,
        credentials=credentials(fake.account),
        base_url=f"{fake.origin}/v1",
        max_retries=0,
    )
    message = await client.messages.create(
        model="claude-sonnet-4-5@20250929",
        max_tokens=64,
        messages=[{"role": "user", "content": "Hi"}],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == TEXT
    async with client.messages.stream(
        model="claude-sonnet-4-5@20250929",
        max_tokens=64,
        messages=[{"role": "user", "content": "Hi"}],
    ) as stream:
        assert await stream.get_final_text() == TEXT
    await client.close()
    base = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/anthropic/models"
    paths = [r["path"] for r in fake.seen.requests]
    assert paths == [
        f"{base}/claude-sonnet-4-5@20250929:rawPredict",
        f"{base}/claude-sonnet-4-5@20250929:streamRawPredict",
    ]
    for request in fake.seen.requests:
        assert "model" not in request["body"]
        assert isinstance(request["body"]["anthropic_version"], str)
    assert fake.account.exchanges == 1


async def test_our_building_blocks_against_the_fake(fake: Fake) -> None:
    """VertexTokens and the translation's paths and body, as the gateway will use them."""
    tokens = VertexTokens(token_uris={f"{fake.origin}/token"})
    token = await tokens.token(fake.account.json)
    headers = {"Authorization": f"Bearer {token}"}
    chat = {"messages": [{"role": "user", "content": "Hi"}], "stream": True}
    async with aiohttp.ClientSession() as session:
        path = vertex_anthropic_path(PROJECT, LOCATION, "claude-sonnet-4-5", True)
        body = chat_to_vertex_anthropic(chat, "claude-sonnet-4-5")
        async with session.post(fake.origin + path, json=body, headers=headers) as response:
            assert response.status == 200
            assert response.content_type == "text/event-stream"
            assert b"event: message_stop" in await response.read()
        path = vertex_gemini_path(PROJECT, LOCATION, "gemini-2.5-pro", False)
        async with session.post(fake.origin + path, json={}, headers=headers) as response:
            assert response.status == 200
            answer = await response.json()
            assert answer["candidates"][0]["content"]["parts"][0]["text"] == TEXT


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"max_tokens": 5, "messages": []}, "anthropic_version"),
        ({"model": "claude", "anthropic_version": "vertex-2023-10-16"}, "model"),
    ],
)
async def test_claude_bodies_vertex_refuses(
    fake: Fake, body: dict[str, object], message: str
) -> None:
    token = await VertexTokens(token_uris={f"{fake.origin}/token"}).token(fake.account.json)
    path = vertex_anthropic_path(PROJECT, LOCATION, "claude-sonnet-4-5", False)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            fake.origin + path, json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        assert response.status == 400
        error = await response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"]


@pytest.mark.parametrize(
    "authorization", [None, "Bearer ya29.made-up", "Basic abc", "Bearer", "bearer "]
)
async def test_tokens_the_fake_did_not_issue_get_googles_401(
    fake: Fake, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with aiohttp.ClientSession() as session:
        for path in (
            vertex_gemini_path(PROJECT, LOCATION, "gemini-2.5-pro", False),
            vertex_anthropic_path(PROJECT, LOCATION, "claude-sonnet-4-5", False),
        ):
            async with session.post(fake.origin + path, json={}, headers=headers) as response:
                assert response.status == 401
                error = await response.json()
                assert error["error"]["status"] == "UNAUTHENTICATED"
                assert error["error"]["code"] == 401
    assert len(fake.seen.requests) == 2  # refused requests are remembered too


async def test_unknown_publisher_and_method(fake: Fake) -> None:
    token = await VertexTokens(token_uris={f"{fake.origin}/token"}).token(fake.account.json)
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{fake.origin}/v1/projects/{PROJECT}/locations/{LOCATION}/publishers"
    body = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 5, "messages": []}
    async with aiohttp.ClientSession() as session:
        for url in (f"{base}/meta/models/llama:rawPredict", f"{base}/anthropic/models/c:predict"):
            async with session.post(url, data=json.dumps(body), headers=headers) as response:
                assert response.status == 404
                assert (await response.json())["error"]["status"] == "NOT_FOUND"
