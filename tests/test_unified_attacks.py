"""An attacker's pass over the unified API (`/v1/chat/completions`, `/v1/responses`,
`/v1/embeddings`, `/v1/models`): bodies that are not JSON objects, model strings built to steer
the upstream path, keys of the wrong kind or organization, providers that misbehave (bodies that
are not JSON or of the wrong shape, broken and garbage streams, HTML errors, hangs) and clients
that leave mid-stream. Each is a clear 4xx (or the provider's status in OpenAI's error shape),
nothing refused reaches a provider, what was admitted is logged, and the gateway keeps
answering."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from fake_provider import TEXT, bedrock_api
from fake_provider.google_oauth import write_service_account
from heliograph.domain.access import KeyPermissions

KEYS = {
    "OPENAI_API_KEY": "sk-operator-openai",
    "ANTHROPIC_API_KEY": "sk-ant-operator",
    "GEMINI_API_KEY": "gemini-operator-key",
    "AWS_ACCESS_KEY_ID": bedrock_api.ACCESS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": bedrock_api.SECRET_ACCESS_KEY,
    "AWS_REGION": "us-east-1",
    "VERTEX_LOCATION": "europe-west4",
}
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello"}]
CHAT = "/v1/chat/completions"
MAX_REQUEST_BYTES = 64 * 1024


@pytest.fixture
async def hg(
    tmp_path: Path, analytics_dir: Path, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Heliograph]:
    """Every provider reachable (keys, AWS credentials, a Vertex service account), a small
    body limit and a 1 s upstream read timeout."""
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    write_service_account(tmp_path / "sa.json", f"{fake.origin}/token", project="acme-prod")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "sa.json"))
    monkeypatch.delenv("VERTEX_PROJECT", raising=False)
    for name in ("AZURE_OPENAI_API_KEY", "AZURE_API_KEY", "HELIOGRAPH_AZURE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = heliograph_settings(
        tmp_path,
        analytics_dir,
        fake,
        allowed_target_origins=(fake.origin,),
        max_request_bytes=MAX_REQUEST_BYTES,
        upstream_timeout_s=1.0,
    )
    instance = await start_heliograph(settings)
    yield instance
    while CLIENTS:
        await CLIENTS.pop().close()
    await instance.running.stop()


CLIENTS: list[openai.AsyncOpenAI] = []  # closed when the test's Heliograph stops


def sdk(hg: Heliograph, key: str | None = None, **headers: str) -> openai.AsyncOpenAI:
    client = openai.AsyncOpenAI(
        base_url=f"{hg.gateway}/v1",
        api_key=key or hg.api_key,
        default_headers=headers or None,
        max_retries=0,
    )
    CLIENTS.append(client)
    return client


async def post(
    hg: Heliograph,
    body: bytes | dict[str, Any],
    path: str = CHAT,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """The status, JSON body and headers of one raw POST (the SDK would refuse to send most)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or hg.auth())}
    async with aiohttp.ClientSession() as session:
        async with session.post(hg.gateway + path, data=data, headers=sent) as response:
            text = await response.read()
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
            return response.status, parsed, dict(response.headers)


def error_of(body: Any) -> dict[str, Any]:
    """OpenAI's error shape: `{"error": {"message": ..., "type": ..., "code": ...}}`."""
    assert isinstance(body, dict), body
    error = body["error"]
    assert isinstance(error, dict), body
    assert isinstance(error["message"], str), body
    assert error["message"], body
    assert "type" in error, body
    return error


async def still_answers(hg: Heliograph, model: str = "claude-sonnet-4-5") -> None:
    answer = await sdk(hg).chat.completions.create(model=model, messages=HELLO)
    assert answer.choices[0].message.content == TEXT


# ---- bodies ----------------------------------------------------------------------------------

