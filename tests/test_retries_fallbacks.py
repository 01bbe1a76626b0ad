"""Retries (`Helicone-Retry-*`) and fallbacks (`Helicone-Fallbacks`) through the gateway."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph

FAST_RETRIES = {
    "Helicone-Retry-Enabled": "true",
    "Helicone-Retry-Num": "3",
    "Helicone-Retry-Min-Timeout": "10",
    "Helicone-Retry-Max-Timeout": "50",
}


def chat(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": str(uuid.uuid4())}]}


def sdk_chat(model: str) -> dict[str, Any]:
    """`chat` as keyword arguments of the OpenAI SDK's `create`."""
    return chat(model)


async def post(
    url: str, body: object, headers: dict[str, str]
) -> tuple[int, dict[str, str], dict[str, object]]:
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body, headers=headers) as response:
            return response.status, dict(response.headers), orjson.loads(await response.read())


async def test_retries_until_the_provider_answers(heliograph: Heliograph) -> None:
    headers = {**heliograph.gateway_auth(), **FAST_RETRIES}
    url = f"{heliograph.gateway}/openai/v1/chat/completions"
    status, response_headers, body = await post(url, chat("flaky-2"), headers)
    assert status == 200
    assert body["usage"]["total_tokens"] == 30  # type: ignore[index]
    row = await heliograph.wait_for(response_headers["Helicone-Id"])
    assert row["attempts"] == 3
    assert row["response_status"] == 200


async def test_gives_up_after_the_last_retry_and_returns_the_provider_error(
    heliograph: Heliograph,
) -> None:
    headers = {**heliograph.gateway_auth(), **FAST_RETRIES, "Helicone-Retry-Num": "2"}
    url = f"{heliograph.gateway}/openai/v1/chat/completions"
    status, response_headers, body = await post(url, chat("flaky-9"), headers)
    assert status == 500
    assert body["error"]["type"] == "server_error"  # type: ignore[index]
    row = await heliograph.wait_for(response_headers["Helicone-Id"])
    assert row["attempts"] == 3


@pytest.mark.parametrize("enabled", ["false", "1", "yes"])
async def test_only_true_enables_retries(heliograph: Heliograph, enabled: str) -> None:
    headers = {**heliograph.gateway_auth(), **FAST_RETRIES, "Helicone-Retry-Enabled": enabled}
    url = f"{heliograph.gateway}/openai/v1/chat/completions"
    status, response_headers, _ = await post(url, chat("flaky-1"), headers)
    assert status == 500
    assert (await heliograph.wait_for(response_headers["Helicone-Id"]))["attempts"] == 1


async def test_retry_after_is_honoured(heliograph: Heliograph) -> None:
    # The fake's 429 says `Retry-After: 1`, far above the 10 ms the backoff alone would wait.
    headers = {
        **heliograph.gateway_auth(),
        **FAST_RETRIES,
        "Helicone-Retry-Max-Timeout": "5000",
    }
    started = time.monotonic()  # a lower bound: the wait the provider asked for is the behaviour
    status, _, _ = await post(
        f"{heliograph.gateway}/openai/v1/chat/completions", chat("flaky-1-429"), headers
    )
    assert status == 200
    assert time.monotonic() - started >= 0.95, "the gateway did not wait for Retry-After"


async def test_connection_errors_are_retried_then_502(tmp_path: Path, analytics_dir: Path) -> None:
    settings = heliograph_settings(tmp_path, analytics_dir, None)
    settings = type(settings)(
        **{**settings.__dict__, "provider_base_urls": {"openai": "http://127.0.0.1:9"}}
    )
    hg = await start_heliograph(settings)
    try:
        headers = {**hg.gateway_auth(), **FAST_RETRIES, "Helicone-Retry-Num": "2"}
        status, response_headers, body = await post(
            f"{hg.gateway}/openai/v1/chat/completions", chat("gpt-4o-mini"), headers
        )
        assert status == 502
        assert body["error"]["code"] == "upstream_unreachable"  # type: ignore[index]
        assert (await hg.wait_for(response_headers["Helicone-Id"]))["attempts"] == 3
    finally:
        await hg.running.stop()


