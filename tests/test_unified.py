"""The unified API end to end: the official OpenAI SDK, pointed at the gateway's `/v1` with a
Heliograph key, calls the OpenAI, Anthropic and Gemini fakes by model string, streaming and not,
with tools; fallbacks move past a failing provider; every request is logged under the provider
that answered, with its exact usage and cost."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from browser import Browser
from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from fake_provider import TEXT
from fake_provider.shared import TOOL_ARGUMENTS

KEYS = {
    "OPENAI_API_KEY": "sk-operator-openai",
    "ANTHROPIC_API_KEY": "sk-ant-operator",
    "GEMINI_API_KEY": "gemini-operator-key",
}
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello"},
]
WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}
# model string → (provider logged, path the fake saw, key header the fake saw and its value)
MODELS = {
    "gpt-4o-mini": ("OPENAI", "/v1/chat/completions", "authorization", "Bearer sk-operator-openai"),
    "claude-sonnet-4-5": ("ANTHROPIC", "/v1/messages", "x-api-key", "sk-ant-operator"),
    "gemini-2.5-flash": (
        "GOOGLE",
        "/v1beta/models/gemini-2.5-flash:",
        "x-goog-api-key",
        "gemini-operator-key",
    ),
}


@pytest.fixture
async def unified(
    tmp_path: Path, analytics_dir: Path, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Heliograph]:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    instance = await start_heliograph(heliograph_settings(tmp_path, analytics_dir, fake))
    yield instance
    await instance.running.stop()


def client(hg: Heliograph, key: str | None = None, **headers: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{hg.gateway}/v1",
        api_key=key or hg.api_key,
        default_headers=headers or None,
        max_retries=0,
    )


def prompt_tokens(row: dict[str, Any]) -> int:
    """The prompt as OpenAI counts it: the stored count leaves out cache reads and writes."""
    cached = row["prompt_cache_read_tokens"] + row["prompt_cache_write_tokens"]
    return int(row["prompt_tokens"]) + int(cached)


def completion_tokens(row: dict[str, Any]) -> int:
    """The completion as OpenAI counts it: the stored count leaves out reasoning."""
    return int(row["completion_tokens"]) + int(row["reasoning_tokens"])


@pytest.mark.parametrize("model", list(MODELS))
async def test_one_client_reaches_every_provider_and_each_is_logged(
    unified: Heliograph, fake: Fake, model: str
) -> None:
    provider, path, key_header, key = MODELS[model]
    raw = await client(unified).chat.completions.with_raw_response.create(
        model=model, messages=MESSAGES
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    seen = fake.seen.requests[-1]
    assert seen["path"].startswith(path)
    assert seen["headers"][key_header] == key
    assert unified.api_key not in json.dumps(seen), "the Heliograph key never reaches a provider"
    assert raw.headers["helicone-provider"] == provider
    row = await unified.wait_for(raw.headers["helicone-id"], timeout_s=5)
    assert row["provider"] == provider
    assert prompt_tokens(row) == completion.usage.prompt_tokens
    assert completion_tokens(row) == completion.usage.completion_tokens
    assert row["cost"] > 0
    assert row["response_body"]["choices"][0]["message"]["content"] == TEXT
    assert row["request_body"]["model"] == model, "stored as the client sent it"
    if provider == "OPENAI":  # it speaks the client's API: nothing else to keep
        assert "provider_request_body" not in row
    else:  # and the provider's own request and answer beside them
        assert json.loads(row["provider_request_body"]) == seen["body"]
        assert TEXT in row["provider_response_body"]


@pytest.mark.parametrize("model", list(MODELS))
async def test_streams_are_translated_chunk_by_chunk(
    unified: Heliograph, fake: Fake, model: str
) -> None:
    stream = await client(unified).chat.completions.create(
        model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text, usage, finish = [], None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(text) == TEXT
    assert finish == "stop"
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    request_id = stream.response.headers["helicone-id"]
    row = await unified.wait_for(request_id, timeout_s=5)
    assert row["provider"] == MODELS[model][0]
    assert row["is_stream"]
    assert (prompt_tokens(row), completion_tokens(row)) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert row["cost"] > 0


@pytest.mark.parametrize("model", list(MODELS))
async def test_streams_without_usage_asked_still_log_it(
    unified: Heliograph, fake: Fake, model: str
) -> None:
    stream = await client(unified).chat.completions.create(
        model=model, messages=MESSAGES, stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None for chunk in chunks), "no usage chunk the client did not ask"
    assert all(chunk.choices for chunk in chunks)
    row = await unified.wait_for(stream.response.headers["helicone-id"], timeout_s=5)
    assert row["prompt_tokens"] > 0
    assert row["cost"] > 0


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("stream", [False, True])
async def test_tools_round_trip(unified: Heliograph, model: str, stream: bool) -> None:
    sdk = client(unified)
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        name, arguments, call_id = "", "", ""
        chunks = await sdk.chat.completions.create(
            model=model, messages=messages, tools=[WEATHER], stream=True
        )
        finish = None
        async for chunk in chunks:
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                for delta in choice.delta.tool_calls or []:
                    call_id = delta.id or call_id
                    if delta.function is not None:
                        name += delta.function.name or ""
                        arguments += delta.function.arguments or ""
    else:
        completion = await sdk.chat.completions.create(
            model=model, messages=messages, tools=[WEATHER]
        )
        finish = completion.choices[0].finish_reason
        calls = completion.choices[0].message.tool_calls or []
        assert len(calls) == 1
        function = calls[0].function  # type: ignore[union-attr]
        name, arguments, call_id = function.name, function.arguments, calls[0].id
    assert finish == "tool_calls"
    assert name == "get_weather"
    assert json.loads(arguments) == TOOL_ARGUMENTS
    # The tool's result goes back and the model answers in words.
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "18 °C, sunny"},
    ]
    answer = await sdk.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
    assert answer.choices[0].message.content == TEXT


async def test_a_fallback_list_moves_past_a_failing_provider(
    unified: Heliograph, fake: Fake
) -> None:
    raw = await client(unified).chat.completions.with_raw_response.create(
        model="error-500/anthropic,error-429/gemini,gpt-4o-mini", messages=MESSAGES
    )
    assert raw.parse().choices[0].message.content == TEXT
    paths = [seen["path"] for seen in fake.seen.requests[-3:]]
    assert paths[0] == "/v1/messages"
    assert paths[1].startswith("/v1beta/models/error-429:generateContent")
    assert paths[2] == "/v1/chat/completions"
    assert raw.headers["helicone-fallback-index"] == "2"
    row = await unified.wait_for(raw.headers["helicone-id"], timeout_s=5)
    assert row["provider"] == "OPENAI"
    assert row["attempts"] == 3
    assert row["properties"]["Helicone-Attempts"] == (
        "error-500/anthropic=500, error-429/gemini=429, gpt-4o-mini/openai=200"
    )
    assert row["properties"]["Helicone-Model-Route"] == "gpt-4o-mini/openai"


async def test_a_fallback_list_that_fails_throughout_answers_the_last_error_in_openai_shape(
    unified: Heliograph,
) -> None:
    with pytest.raises(openai.RateLimitError) as raised:
        await client(unified).chat.completions.create(
            model="error-500/openai,anthropic-429/anthropic", messages=MESSAGES
        )
    body: Any = raised.value.body
    assert body["type"] == "rate_limit_error"
    assert body["message"] == "fake rate_limit_error"
    assert raised.value.response.headers["helicone-fallback-index"] == "1"


async def test_provider_errors_keep_their_status_in_openai_shape(unified: Heliograph) -> None:
    for model in ("error-500/anthropic", "error-500/gemini", "error-500/openai"):
        with pytest.raises(openai.InternalServerError) as raised:
            await client(unified).chat.completions.create(model=model, messages=MESSAGES)
        assert raised.value.status_code == 500
        assert isinstance(raised.value.body, dict), model
        assert raised.value.body.get("message"), model


async def test_refusals_are_clear_4xx_errors(unified: Heliograph, fake: Fake) -> None:
    sdk = client(unified)
    before = len(fake.seen.requests)
    cases: list[tuple[str, dict[str, Any], type[openai.APIStatusError], str]] = [
        ("unknown model", {"model": "no-such-model-xyz"}, openai.BadRequestError, "unknown_model"),
        ("excluded", {"model": "claude-sonnet-4-5,!anthropic"}, openai.BadRequestError, "no_route"),
        (
            "untranslatable",
            {"model": "claude-sonnet-4-5", "logprobs": True},
            openai.BadRequestError,
            "no_usable_route",
        ),
    ]
    for what, fields, error, code in cases:
        with pytest.raises(error) as raised:
            await sdk.chat.completions.create(messages=MESSAGES, **fields)
        assert isinstance(raised.value.body, dict), what
        assert raised.value.body["code"] == code, what
    with pytest.raises(openai.AuthenticationError):
        await client(unified, key="sk-helicone-wrong").chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
    async with aiohttp.ClientSession() as session:
        for body in (b"{", b"[]", b'{"model": 3, "messages": []}', b'{"model": "gpt-4o"}'):
            async with session.post(
                f"{unified.gateway}/v1/chat/completions",
                data=body,
                headers={**unified.auth(), "Content-Type": "application/json"},
            ) as response:
                assert response.status == 400, body
                assert (await response.json())["error"]["code"] == "invalid_request_error"
    assert len(fake.seen.requests) == before, "nothing refused reached a provider"


async def test_helicone_auth_and_helicone_headers_work_here_too(unified: Heliograph) -> None:
    sdk = openai.AsyncOpenAI(
        base_url=f"{unified.gateway}/v1",
        api_key="ignored-by-heliograph",
        default_headers={
            **unified.gateway_auth(),
            "Helicone-Property-Team": "search",
            "Helicone-Session-Id": "s-1",
            "Helicone-User-Id": "ada",
        },
        max_retries=0,
    )
    raw = await sdk.chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5", messages=MESSAGES
    )
    row = await unified.wait_for(raw.headers["helicone-id"], timeout_s=5)
    assert row["properties"]["team"] == "search"
    assert row["session_id"] == "s-1"
    assert row["request_user_id"] == "ada"


async def test_without_a_key_for_the_provider_the_route_is_passed_over(
    unified: Heliograph, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, analytics_dir: Path
) -> None:
    fake_origin = unified.running.services.settings.provider_base_urls["openai"]
    for name in KEYS:
        monkeypatch.delenv(name)
    settings = heliograph_settings(tmp_path / "second", analytics_dir, None)
    settings = type(settings)(
        **{**settings.__dict__, "provider_base_urls": {"openai": fake_origin}}
    )
    bare = await start_heliograph(settings)
    try:
        with pytest.raises(openai.BadRequestError) as raised:
            await client(bare).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert "no OPENAI key stored or configured" in str(raised.value)
    finally:
        await bare.running.stop()


async def test_an_organizations_own_key_goes_before_the_operators(
    unified: Heliograph, fake: Fake
) -> None:
    other_id, other_key = unified.new_organization("byok")
    status, _ = await unified.api_post(
        "/v1/api-keys/provider-key",
        {"providerName": "anthropic", "providerKey": "sk-ant-own-key", "providerKeyName": "own"},
        key=other_key,
    )
    assert status == 201
    await client(unified, key=other_key).chat.completions.create(
        model="claude-sonnet-4-5", messages=MESSAGES
    )
    assert fake.seen.requests[-1]["headers"]["x-api-key"] == "sk-ant-own-key"
    # Another organization, without a key of its own, is answered with the operator's.
    await client(unified).chat.completions.create(model="claude-sonnet-4-5", messages=MESSAGES)
    assert fake.seen.requests[-1]["headers"]["x-api-key"] == KEYS["ANTHROPIC_API_KEY"]
    assert other_id != unified.organization_id


async def test_a_proxy_key_reaches_only_its_provider_with_its_stored_key(
    unified: Heliograph, fake: Fake
) -> None:
    status, created = await unified.api_post(
        "/v1/api-keys/provider-key",
        {"providerName": "anthropic", "providerKey": "sk-ant-proxied", "providerKeyName": "p"},
    )
    assert status == 201
    status, proxy = await unified.api_post(
        "/v1/api-keys/proxy-key", {"proxyKeyName": "team", "providerKeyId": created["data"]["id"]}
    )
    assert status == 201, proxy
    sdk = client(unified, key=proxy["data"]["proxyKey"])
    answer = await sdk.chat.completions.create(model="claude-sonnet-4-5", messages=MESSAGES)
    assert answer.choices[0].message.content == TEXT
    assert fake.seen.requests[-1]["headers"]["x-api-key"] == "sk-ant-proxied"
    before = len(fake.seen.requests)
    with pytest.raises(openai.BadRequestError) as raised:
        await sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "the proxy key is for ANTHROPIC" in str(raised.value)
    assert len(fake.seen.requests) == before
    assert "claude-sonnet-4-5" in [model.id async for model in sdk.models.list()]


@pytest.mark.parametrize("model", list(MODELS))
async def test_the_responses_api_reaches_every_provider(unified: Heliograph, model: str) -> None:
    sdk = client(unified)
    response = await sdk.responses.create(model=model, input="Hello", instructions="Be brief.")
    assert response.output_text == TEXT
    assert response.status == "completed"
    assert response.usage is not None
    assert response.usage.input_tokens > 0
    stream = await sdk.responses.create(model=model, input="Hello", stream=True)
    kinds, text, completed = [], "", None
    async for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
        if event.type == "response.completed":
            completed = event.response
    assert text == TEXT
    assert kinds[0] == "response.created"
    assert completed is not None
    assert completed.usage is not None
    assert completed.usage.output_tokens > 0
    request_id = stream.response.headers["helicone-id"]
    row = await unified.wait_for(request_id, timeout_s=5)
    assert row["request_path"] == "/v1/responses"
    assert row["provider"] == MODELS[model][0]
    assert row["cost"] > 0


async def test_the_responses_api_calls_tools(unified: Heliograph) -> None:
    response = await client(unified).responses.create(
        model="claude-sonnet-4-5",
        input="Weather in Paris?",
        tools=[
            {
                "type": "function",
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": False,
            }
        ],
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1
    assert calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == TOOL_ARGUMENTS


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("text-embedding-3-small", "/v1/embeddings"),
        ("gemini-embedding-001", "/v1beta/models/gemini-embedding-001:batchEmbedContents"),
    ],
)
async def test_embeddings_by_model_string(
    unified: Heliograph, fake: Fake, model: str, path: str
) -> None:
    raw = await client(unified).embeddings.with_raw_response.create(
        model=model, input=["one", "two"] if "gemini" in model else "one"
    )
    embeddings = raw.parse()
    assert embeddings.data[0].embedding
    assert fake.seen.requests[-1]["path"] == path
    row = await unified.wait_for(raw.headers["helicone-id"], timeout_s=5)
    assert row["request_path"] == "/v1/embeddings"
    with pytest.raises(openai.BadRequestError):
        await client(unified).embeddings.create(model=model, input=[])


async def test_models_lists_what_the_organization_can_call(unified: Heliograph) -> None:
    listed = {model.id: model.owned_by async for model in client(unified).models.list()}
    assert listed["gpt-4o-mini"] == "openai"
    assert listed["claude-sonnet-4-5"] == "anthropic"
    assert listed["gemini-2.5-flash"] == "gemini"
    assert not [name for name in listed if name.startswith("grok-")], "no xAI key anywhere"
    with pytest.raises(openai.AuthenticationError):
        await client(unified, key="sk-helicone-wrong").models.list()


async def test_the_request_page_shows_the_providers_own_bodies(unified: Heliograph) -> None:
    raw = await client(unified).chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5", messages=MESSAGES
    )
    request_id = raw.headers["helicone-id"]
    await unified.wait_for(request_id, timeout_s=5)
    unified.running.services.accounts.create_user(
        "ada@example.test", "correct horse battery staple", unified.organization_id
    )
    person = Browser(unified.api)
    try:
        status, _ = await person.login("ada@example.test", "correct horse battery staple")
        assert status == 200
        async with person.session.get(f"{unified.api}/requests/{request_id}") as response:
            page = await response.text()
    finally:
        await person.session.close()
    assert response.status == 200, page[:300]
    assert "Provider request body" in page
    assert "Provider response body" in page
    assert "max_tokens" in page, "the Messages request as Anthropic got it"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_cached_translated_answer_is_replayed_as_the_client_got_it(
    unified: Heliograph, fake: Fake, stream: bool
) -> None:
    body = {"model": "claude-sonnet-4-5", "messages": MESSAGES, "stream": stream}
    headers = {**unified.auth(), "Helicone-Cache-Enabled": "true"}
    answers, ids = [], []
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.post(
                f"{unified.gateway}/v1/chat/completions", json=body, headers=headers
            ) as response:
                answers.append(await response.read())
                ids.append((response.headers["Helicone-Id"], response.headers["Helicone-Cache"]))
    assert answers[0] == answers[1]
    assert TEXT.encode() in answers[0] or b"\\u" in answers[0]
    assert [cache for _, cache in ids] == ["MISS", "HIT"]
    first = await unified.wait_for(ids[0][0], timeout_s=5)
    replay = await unified.wait_for(ids[1][0], timeout_s=5)
    assert replay["cache_reference_id"] == first["request_id"]
    for count in ("prompt_tokens", "completion_tokens", "prompt_cache_write_tokens"):
        assert replay[count] == first[count], f"{count}: read from the replayed answer"
    assert replay["cost"] == 0