BAD_BODIES: list[tuple[str, bytes]] = [
    ("malformed", b'{"model": "gpt-4o-mini", "messages": [}'),
    ("array", b'[{"model": "gpt-4o-mini"}]'),
    (
        "invalid utf-8",
        b'{"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
    ),
    (
        "surrogate in model",
        b'{"model": "claude\\ud800", "messages": [{"role": "user", "content": "x"}]}',
    ),
    (
        "surrogate in content",
        b'{"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "\\ud800"}]}',
    ),
    ("surrogate in input", b'{"model": "gemini-embedding-001", "input": ["\\udfff"]}'),
    ("empty", b""),
    ("null", b"null"),
]


@pytest.mark.parametrize("path", [CHAT, "/v1/responses", "/v1/embeddings"])
async def test_bodies_that_are_not_a_json_object_of_text_are_400s(
    hg: Heliograph, fake: Fake, path: str
) -> None:
    for what, body in BAD_BODIES:
        status, answer, headers = await post(hg, body, path)
        assert status == 400, (what, answer)
        error = error_of(answer)
        assert error["code"] == "invalid_request_error", (what, error)
        assert "helicone-id" in {name.lower() for name in headers}, what
    assert fake.seen.requests == [], "nothing refused reached a provider"
    await still_answers(hg)


async def test_a_body_over_the_limit_is_a_413_with_or_without_a_length(
    hg: Heliograph, fake: Fake
) -> None:
    big = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x" * 100_000}]}
    status, answer, _ = await post(hg, big)
    assert status == 413, answer
    assert error_of(answer)["code"] == "too_large"

    async def chunked() -> AsyncIterator[bytes]:
        data = json.dumps(big).encode()
        for start in range(0, len(data), 8192):
            yield data[start : start + 8192]

    async with aiohttp.ClientSession() as session:
        async with session.post(hg.gateway + CHAT, data=chunked(), headers=hg.auth()) as response:
            assert response.status == 413
            error_of(await response.json())
    assert fake.seen.requests == []
    await still_answers(hg)


# ---- model strings ---------------------------------------------------------------------------

MODEL_STRINGS: list[tuple[str, str, str]] = [
    ("11 fallbacks", ",".join(["gpt-4o-mini"] * 11), "invalid_model"),
    ("10,000 characters", "g" * 10_000, "invalid_model"),
    ("dot segments", "../../etc/gemini", "no_usable_route"),
    ("dot segments inside", "a/../b/gemini", "no_usable_route"),
    ("encoded slashes", "x%2f..%2fy/gemini", "no_usable_route"),
    ("encoded slashes on vertex", "x%2f..%2fy/vertex", "no_usable_route"),
    ("query in a gemini model", "gemini-2.5-flash?key=x/gemini", "no_usable_route"),
    ("azure not configured", "gpt-4o/azure", "no_usable_route"),
    ("bedrock id with ?", "anthropic.claude-3-haiku?x=1/bedrock", "no_usable_route"),
    ("bedrock id with #", "anthropic.claude-3-haiku#frag/bedrock", "no_usable_route"),
    (
        "bedrock id with dot segments",
        "arn:aws:bedrock:us-east-1:1:x/../../y/bedrock",
        "no_usable_route",
    ),
    ("vertex model with /", "publishers/google/models/gemini-2.5-flash/vertex", "no_usable_route"),
    ("vertex method smuggled", "gemini-2.5-flash:streamRawPredict/vertex", "no_usable_route"),
    ("unknown provider", "gpt-4o-mini/no-such-provider", "unknown_model"),
    ("only exclusions", "!openai", "invalid_model"),
    ("only exclusions, several", "!openai,!anthropic", "invalid_model"),
    ("zero-width space", "gpt-4o-mini\u200b", "invalid_model"),
    ("bidi override", "\u202egpt-4o-mini", "invalid_model"),
    ("newline", "gpt-4o-mini\n/anthropic", "invalid_model"),
    ("empty entry", "gpt-4o-mini,,claude-sonnet-4-5", "invalid_model"),
    ("blank", "   ", "invalid_request_error"),
]


