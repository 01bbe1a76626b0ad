"""The gateway's contract: auth, routing and target validation, header hygiene, errors from and
around the provider, client disconnects, and the Helicone options that shape the log."""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path

import aiohttp
import orjson
import pytest
from yarl import URL

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from fake_provider import TEXT

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def post(
    url: str, body: object, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        target = URL(url, encoded=True)
        async with session.post(target, data=orjson.dumps(body), headers=headers) as response:
            raw = await response.read()
            if (
                response.headers.get("Content-Encoding") == "gzip"
                and "Accept-Encoding" not in headers
            ):
                raw = gzip.decompress(raw)  # only tests that ask for gzip see it as sent
            return response.status, dict(response.headers), raw


async def test_missing_or_unknown_key_is_401_with_json(heliograph: Heliograph) -> None:
    url = f"{heliograph.gateway}/openai/v1/chat/completions"
    for headers in ({}, {"Helicone-Auth": "Bearer sk-helicone-nope"}, {"Helicone-Auth": "junk"}):
        status, _, body = await post(url, CHAT, headers)
        assert status == 401
        assert orjson.loads(body)["error"]["code"] == "unauthorized"


async def test_unknown_provider_route_is_404(heliograph: Heliograph) -> None:
    status, _, body = await post(
        f"{heliograph.gateway}/nowhere/v1/x", CHAT, heliograph.gateway_auth()
    )
    assert status == 404
    assert b"unknown provider" in body


async def test_path_and_query_are_forwarded_unchanged(heliograph: Heliograph, fake: Fake) -> None:
    url = f"{heliograph.gateway}/openai/v1/chat/completions?api-version=2024-10&x=a%2Fb"
    status, _, _ = await post(url, CHAT, heliograph.gateway_auth())
    assert status == 200
    assert fake.seen.requests[-1]["path"] == "/v1/chat/completions?api-version=2024-10&x=a%2Fb"


async def test_client_request_id_is_honoured_and_invalid_one_replaced(
    heliograph: Heliograph,
) -> None:
    url = f"{heliograph.gateway}/openai/v1/chat/completions"
    chosen = str(uuid.uuid4())
    _, headers, _ = await post(
        url, CHAT, {**heliograph.gateway_auth(), "Helicone-Request-Id": chosen}
    )
    assert headers["Helicone-Id"] == chosen
    _, headers, _ = await post(url, CHAT, {**heliograph.gateway_auth(), "Helicone-Request-Id": "x"})
    assert uuid.UUID(headers["Helicone-Id"])
    assert headers["Helicone-Id"] != "x"
    await heliograph.wait_for(chosen)


async def test_gzip_upstream_body_reaches_client_valid_and_log_parsed(
    heliograph: Heliograph,
) -> None:
    url = f"{heliograph.gateway}/openai/v1/chat/completions"
    headers = {**heliograph.gateway_auth(), "Accept-Encoding": "gzip"}
    status, response_headers, body = await post(url, CHAT, headers)
    assert status == 200
    assert response_headers["Content-Encoding"] == "gzip"
    assert orjson.loads(gzip.decompress(body))["choices"][0]["message"]["content"] == TEXT
    row = await heliograph.wait_for(response_headers["Helicone-Id"])
    assert row["response_body"]["choices"][0]["message"]["content"] == TEXT
    assert row["completion_tokens"] == 7


async def test_provider_errors_pass_through_and_are_logged(heliograph: Heliograph) -> None:
    url = f"{heliograph.gateway}/openai/v1/chat/completions"
    for model, expected in (("error-429", 429), ("error-500", 500)):
        status, headers, body = await post(url, {**CHAT, "model": model}, heliograph.gateway_auth())
        assert status == expected
        assert orjson.loads(body)["error"]["type"] in ("rate_limit", "server_error")
        if expected == 429:
            assert headers["Retry-After"] == "1"
        row = await heliograph.wait_for(headers["Helicone-Id"])
        assert row["response_status"] == expected
        assert row["pricing_status"] == "no_usage"
        assert row["cost"] == 0


async def test_unreachable_provider_is_502_and_logged(tmp_path: Path, analytics_dir: Path) -> None:
    settings = heliograph_settings(tmp_path, analytics_dir, None)
    settings = type(settings)(
        **{**settings.__dict__, "provider_base_urls": {"openai": "http://127.0.0.1:9"}}
    )
    hg = await start_heliograph(settings)
    try:
        status, headers, body = await post(
            f"{hg.gateway}/openai/v1/chat/completions", CHAT, hg.gateway_auth()
        )
        assert status == 502
        assert orjson.loads(body)["error"]["code"] == "upstream_unreachable"
        row = await hg.wait_for(headers["Helicone-Id"])
        assert row["response_status"] == 502
        assert "unreachable" in row["error"]
    finally:
        await hg.running.stop()


async def test_provider_timeout_is_504_and_logged(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    hg = await start_heliograph(
        heliograph_settings(tmp_path, analytics_dir, fake, upstream_timeout_s=0.3)
    )
    try:
        status, headers, body = await post(
            f"{hg.gateway}/openai/v1/chat/completions", {**CHAT, "model": "hang"}, hg.gateway_auth()
        )
        assert status == 504
        assert orjson.loads(body)["error"]["code"] == "upstream_timeout"
        row = await hg.wait_for(headers["Helicone-Id"])
        assert row["response_status"] == 504
    finally:
        await hg.running.stop()


async def test_client_disconnect_mid_stream_is_logged_as_cancelled(
    heliograph: Heliograph, fake: Fake
) -> None:
    request_id = str(uuid.uuid4())
    headers = {**heliograph.gateway_auth(), "Helicone-Request-Id": request_id}
    body = {**CHAT, "model": "slow-stream", "stream": True}
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{heliograph.gateway}/openai/v1/chat/completions", json=body, headers=headers
        )
        assert response.status == 200
        await response.content.readany()  # first bytes arrive, then the client walks away
        response.connection.transport.abort()  # type: ignore[union-attr]
        response.close()
    row = await heliograph.wait_for(request_id, timeout_s=5)
    assert row["response_status"] == -3
    assert "disconnected" in row["error"]
    assert fake.seen.cancelled >= 1, "the provider kept generating for nobody"


async def test_omit_headers_keep_metadata_but_not_bodies(heliograph: Heliograph) -> None:
    headers = {
        **heliograph.gateway_auth(),
        "Helicone-Omit-Request": "true",
        "Helicone-Omit-Response": "true",
    }
    _, response_headers, _ = await post(
        f"{heliograph.gateway}/openai/v1/chat/completions", CHAT, headers
    )
    row = await heliograph.wait_for(response_headers["Helicone-Id"])
    assert row["request_body"] is None
    assert row["response_body"] is None
    assert row["prompt_tokens"] == 16
    assert row["cost"] > 0


async def test_model_override_sets_the_logged_model(heliograph: Heliograph) -> None:
    headers = {**heliograph.gateway_auth(), "Helicone-Model-Override": "gpt-4o"}
    _, response_headers, _ = await post(
        f"{heliograph.gateway}/openai/v1/chat/completions", CHAT, headers
    )
    row = await heliograph.wait_for(response_headers["Helicone-Id"])
    assert row["model"] == "gpt-4o"
    assert row["model_override"] == "gpt-4o"
    # gpt-4o: $2.50 in, $1.25 cached, $10 out per million tokens.
    assert round(row["cost"] * 1e9) == 16 * 2500 + 5 * 1250 + 9 * 10000


async def test_unknown_model_is_flagged_not_priced_at_zero_silently(
    heliograph: Heliograph,
) -> None:
    body = {**CHAT, "model": "my-private-finetune"}
    _, headers, _ = await post(
        f"{heliograph.gateway}/openai/v1/chat/completions", body, heliograph.gateway_auth()
    )
    row = await heliograph.wait_for(headers["Helicone-Id"])
    assert row["pricing_status"] == "unknown_model"
    assert row["prompt_tokens"] == 16


async def test_oversized_body_is_413(tmp_path: Path, analytics_dir: Path, fake: Fake) -> None:
    hg = await start_heliograph(
        heliograph_settings(tmp_path, analytics_dir, fake, max_request_bytes=1024)
    )
    try:
        big = {**CHAT, "messages": [{"role": "user", "content": "x" * 4096}]}
        status, _, body = await post(
            f"{hg.gateway}/openai/v1/chat/completions", big, hg.gateway_auth()
        )
        assert status == 413
        assert orjson.loads(body)["error"]["code"] == "too_large"
    finally:
        await hg.running.stop()


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (None, b"needs a Helicone-Target-Url"),
        ("https://evil.example.com", b"not an allowed origin"),
        ("http://169.254.169.254", b"private or link-local"),
        ("http://10.0.0.1:8080", b"private or link-local"),
        ("https://api.openai.com/v1/chat", b"origin only"),
        ("ftp://api.openai.com", b"http(s) origin"),
    ],
)
async def test_gateway_route_rejects_targets_not_allowed(
    heliograph: Heliograph, target: str | None, reason: bytes
) -> None:
    headers = heliograph.gateway_auth()
    if target:
        headers["Helicone-Target-Url"] = target
    status, _, body = await post(f"{heliograph.gateway}/gateway/v1/chat/completions", CHAT, headers)
    assert status == 400
    assert reason in body


async def test_gateway_route_reaches_an_explicitly_allowed_origin(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    hg = await start_heliograph(
        heliograph_settings(tmp_path, analytics_dir, None, allowed_target_origins=(fake.origin,))
    )
    try:
        headers = {**hg.gateway_auth(), "Helicone-Target-Url": fake.origin}
        status, response_headers, _ = await post(
            f"{hg.gateway}/gateway/v1/chat/completions", CHAT, headers
        )
        assert status == 200
        row = await hg.wait_for(response_headers["Helicone-Id"])
        assert row["target_url"] == fake.origin
        assert row["prompt_tokens"] == 16
    finally:
        await hg.running.stop()


async def test_healthz_on_gateway(heliograph: Heliograph) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{heliograph.gateway}/healthz") as response:
            assert response.status == 200
