"""Helicone's async-log routes (`/{oai,anthropic,googleapis,custom}/v1/log`) on the API port and
the gateway port: what is stored (model, tokens, cost, times, `Helicone-*` options, streams),
bad input (each a 400 that names the field, 401, 403, 413), isolation between organizations;
the model a `/v1/log/request` message names; and the `Helicone-Status` / `helicone-error`
response headers of the gateway."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

from conftest import Fake, Heliograph
from gateway_harness import AUTH, gateway
from heliograph.domain.access import KeyPermissions
from heliograph.domain.pricing import price_usage
from heliograph.domain.usage import Usage
from heliograph.gateway.proxy import Proxy

START = datetime(2026, 3, 4, 5, 6, 7, 250_000, tzinfo=UTC)
TIMING = {
    "startTime": {"seconds": int(START.timestamp()), "milliseconds": 250},
    "endTime": {"seconds": int(START.timestamp()) + 2, "milliseconds": 0},
    "timeToFirstToken": 120,
}
BACKWARDS = {"startTime": TIMING["endTime"], "endTime": TIMING["startTime"]}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi ü"}]}
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}}],
    "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
}


def async_log(
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "providerRequest": {
            "url": "https://api.openai.com/v1/chat/completions",
            "json": CHAT if request is None else request,
            "meta": meta or {},
        },
        "providerResponse": {
            "headers": {},
            "status": 200,
            "json": COMPLETION if response is None else response,
        },
        "timing": TIMING,
        **extra,
    }


async def post(
    url: str, body: Any, headers: dict[str, str]
) -> tuple[int, Any, CIMultiDictProxy[str]]:
    data = (
        body if isinstance(body, bytes) else json.dumps(body).encode()
    )  # orjson stops at 255 levels
    all_headers = {"Content-Type": "application/json", **headers}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers=all_headers) as response,
    ):
        return response.status, await response.json(content_type=None), response.headers


def nested(depth: int) -> dict[str, Any]:
    document: dict[str, Any] = {"model": "gpt-4o-mini"}
    for _ in range(depth):
        document = {"a": document}
    return document


def nano(row: dict[str, Any]) -> int:
    return round(float(row["cost"]) * 1e9)


def priced(prompt: int, completion: int, model: str, provider: str | None) -> int:
    return price_usage(Usage(prompt, completion), model, provider).cost_nano_usd


@pytest.mark.parametrize("port", ["api", "gateway"])
async def test_each_route_logs_model_tokens_and_cost(
    heliograph: Heliograph, fake: Fake, port: str
) -> None:
    base = heliograph.api if port == "api" else heliograph.gateway
    anthropic = {
        "id": "msg_1",
        "type": "message",
        "model": "claude-3-5-haiku-20241022",
        "content": [{"type": "text", "text": "Hello"}],
        "usage": {"input_tokens": 30, "output_tokens": 12},
    }
    gemini_url = (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-1.5-flash:generateContent"
    )
    gemini = {
        "candidates": [{"content": {"parts": [{"text": "Hello"}]}}],
        "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 8},
    }
    cases = [
        ("oai", async_log(), "OPENAI", "gpt-4o-mini", (100, 50), "openai"),
        (
            "anthropic",
            async_log({"model": "claude-3-5-haiku-20241022", "messages": []}, anthropic),
            "ANTHROPIC",
            "claude-3-5-haiku-20241022",
            (30, 12),
            "anthropic",
        ),
        (
            "googleapis",
            async_log({"contents": []}, gemini),
            "GOOGLE",
            "gemini-1.5-flash",
            (40, 8),
            "google",
        ),
        ("custom", async_log(), "CUSTOM", "gpt-4o-mini", (100, 50), None),
    ]
    cases[2][1]["providerRequest"]["url"] = gemini_url
    for route, body, provider, model, (prompt, completion), price_id in cases:
        status, answer, headers = await post(f"{base}/{route}/v1/log", body, heliograph.auth())
        assert status == 200, answer
        request_id = answer["data"]["request_id"]
        assert headers["Helicone-Id"] == request_id
        row = await heliograph.wait_for(request_id)
        assert (row["provider"], row["model"]) == (provider, model), route
        assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion), route
        expected = priced(prompt, completion, model, price_id)
        assert expected > 0
        assert nano(row) == expected, route
        assert row["request_created_at"].startswith("2026-03-04T05:06:07.250")
        assert (row["delay_ms"], row["time_to_first_token"], row["response_status"]) == (
            1750,
            120,
            200,
        )
    assert fake.seen.requests == []  # the gateway never forwards a log upstream


@pytest.mark.parametrize(
    ("response", "tokens"),
    [
        ({"usage": {"prompt_tokens": 10, "completion_tokens": 20}}, (10, 20)),
        ({"usage": {"input_tokens": 11, "output_tokens": 21}}, (11, 21)),
        ({"usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 22}}, (12, 22)),
        ({"prompt_token_count": 13, "generation_token_count": 23}, (13, 23)),
    ],
)
async def test_custom_logs_read_every_documented_usage_shape(
    heliograph: Heliograph, response: dict[str, Any], tokens: tuple[int, int]
) -> None:
    request = {"model": "gpt-4o-mini", "prompt": "Tell me a joke"}
    body = async_log(request, {"text": "Why did the chicken...", **response})
    status, answer, _ = await post(f"{heliograph.api}/custom/v1/log", body, heliograph.auth())
    assert status == 200, answer
    row = await heliograph.wait_for(answer["data"]["request_id"])
    assert (row["prompt_tokens"], row["completion_tokens"]) == tokens
    assert nano(row) == priced(*tokens, "gpt-4o-mini", None)


async def test_a_custom_model_with_its_own_cost_and_a_text_body(heliograph: Heliograph) -> None:
    body = async_log({"model": "my-llama", "prompt": "hi"})
    body["providerResponse"] = {"headers": {}, "status": 200, "textBody": "Hi!", "cost": 0.0125}
    del body["timing"]  # optional: both times are then the time it arrived
    body["providerRequest"]["url"] = "http://[::1/not-a-url"  # kept as it came
    status, answer, _ = await post(f"{heliograph.api}/custom/v1/log", body, heliograph.auth())
    assert status == 200, answer
    row = await heliograph.wait_for(answer["data"]["request_id"])
    assert (row["model"], row["response_body"], nano(row)) == ("my-llama", "Hi!", 12_500_000)
    assert row["target_url"] == row["request_path"] == "http://[::1/not-a-url"
    created = datetime.fromisoformat(row["request_created_at"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60
    assert row["delay_ms"] == 0


async def test_helicone_options_come_from_meta_and_headers(heliograph: Heliograph) -> None:
    chosen = str(uuid.uuid4())
    meta = {
        "Helicone-Auth": f"Bearer {heliograph.api_key}",
        "Helicone-User-Id": "from-meta",
        "Helicone-Property-App": "meta-app",
        "Helicone-Property-Tier": "gold",
        "Helicone-Session-Id": "s-1",
        "Helicone-Session-Path": "/plan",
        "Helicone-Omit-Request": True,
        "litellm_call_id": {"not": "a header"},  # anything else a sender keeps there is ignored
        "Helicone-Property-Unset": None,  # as if absent
    }
    headers = {
        **heliograph.auth(),
        "Helicone-User-Id": "from-header",  # the log request's own headers win over the meta
        "Helicone-Request-Id": chosen,
        "Helicone-Model-Override": "gpt-4o",
    }
    status, answer, response_headers = await post(
        f"{heliograph.gateway}/oai/v1/log", async_log(meta=meta), headers
    )
    assert status == 200, answer
    assert answer["data"]["request_id"] == response_headers["Helicone-Id"] == chosen
    row = await heliograph.wait_for(chosen)
    assert row["request_user_id"] == "from-header"
    assert row["properties"] == {
        "app": "meta-app",
        "tier": "gold",
        "Helicone-Session-Id": "s-1",
        "Helicone-Session-Path": "/plan",
    }
    assert (row["session_id"], row["session_path"]) == ("s-1", "/plan")
    assert (row["model"], row["model_override"]) == ("gpt-4o", "gpt-4o")
    assert row["request_body"] in ("", None)  # omitted as asked
    assert nano(row) == priced(100, 50, "gpt-4o", "openai")


async def test_streams_logged_as_chunks_are_read_as_streams(heliograph: Heliograph) -> None:
    chunks = [
        {"id": "c1", "model": "gpt-4o-mini", "choices": [{"delta": {"content": "Hel"}}]},
        {"id": "c1", "model": "gpt-4o-mini", "choices": [{"delta": {"content": "lo"}}]},
        {
            "id": "c1",
            "model": "gpt-4o-mini",
            "choices": [],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2},
        },
    ]
    stream_request = {**CHAT, "stream": True}
    text_body = async_log(stream_request)
    text_body["providerResponse"] = {  # helicone-helpers' builder: one JSON chunk a line
        "headers": {},
        "status": 200,
        "json": {},
        "textBody": "\n".join(orjson.dumps(chunk).decode() for chunk in chunks),
    }
    streamed_data = async_log(stream_request, {"streamed_data": chunks})  # Helicone's older shape
    for body in (text_body, streamed_data):
        status, answer, _ = await post(f"{heliograph.api}/oai/v1/log", body, heliograph.auth())
        assert status == 200, answer
        row = await heliograph.wait_for(answer["data"]["request_id"])
        assert row["is_stream"] is True
        assert (row["prompt_tokens"], row["completion_tokens"]) == (7, 2)
        assert row["response_body"].startswith('data: {"id":"c1"')


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "the body is not JSON"),
        (b'{"providerRequest": "\xff\xfe"}', "the body is not JSON"),
        (b"", "the body is not JSON"),
        ([1, 2], "the body must be an object"),
        ({}, "providerRequest must be an object"),
        ({**async_log(), "providerResponse": None}, "providerResponse must be an object"),
        (async_log(request=[]), "providerRequest.json must be an object"),  # type: ignore[arg-type]
        ({**async_log(), "timing": {"startTime": {"seconds": 1.7e9}}}, "timing.endTime"),
        ({**async_log(), "timing": {"startTime": "soon", "endTime": "later"}}, "timing.startTime"),
        ({**async_log(), "timing": {**TIMING, "timeToFirstToken": "fast"}}, "timeToFirstToken"),
        ({**async_log(), "timing": BACKWARDS}, "must not be before"),
        (async_log(meta={"Helicone-User-Id": {"id": 1}}), "meta['Helicone-User-Id']"),
        (async_log(meta={f"Helicone-Property-P{i}": "v" for i in range(65)}), "at most 64"),
        (async_log(meta={"Helicone-User-Id": "x" * 9000}), "at most 8192"),
        (async_log(request=nested(300)), "nested more than 200 levels"),
    ],
)
async def test_bad_bodies_are_400s_that_say_what(
    heliograph: Heliograph, body: Any, error: str
) -> None:
    for base in (heliograph.api, heliograph.gateway):
        status, answer, _ = await post(f"{base}/oai/v1/log", body, heliograph.auth())
        assert status == 400, answer
        assert error in answer["error"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"status": "ok"}, "providerResponse.status must be an integer"),
        ({"json": None, "textBody": None}, "needs json or textBody"),
        ({"json": None, "textBody": 5}, "textBody must be a string"),
        ({"headers": []}, "providerResponse.headers must be an object"),
        ({"cost": -1}, "providerResponse.cost"),
    ],
)
async def test_bad_responses_are_400s_that_say_what(
    heliograph: Heliograph, change: dict[str, Any], error: str
) -> None:
    body = async_log()
    body["providerResponse"].update(change)
    status, answer, _ = await post(f"{heliograph.api}/custom/v1/log", body, heliograph.auth())
    assert (status, error in answer["error"]) == (400, True), answer


async def test_keys_size_and_isolation(heliograph: Heliograph) -> None:
    services = heliograph.running.services
    reader = services.keys.create_key(heliograph.organization_id, "reader", KeyPermissions.READ)
    _, other_key = heliograph.new_organization()
    huge = async_log(response={**COMPLETION, "padding": "x" * (9 * 1024 * 1024)})
    for base in (heliograph.api, heliograph.gateway):
        url = f"{base}/anthropic/v1/log"
        wrong = {"Authorization": "Bearer sk-helicone-wrong"}
        assert (await post(url, async_log(), wrong))[0] == 401
        assert (await post(url, async_log(), {}))[0] == 401
        status, answer, _ = await post(url, async_log(), heliograph.auth(reader.api_key))
        assert status == 403, answer
        assert (await post(url, huge, heliograph.auth()))[0] == 413
    status, answer, _ = await post(
        f"{heliograph.gateway}/custom/v1/log", async_log(), heliograph.auth(other_key)
    )
    assert status == 200, answer
    request_id = answer["data"]["request_id"]
    await heliograph.wait_for(request_id, key=other_key)
    status, _ = await heliograph.api_get(f"/v1/request/{request_id}")
    assert status == 404  # another organization's log is not ours to read


async def test_gateway_answers_with_helicone_auth_alone(heliograph: Heliograph) -> None:
    status, answer, _ = await post(
        f"{heliograph.gateway}/custom/v1/log", async_log(), heliograph.gateway_auth()
    )
    assert status == 200, answer
    await heliograph.wait_for(answer["data"]["request_id"])


def log_message(request_id: str, **response: Any) -> dict[str, Any]:
    return {
        "authorization": "ignored",
        "heliconeMeta": {},
        "log": {
            "request": {
                "id": request_id,
                "provider": "OPENAI",
                "requestCreatedAt": START.isoformat(),
                "path": "/v1/chat/completions",
                "properties": {},
            },
            "response": {
                "status": 200,
                "delayMs": 5,
                "promptTokens": 100,
                "completionTokens": 50,
                **response,
            },
        },
    }


async def test_log_messages_honour_the_model_they_name(heliograph: Heliograph) -> None:
    """`log.request.model` when nothing else names one; the AI gateway's `gatewayModel` over
    what the bodies say, as Helicone stores it."""
    named = log_message(str(uuid.uuid4()))
    named["log"]["request"]["model"] = "gpt-4o-mini"
    gateway_model = log_message(str(uuid.uuid4()))
    gateway_model["heliconeMeta"] = {"gatewayModel": "gpt-4o"}
    gateway_model["log"]["request"]["body"] = CHAT
    gateway_model["log"]["response"]["body"] = {**COMPLETION, "model": "gpt-4o-2024-08-06"}
    for message, model in ((named, "gpt-4o-mini"), (gateway_model, "gpt-4o")):
        status, answer = await heliograph.api_post("/v1/log/request", message)
        assert status == 202, answer
        row = await heliograph.wait_for(message["log"]["request"]["id"])
        assert row["model"] == model
        assert nano(row) == priced(100, 50, model, "openai")


async def test_a_log_message_that_is_not_one_is_a_400(heliograph: Heliograph) -> None:
    headers = {**heliograph.auth(), "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        for body, error in (
            (b"{not json", "the body is not JSON"),
            (b'{"log": "\xff"}', "the body is not JSON"),
            (b"[1]", "expected an object with a 'log' object"),
        ):
            url = f"{heliograph.api}/v1/log/request"
            async with session.post(url, data=body, headers=headers) as response:
                answer = await response.json()
                assert response.status == 400, answer
                assert error in answer["error"]
    message = log_message(str(uuid.uuid4()))  # and the next message is taken
    message["log"]["request"]["model"] = "m" * 100_000
    status, answer = await heliograph.api_post("/v1/log/request", message)
    assert status == 202, answer
    assert (await heliograph.wait_for(message["log"]["request"]["id"]))["model"] == "m" * 256


async def test_a_log_message_nested_too_deeply_is_a_400(heliograph: Heliograph) -> None:
    message = log_message(str(uuid.uuid4()))
    message["log"]["request"]["body"] = nested(300)
    status, answer = await heliograph.api_post("/v1/log/request", message)
    assert status == 400, answer
    assert "nested more than 200 levels" in answer["error"]


async def test_helicone_status_on_relayed_replayed_and_failed_responses(
    heliograph: Heliograph,
) -> None:
    url = f"{heliograph.gateway}/openai/v1/chat/completions"
    cached = {**heliograph.gateway_auth(), "Helicone-Cache-Enabled": "true"}
    async with aiohttp.ClientSession() as session:
        for expected_cache in ("MISS", "HIT"):
            async with session.post(url, json=CHAT, headers=cached) as response:
                assert response.status == 200
                assert response.headers["Helicone-Status"] == "success"
                assert response.headers["Helicone-Cache"] == expected_cache
                await response.read()
        error = {**CHAT, "model": "error-429"}  # the provider's own error is still relayed
        async with session.post(url, json=error, headers=heliograph.gateway_auth()) as response:
            assert (response.status, response.headers["Helicone-Status"]) == (429, "success")
        async with session.post(url, json=CHAT, headers=heliograph.auth()) as response:
            assert response.status == 401  # answered by the gateway itself: no status header
            assert "Helicone-Status" not in response.headers
        flagged = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "forbidden"}]}
        moderated = {
            **heliograph.gateway_auth(),
            "Helicone-Moderations-Enabled": "true",
            "Authorization": "Bearer sk-caller",
        }
        async with session.post(url, json=flagged, headers=moderated) as response:
            assert (response.status, response.headers["Helicone-Status"]) == (400, "failed")


async def test_an_unexpected_gateway_error_is_helicones_json_500(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: Proxy, request: web.Request) -> web.StreamResponse:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Proxy, "_handle", broken)
    async with gateway(fake.origin) as gw:
        status, answer, headers = await post(f"{gw.url}/openai/v1/chat/completions", CHAT, AUTH)
        assert (status, headers["helicone-error"]) == (500, "true")
        assert "helicone-message" in answer
        assert "a bug" not in orjson.dumps(answer).decode()  # nothing internal is shown
        # the next request is served as usual
        monkeypatch.undo()
        status, _, headers = await post(f"{gw.url}/openai/v1/chat/completions", CHAT, AUTH)
        assert (status, headers["Helicone-Status"]) == (200, "success")