@pytest.mark.parametrize(
    ("what", "model", "code"), MODEL_STRINGS, ids=[m[0] for m in MODEL_STRINGS]
)
async def test_model_strings_that_cannot_be_served_are_400s_and_never_steer_a_path(
    hg: Heliograph, fake: Fake, what: str, model: str, code: str
) -> None:
    for path, body in (
        (CHAT, {"model": model, "messages": HELLO}),
        ("/v1/responses", {"model": model, "input": "Hello"}),
        ("/v1/embeddings", {"model": model, "input": "Hello"}),
    ):
        status, answer, _ = await post(hg, body, path)
        assert status == 400, (path, answer)
        error = error_of(answer)
        assert error["code"] in (code, "unknown_model", "no_usable_route"), (path, error)
        if path == CHAT:
            assert error["code"] == code, error
        assert len(error["message"]) < 4000, "a refusal never echoes a huge model string"
    assert fake.seen.requests == [], "nothing refused reached a provider"


async def test_a_fallback_past_refused_routes_reaches_only_the_fixed_paths(
    hg: Heliograph, fake: Fake
) -> None:
    """Routes that cannot be called are skipped; the one left goes to its own path only."""
    model = "../../etc/gemini,x%2f..%2fy/vertex,gpt-4o/azure,claude-sonnet-4-5"
    raw = await sdk(hg).chat.completions.with_raw_response.create(model=model, messages=HELLO)
    assert raw.parse().choices[0].message.content == TEXT
    assert [seen["path"] for seen in fake.seen.requests] == ["/v1/messages"]
    row = await hg.wait_for(raw.headers["helicone-id"], timeout_s=5)
    assert row["provider"] == "ANTHROPIC"


# ---- keys --------------------------------------------------------------------------------------


async def test_keys_of_the_wrong_kind_are_refused_before_anything_is_sent(
    hg: Heliograph, fake: Fake
) -> None:
    read_only = hg.running.services.keys.create_key(
        hg.organization_id, "reader", KeyPermissions.READ
    ).api_key
    body = {"model": "claude-sonnet-4-5", "messages": HELLO}
    for key, status, code in (
        ("sk-helicone-wrong", 401, "unauthorized"),
        ("sk-helicone-proxy-wrong", 401, "unauthorized"),
        (read_only, 403, "forbidden"),
    ):
        got, answer, _ = await post(hg, body, headers=hg.auth(key))
        assert got == status, (key, answer)
        assert error_of(answer)["code"] == code
        got, answer, _ = await post(hg, body, headers=hg.gateway_auth(key))
        assert got == status, (key, answer)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        await sdk(hg, key=read_only).chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert "read-only" in str(refused.value)
    assert fake.seen.requests == []
    await still_answers(hg)


async def proxy_key(hg: Heliograph, provider: str, secret: str, key: str | None = None) -> str:
    status, created = await hg.api_post(
        "/v1/api-keys/provider-key",
        {"providerName": provider, "providerKey": secret, "providerKeyName": provider},
        key=key,
    )
    assert status == 201, created
    status, made = await hg.api_post(
        "/v1/api-keys/proxy-key",
        {"proxyKeyName": "team", "providerKeyId": created["data"]["id"]},
        key=key,
    )
    assert status == 201, made
    return str(made["data"]["proxyKey"])