@pytest.fixture
async def two_origins(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> AsyncIterator[tuple[Heliograph, str, str]]:
    # The same fake under two names, so a fallback visibly moves to another origin.
    second = f"http://localhost:{fake.port}"
    hg = await start_heliograph(
        heliograph_settings(
            tmp_path, analytics_dir, None, allowed_target_origins=(fake.origin, second)
        )
    )
    yield hg, fake.origin, second
    await hg.running.stop()


async def test_fallback_moves_on_listed_codes_with_its_own_headers_and_body(
    two_origins: tuple[Heliograph, str, str],
    fake: Fake,
) -> None:
    hg, first, second = two_origins
    fallbacks = [
        {
            "target-url": first,
            "headers": {"Authorization": "Bearer key-one"},
            "onCodes": [429, {"from": 500, "to": 599}],
        },
        {
            "target-url": second,
            "headers": {"Authorization": "Bearer key-two"},
            "onCodes": [],
            "bodyKeyOverride": {"model": "gpt-4o"},
        },
    ]
    headers = {**hg.gateway_auth(), "Helicone-Fallbacks": json.dumps(fallbacks)}
    status, response_headers, body = await post(
        f"{hg.gateway}/gateway/v1/chat/completions", chat("error-500"), headers
    )
    assert status == 200
    assert response_headers["helicone-fallback-index"] == "1"
    model = body["model"]
    assert isinstance(model, str)
    assert model.startswith("gpt-4o-")
    primary, fallback = fake.seen.requests[-2:]
    assert primary["headers"]["authorization"] == "Bearer key-one"
    assert fallback["headers"]["authorization"] == "Bearer key-two"
    assert fallback["body"]["model"] == "gpt-4o"
    row = await hg.wait_for(response_headers["Helicone-Id"])
    assert row["target_url"] == second
    assert row["attempts"] == 2
    assert row["properties"]["Helicone-Fallback-Index"] == "1"


async def test_fallback_stops_when_the_status_is_not_listed(two_origins) -> None:  # type: ignore[no-untyped-def]
    hg, first, second = two_origins
    fallbacks = [
        {"target-url": first, "headers": {}, "onCodes": [429]},
        {"target-url": second, "headers": {}, "onCodes": []},
    ]
    headers = {**hg.gateway_auth(), "Helicone-Fallbacks": json.dumps(fallbacks)}
    status, response_headers, _ = await post(
        f"{hg.gateway}/gateway/v1/chat/completions", chat("error-500"), headers
    )
    assert status == 500
    assert response_headers["helicone-fallback-index"] == "0"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "JSON array"),
        ("[]", "non-empty"),
        ('[{"headers": {}}]', "target-url"),
        ('[{"target-url": "https://evil.example.com"}]', "not an allowed origin"),
        ('[{"target-url": "http://169.254.169.254"}]', "private"),
        ('[{"target-url": "https://api.openai.com", "onCodes": ["5xx"]}]', "onCodes"),
    ],
)
async def test_invalid_fallbacks_are_400(two_origins, value: str, message: str) -> None:  # type: ignore[no-untyped-def]
    hg, _, _ = two_origins
    headers = {**hg.gateway_auth(), "Helicone-Fallbacks": value}
    status, _, body = await post(
        f"{hg.gateway}/gateway/v1/chat/completions", chat("gpt-4o-mini"), headers
    )
    assert status == 400
    assert message in body["error"]["message"]  # type: ignore[index]


async def test_retries_and_fallbacks_through_the_openai_sdk(
    heliograph: Heliograph,
    two_origins: tuple[Heliograph, str, str],
) -> None:
    async with openai.AsyncOpenAI(
        api_key="sk-provider",
        base_url=f"{heliograph.gateway}/openai/v1",
        default_headers={**heliograph.gateway_auth(), **FAST_RETRIES},
        max_retries=0,
    ) as client:
        raw = await client.chat.completions.with_raw_response.create(**sdk_chat("flaky-1"))
    assert raw.status_code == 200
    assert (await heliograph.wait_for(raw.headers["helicone-id"]))["attempts"] == 2

    hg, first, second = two_origins
    fallbacks = [
        {"target-url": first, "headers": {"Authorization": "Bearer a"}, "onCodes": [500]},
        {
            "target-url": second,
            "headers": {"Authorization": "Bearer b"},
            "bodyKeyOverride": {"model": "gpt-4o-mini"},
        },
    ]
    async with openai.AsyncOpenAI(
        api_key="unused-the-fallback-headers-carry-the-keys",
        base_url=f"{hg.gateway}/gateway/v1",
        default_headers={**hg.gateway_auth(), "Helicone-Fallbacks": json.dumps(fallbacks)},
        max_retries=0,
    ) as client:
        raw = await client.chat.completions.with_raw_response.create(**sdk_chat("error-500"))
    assert raw.status_code == 200
    assert raw.headers["helicone-fallback-index"] == "1"
