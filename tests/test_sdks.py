"""The official SDKs through the gateway, streaming and not; each request is then found through
the API with its tokens, cost, timing, user, properties and session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from conftest import Fake, Heliograph
from fake_provider import TEXT

# gpt-4o-mini: $0.15 / $0.60 per million tokens, cache reads $0.075.
# The fake reports 21 prompt (5 cached) and 9 completion (2 reasoning) tokens.
GPT_4O_MINI_NANO_USD = 16 * 150 + 5 * 75 + 9 * 600


@pytest.fixture
async def openai_sdk(heliograph: Heliograph) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        api_key="sk-provider-key",
        base_url=f"{heliograph.gateway}/openai/v1",
        default_headers={"Helicone-Auth": f"Bearer {heliograph.api_key}"},
        max_retries=0,
    ) as client:
        yield client


async def test_openai_chat_is_proxied_unchanged_and_logged(
    heliograph: Heliograph, fake: Fake, openai_sdk: openai.AsyncOpenAI
) -> None:
    headers = {
        "Helicone-User-Id": "alice",
        "Helicone-Property-Environment": "test",
        "Helicone-Session-Id": "s-1",
        "Helicone-Session-Path": "/plan/step",
        "Helicone-Session-Name": "planner",
    }
    raw = await openai_sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], extra_headers=headers
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == TEXT
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 21
    request_id = raw.headers["helicone-id"]

    upstream = fake.seen.requests[-1]
    assert upstream["headers"]["authorization"] == "Bearer sk-provider-key"
    assert not any(name.lower().startswith("helicone-") for name in upstream["headers"])

    row = await heliograph.wait_for(request_id)
    assert row["provider"] == "OPENAI"
    assert row["model"] == "gpt-4o-mini-2024-07-18"
    assert row["request_model"] == "gpt-4o-mini"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (16, 7)
    assert (row["prompt_cache_read_tokens"], row["reasoning_tokens"]) == (5, 2)
    assert row["total_tokens"] == 30
    assert round(row["cost"] * 1e9) == GPT_4O_MINI_NANO_USD
    assert row["pricing_status"] == "priced"
    assert row["request_user_id"] == "alice"
    assert row["properties"]["environment"] == "test"
    assert (row["session_id"], row["session_path"], row["session_name"]) == (
        "s-1",
        "/plan/step",
        "planner",
    )
    assert row["response_status"] == 200
    assert row["delay_ms"] >= 0
    assert row["time_to_first_token"] is not None
    assert row["request_body"]["messages"][0]["content"] == "hi"
    assert row["response_body"]["choices"][0]["message"]["content"] == TEXT


async def test_openai_stream_gets_exact_usage_without_showing_the_added_chunk(
    heliograph: Heliograph, fake: Fake, openai_sdk: openai.AsyncOpenAI
) -> None:
    stream = await openai_sdk.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == TEXT
    assert all(chunk.choices for chunk in chunks), "the usage-only chunk reached the client"
    assert fake.seen.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    request_id = stream.response.headers["helicone-id"]

    row = await heliograph.wait_for(request_id)
    assert row["is_stream"] is True
    assert (row["prompt_tokens"], row["completion_tokens"]) == (16, 7)
    assert round(row["cost"] * 1e9) == GPT_4O_MINI_NANO_USD
    assert row["time_to_first_token"] <= row["delay_ms"]


async def test_openai_stream_keeps_usage_chunk_when_the_client_asked(
    openai_sdk: openai.AsyncOpenAI,
) -> None:
    stream = await openai_sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 30


async def test_openai_embeddings_are_logged_with_usage(
    heliograph: Heliograph, openai_sdk: openai.AsyncOpenAI
) -> None:
    raw = await openai_sdk.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="hello"
    )
    assert raw.parse().data[0].embedding == [0.1, 0.2]
    row = await heliograph.wait_for(raw.headers["helicone-id"])
    assert (row["prompt_tokens"], row["completion_tokens"]) == (4, 0)
    assert row["pricing_status"] == "priced"
    assert row["cost"] > 0


@pytest.fixture
async def anthropic_sdk(heliograph: Heliograph) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        api_key="sk-ant-provider",
        base_url=f"{heliograph.gateway}/anthropic",
        default_headers={
            "Helicone-Auth": f"Bearer {heliograph.api_key}",
            "Helicone-User-Id": "bob",
        },
        max_retries=0,
    ) as client:
        yield client


async def test_anthropic_messages_non_streaming(
    heliograph: Heliograph, fake: Fake, anthropic_sdk: anthropic.AsyncAnthropic
) -> None:
    raw = await anthropic_sdk.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    message = await raw.parse()
    assert message.content[0].text == TEXT  # type: ignore[union-attr]
    headers = fake.seen.requests[-1]["headers"]
    provider_auth = headers.get("x-api-key") or headers.get("authorization", "")
    assert provider_auth.endswith("sk-ant-provider"), sorted(headers)
    row = await heliograph.wait_for(raw.headers["helicone-id"])
    assert row["provider"] == "ANTHROPIC"
    assert row["model"] == "claude-sonnet-4-5"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (12, 7)
    assert (row["prompt_cache_read_tokens"], row["prompt_cache_write_tokens"]) == (3, 2)
    # $3 in, $15 out, $0.30 cache read, $3.75 cache write per million tokens.
    assert round(row["cost"] * 1e9) == 12 * 3000 + 7 * 15000 + 3 * 300 + 2 * 3750
    assert row["request_user_id"] == "bob"


async def test_anthropic_messages_streaming(
    heliograph: Heliograph, anthropic_sdk: anthropic.AsyncAnthropic
) -> None:
    async with anthropic_sdk.messages.stream(
        model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        request_id = stream.response.headers["helicone-id"]
    assert text == TEXT
    row = await heliograph.wait_for(request_id)
    assert row["is_stream"] is True
    assert (row["prompt_tokens"], row["completion_tokens"]) == (12, 7)
    assert row["time_to_first_token"] is not None


@pytest.fixture
async def gemini_sdk(heliograph: Heliograph) -> AsyncIterator[genai.Client]:
    client = genai.Client(
        api_key="goog-provider-key",
        http_options=types.HttpOptions(
            base_url=f"{heliograph.gateway}/gemini",
            headers={
                "Helicone-Auth": f"Bearer {heliograph.api_key}",
                "Helicone-Property-Team": "g",
            },
        ),
    )
    yield client
    await client.aio.aclose()


async def latest_row(hg: Heliograph, model: str) -> dict[str, object]:
    for _ in range(40):
        status, body = await hg.api_post(
            "/v1/request/query-clickhouse",
            {"filter": {"request_response_rmt": {"model": {"equals": model}}}, "limit": 1},
        )
        assert status == 200, body
        if body["data"]:
            return dict(body["data"][0])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no request with model {model}")


async def test_gemini_generate_content(
    heliograph: Heliograph, fake: Fake, gemini_sdk: genai.Client
) -> None:
    response = await gemini_sdk.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert response.text == TEXT
    assert fake.seen.requests[-1]["headers"]["x-goog-api-key"] == "goog-provider-key"
    row = await latest_row(heliograph, "gemini-2.5-flash")
    assert row["provider"] == "GOOGLE"
    assert row["is_stream"] is False
    assert (row["prompt_tokens"], row["completion_tokens"]) == (8, 6)
    assert round(float(row["cost"]) * 1e9) == 8 * 300 + 6 * 2500  # type: ignore[arg-type]
    assert row["properties"] == {"team": "g"}


async def test_gemini_stream_generate_content(
    heliograph: Heliograph, gemini_sdk: genai.Client
) -> None:
    pieces = []
    async for chunk in await gemini_sdk.aio.models.generate_content_stream(
        model="gemini-2.0-flash", contents="hi"
    ):
        pieces.append(chunk.text or "")
    assert "".join(pieces) == TEXT
    row = await latest_row(heliograph, "gemini-2.0-flash")
    assert row["is_stream"] is True
    assert (row["prompt_tokens"], row["completion_tokens"]) == (8, 6)
    assert row["pricing_status"] == "priced"