async def test_another_organizations_proxy_key_acts_for_that_organization_only(
    hg: Heliograph, fake: Fake
) -> None:
    _, other_key = hg.new_organization("other")
    theirs = await proxy_key(hg, "anthropic", "sk-ant-theirs", key=other_key)
    raw = await sdk(hg, key=theirs).chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5",
        messages=HELLO,
    )
    assert raw.parse().choices[0].message.content == TEXT
    assert fake.seen.requests[-1]["headers"]["x-api-key"] == "sk-ant-theirs"
    request_id = raw.headers["helicone-id"]
    await hg.wait_for(request_id, timeout_s=5, key=other_key)
    status, _ = await hg.api_get(f"/v1/request/{request_id}")
    assert status == 404, "never logged in the organization that did not send it"
    # Its key reaches only its own provider, and never with ours beside it.
    before = len(fake.seen.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk(hg, key=theirs).chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert "the proxy key is for ANTHROPIC" in str(refused.value)
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk(hg, key=theirs).embeddings.create(model="gemini-embedding-001", input="x")
    assert "the proxy key is for ANTHROPIC" in str(refused.value)
    status, answer, _ = await post(
        hg,
        {"model": "claude-sonnet-4-5", "messages": HELLO},
        headers={**hg.gateway_auth(), "Authorization": f"Bearer {theirs}"},
    )
    assert status == 400, answer
    assert error_of(answer)["code"] == "invalid_auth"
    status, answer, _ = await post(
        hg,
        {"model": "claude-sonnet-4-5", "messages": HELLO},
        headers={**hg.gateway_auth(), "x-api-key": theirs},
    )
    assert status == 400, answer
    assert len(fake.seen.requests) == before
    await still_answers(hg)


async def test_models_needs_a_key(hg: Heliograph) -> None:
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": "Bearer sk-helicone-wrong"}, {"Authorization": ""}):
            async with session.get(f"{hg.gateway}/v1/models", headers=headers) as response:
                assert response.status == 401
                assert error_of(await response.json())["code"] == "unauthorized"
    listed = [model.id async for model in sdk(hg).models.list()]
    assert "claude-sonnet-4-5" in listed


# ---- the provider misbehaving -----------------------------------------------------------------

MISBEHAVING = ["garbage-200", "wrong-shape-200"]


@pytest.mark.parametrize("provider", ["anthropic", "gemini", "openai"])
@pytest.mark.parametrize("model", MISBEHAVING)
async def test_a_200_no_translation_can_read_is_a_502_in_openai_shape_and_logged(
    hg: Heliograph, fake: Fake, provider: str, model: str
) -> None:
    status, answer, headers = await post(hg, {"model": f"{model}/{provider}", "messages": HELLO})
    request_id = headers["Helicone-Id"]
    row = await hg.wait_for(request_id, timeout_s=5)
    assert len(fake.seen.requests) == 1
    if provider == "openai":  # OpenAI's own API passes through untouched, as the proxy does
        assert status == 200
        assert row["response_status"] == 200
        await still_answers(hg)
        return
    assert status == 502, answer
    error = error_of(answer)
    assert error["code"] == "bad_answer"
    assert "shape the gateway cannot read" in error["message"]
    assert "shape the gateway cannot read" in row["error"]
    assert row["response_body"]["error"]["code"] == "bad_answer", "the log has what was sent"
    await still_answers(hg)


async def test_the_log_keeps_the_status_the_client_got_for_an_unreadable_200(
    hg: Heliograph,
) -> None:
    _, _, headers = await post(hg, {"model": "garbage-200/anthropic", "messages": HELLO})
    row = await hg.wait_for(headers["Helicone-Id"], timeout_s=5)
    assert row["response_status"] == 502


@pytest.mark.parametrize("provider", ["anthropic", "gemini", "openai"])
@pytest.mark.parametrize("model", MISBEHAVING)
async def test_a_200_of_the_wrong_shape_through_the_responses_api_is_a_502(
    hg: Heliograph, fake: Fake, provider: str, model: str
) -> None:
    """The Responses API translates even OpenAI's answer, so none passes unread."""
    status, answer, headers = await post(
        hg, {"model": f"{model}/{provider}", "input": "Hello"}, "/v1/responses"
    )
    assert status == 502, answer
    assert "shape the gateway cannot read" in error_of(answer)["message"]
    await hg.wait_for(headers["Helicone-Id"], timeout_s=5)
    await still_answers(hg)


async def test_gemini_embeddings_of_the_wrong_shape_are_a_502(hg: Heliograph, fake: Fake) -> None:
    for encoding in ("float", "base64"):
        status, answer, headers = await post(
            hg,
            {"model": "wrong-shape-200/gemini", "input": ["a", "b"], "encoding_format": encoding},
            "/v1/embeddings",
        )
        assert status == 502, (encoding, answer)
        assert "not a list of numbers" in error_of(answer)["message"]
        row = await hg.wait_for(headers["Helicone-Id"], timeout_s=5)
        assert "not a list of numbers" in row["error"]
    await still_answers(hg)


@pytest.mark.parametrize("provider", ["anthropic", "gemini", "openai"])
async def test_an_html_error_keeps_its_status_in_openai_shape(
    hg: Heliograph, fake: Fake, provider: str
) -> None:
    status, answer, headers = await post(hg, {"model": f"html-error/{provider}", "messages": HELLO})
    assert status == 502
    row = await hg.wait_for(headers["Helicone-Id"], timeout_s=5)
    assert row["response_status"] == 502
    if provider != "openai":  # a passthrough keeps the provider's body as it is
        error = error_of(answer)
        assert "<html>" not in json.dumps(error).lower() or "Bad Gateway" in error["message"]
    await still_answers(hg)


async def stream_events(hg: Heliograph, model: str) -> tuple[list[bytes], str]:
    """The `data:` payloads of a chat stream as the client gets them, and the request's id."""
    async with aiohttp.ClientSession() as session:
        body = {"model": model, "messages": HELLO, "stream": True}
        async with session.post(hg.gateway + CHAT, json=body, headers=hg.auth()) as response:
            assert response.status == 200
            data = await response.read()
            request_id = response.headers["Helicone-Id"]
    return [line[6:] for line in data.split(b"\n") if line.startswith(b"data: ")], request_id


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
async def test_a_stream_that_breaks_midway_never_looks_finished_and_is_logged_with_its_error(
    hg: Heliograph, fake: Fake, provider: str
) -> None:
    events, request_id = await stream_events(hg, f"broken-stream/{provider}")
    assert events, "what came before the break was passed on"
    assert b"[DONE]" not in events
    *chunks, last = [json.loads(event) for event in events]
    assert chunks, "the text that came first"
    assert not [c for c in chunks for choice in c["choices"] if choice.get("finish_reason")]
    assert last["error"]["code"] == "upstream_stream_failed", "the client is told it broke"
    row = await hg.wait_for(request_id, timeout_s=5)
    assert "provider stream failed" in row["error"]
    await still_answers(hg)


async def test_the_client_is_told_a_stream_broke(hg: Heliograph) -> None:
    stream = await sdk(hg).chat.completions.create(
        model="broken-stream/anthropic",
        messages=HELLO,
        stream=True,
    )
    with pytest.raises((openai.APIError, aiohttp.ClientError, httpx.HTTPError)):
        async for _ in stream:
            pass


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
async def test_a_stream_of_garbage_events_is_survived_and_logged(
    hg: Heliograph, fake: Fake, provider: str
) -> None:
    events, request_id = await stream_events(hg, f"garbage-stream/{provider}")
    assert events[-1] == b"[DONE]", "the stream the client gets is well formed to its end"
    chunks = [json.loads(event) for event in events[:-1]]  # every event is JSON
    errors = [chunk["error"] for chunk in chunks if "error" in chunk]
    if provider == "anthropic":  # an event of the wrong shape ends it with OpenAI's error event
        assert len(errors) == 1, chunks
        assert errors[0]["code"] == "bad_answer"
        assert "error" in chunks[-1], "nothing after the error"
    row = await hg.wait_for(request_id, timeout_s=5)
    # The provider's bytes are kept as they came (base64: they are not UTF-8).
    assert b"\xff\xfe binary" in base64.b64decode(row["provider_response_body"])
    await still_answers(hg)


async def test_the_sdk_raises_on_a_garbage_stream(hg: Heliograph) -> None:
    stream = await sdk(hg).chat.completions.create(
        model="garbage-stream/anthropic",
        messages=HELLO,
        stream=True,
    )
    with pytest.raises(openai.APIError, match="cannot read"):
        async for _ in stream:
            pass
    responses = await sdk(hg).responses.create(
        model="garbage-stream/anthropic", input="Hello", stream=True
    )
    kinds = [event.type async for event in responses]
    assert kinds[-1] == "response.failed", kinds


async def test_a_hanging_provider_times_out_and_the_fallback_answers(
    hg: Heliograph, fake: Fake
) -> None:
    raw = await sdk(hg).chat.completions.with_raw_response.create(
        model="hang/anthropic,hang/gemini,gpt-4o-mini",
        messages=HELLO,
    )
    assert raw.parse().choices[0].message.content == TEXT
    row = await hg.wait_for(raw.headers["helicone-id"], timeout_s=5)
    assert row["provider"] == "OPENAI"
    assert row["properties"]["Helicone-Attempts"] == (
        "hang/anthropic=no answer, hang/gemini=no answer, gpt-4o-mini/openai=200"
    )
    with pytest.raises(openai.APIStatusError) as failed:
        await sdk(hg).chat.completions.create(model="hang/anthropic", messages=HELLO)
    assert failed.value.status_code == 504
    assert failed.value.response.headers["helicone-id"]
    row = await hg.wait_for(failed.value.response.headers["helicone-id"], timeout_s=5)
    assert "timed out" in row["error"]


async def test_a_client_leaving_a_translated_stream_closes_the_providers_connection(
    hg: Heliograph, fake: Fake
) -> None:
    async with aiohttp.ClientSession() as session:
        body = {"model": "slow-stream/anthropic", "messages": HELLO, "stream": True}
        response = await session.post(hg.gateway + CHAT, json=body, headers=hg.auth())
        assert response.status == 200
        request_id = response.headers["Helicone-Id"]
        first = await response.content.readline()
        assert first.startswith(b"data: "), first
        response.close()
    for _ in range(100):
        if fake.seen.cancelled:
            break
        await asyncio.sleep(0.05)
    assert fake.seen.cancelled == 1, "the provider stops generating for nobody"
    row = await hg.wait_for(request_id, timeout_s=5)
    assert row["response_status"] == -3
    await still_answers(hg)


# ---- the Responses API and embeddings -----------------------------------------------------------


async def test_responses_refuses_server_state_and_built_in_tools(
    hg: Heliograph, fake: Fake
) -> None:
    client = sdk(hg)
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(
            model="claude-sonnet-4-5", input="Hello", previous_response_id="resp_123"
        )
    assert "previous_response_id" in str(refused.value)
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(
            model="gpt-4o-mini", input="Hello", tools=[{"type": "web_search"}]
        )
    assert "web_search" in str(refused.value)
    assert fake.seen.requests == []
    response = await client.responses.create(model="gemini-2.5-flash", input="Hello")
    assert response.output_text == TEXT


async def test_too_many_embedding_inputs_are_a_400(hg: Heliograph, fake: Fake) -> None:
    for model in ("text-embedding-3-small", "gemini-embedding-001"):
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk(hg).embeddings.create(model=model, input=["word"] * 3000)
        assert "2048" in str(refused.value)
    assert fake.seen.requests == []
    embedded = await sdk(hg).embeddings.create(model="gemini-embedding-001", input=["a", "b"])
    assert len(embedded.data) == 2


async def test_gemini_takes_at_most_100_embedding_inputs_a_call(hg: Heliograph, fake: Fake) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk(hg).embeddings.create(model="gemini-embedding-001", input=["word"] * 101)
    assert "at most 100" in str(refused.value)
    assert fake.seen.requests == []
    embedded = await sdk(hg).embeddings.create(model="gemini-embedding-001", input=["w"] * 100)
    assert len(embedded.data) == 100


# ---- values a translation does not expect, and headers that try to steer -----------------------

ODD_VALUES: list[tuple[str, dict[str, Any]]] = [
    ("max_tokens beyond any integer", {"max_tokens": 1e308}),
    ("reasoning_effort as a list", {"reasoning_effort": []}),
    ("reasoning_effort as an object", {"reasoning_effort": {"x": 1}}),
]


@pytest.mark.parametrize(("what", "fields"), ODD_VALUES, ids=[v[0] for v in ODD_VALUES])
async def test_values_a_translation_cannot_take_are_400s_naming_the_route(
    hg: Heliograph, fake: Fake, what: str, fields: dict[str, Any]
) -> None:
    for model in ("claude-sonnet-4-5", "anthropic.claude-3-5-sonnet-20240620-v1:0/bedrock"):
        status, answer, _ = await post(hg, {"model": model, "messages": HELLO, **fields})
        assert status == 400, (model, answer)
        error = error_of(answer)
        assert error["code"] == "no_usable_route", error
        assert "cannot be translated" in error["message"], error
    assert fake.seen.requests == []
    await still_answers(hg)


async def test_helicone_headers_cannot_steer_a_unified_call_elsewhere(
    hg: Heliograph, fake: Fake
) -> None:
    raw = await sdk(
        hg,
        **{
            "Helicone-Target-Url": "http://169.254.169.254",
            "Helicone-OpenAI-Api-Base": "https://evil.openai.azure.com",
            "Helicone-Fallbacks": '[{"target-url": "http://127.0.0.1:1", "headers": {}}]',
        },
    ).chat.completions.with_raw_response.create(model="claude-sonnet-4-5", messages=HELLO)
    assert raw.parse().choices[0].message.content == TEXT
    assert [seen["path"] for seen in fake.seen.requests] == ["/v1/messages"]
    row = await hg.wait_for(raw.headers["helicone-id"], timeout_s=5)
    assert row["target_url"] == fake.origin


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_body_is_held_to_the_limit_once_inflated(
    hg: Heliograph, fake: Fake, encoding: str
) -> None:
    """A kilobyte that inflates past `max_request_bytes` is a 413, never read whole."""
    text = json.dumps({"model": "claude-sonnet-4-5", "messages": HELLO, "pad": " " * 2_000_000})
    packed = gzip.compress(text.encode()) if encoding == "gzip" else zlib.compress(text.encode())
    assert len(packed) < MAX_REQUEST_BYTES
    headers = {**hg.auth(), "Content-Encoding": encoding}
    status, answer, _ = await post(hg, packed, headers=headers)
    assert status == 413, answer
    error_of(answer)
    assert fake.seen.requests == []
    await still_answers(hg)


async def test_stored_keys_that_cannot_be_read_are_a_503_for_every_provider(
    hg: Heliograph, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app DB away: never the operator's key instead (the wrong account would pay), and
    never a 500 on the clouds' routes or the model list."""
    gateway = hg.running.gateway
    assert gateway is not None
    keys = gateway.proxy._unified._keys  # type: ignore[union-attr]
    assert keys is not None

    async def away(organization_id: str, provider_name: str) -> str | None:
        raise ConnectionError("app DB away")

    working = keys.secret
    monkeypatch.setattr(keys, "secret", away)
    for model in (
        "claude-sonnet-4-5",
        "anthropic.claude-3-5-sonnet-20240620-v1:0/bedrock",
        "gemini-2.5-flash/vertex",
        "claude-sonnet-4-5,gpt-4o-mini",
    ):
        status, answer, _ = await post(hg, {"model": model, "messages": HELLO})
        assert status == 503, (model, answer)
        assert error_of(answer)["code"] == "provider_keys_unavailable"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{hg.gateway}/v1/models", headers=hg.auth()) as response:
            assert response.status == 503
    assert fake.seen.requests == []
    monkeypatch.setattr(keys, "secret", working)  # the store is back
    await still_answers(hg)


async def test_a_passthrough_stream_that_breaks_midway_is_cut_off_not_ended(
    hg: Heliograph,
) -> None:
    """On the passthrough routes the bytes are the provider's: the gateway adds no event of its
    own, it drops the connection, so the client never takes the stream for complete."""
    body = {"model": "broken-stream", "max_tokens": 8, "messages": HELLO, "stream": True}
    headers = {**hg.gateway_auth(), "x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            hg.gateway + "/anthropic/v1/messages", json=body, headers=headers
        ) as response:
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
            request_id = response.headers["Helicone-Id"]
    row = await hg.wait_for(request_id, timeout_s=5)
    assert "provider stream failed" in row["error"]
    await still_answers(hg)
