"""Provider keys and proxy keys over `/v1/api-keys`, and proxy keys through the gateway: the
stored provider key reaches the provider in its own header and the proxy key never does; a
revoked proxy key or a deleted provider key is refused within 5 s; limits answer 429 and say
which; other organizations' keys are 404s; read-only keys and bad input are refused."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from conftest import Fake, Heliograph
from heliograph.domain.access import KeyPermissions
from heliograph.domain.keys import PROXY_KEY_PREFIX
from heliograph.services.audit import SYSTEM, AuditQuery
from test_gateway_process import gateway_process

SECRET = "sk-openai-stored-secret-0123456789abcdWXYZ"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {
    "model": "claude-3-5-haiku-20241022",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


async def call(
    heliograph: Heliograph,
    method: str,
    path: str,
    body: Any = None,
    key: str | None = None,
    data: bytes | None = None,
) -> tuple[int, Any]:
    headers = heliograph.auth(key)
    if data is not None:
        headers["Content-Type"] = "application/json"
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, heliograph.api + path, json=body, data=data, headers=headers
        ) as response:
            return response.status, await response.json()


async def add_provider_key(
    heliograph: Heliograph, provider: str = "openai", secret: str = SECRET, key: str | None = None
) -> str:
    body = {"providerName": provider, "providerKey": secret, "providerKeyName": "main"}
    status, created = await call(heliograph, "POST", "/v1/api-keys/provider-key", body, key)
    assert status == 201, created
    return str(created["data"]["id"])


async def add_proxy_key(
    heliograph: Heliograph, provider_key_id: str, limits: dict[str, Any] | None = None
) -> tuple[str, str]:
    body: dict[str, Any] = {"proxyKeyName": "app", "providerKeyId": provider_key_id}
    if limits is not None:
        body["limits"] = limits
    status, created = await call(heliograph, "POST", "/v1/api-keys/proxy-key", body)
    assert status == 201, created
    return str(created["data"]["id"]), str(created["data"]["proxyKey"])


async def through_gateway(
    gateway: str, path: str, body: Any, headers: dict[str, str]
) -> tuple[int, Any, str]:
    async with aiohttp.ClientSession() as session:
        async with session.post(gateway + path, json=body, headers=headers) as response:
            return response.status, await response.json(), response.headers.get("Helicone-Id", "")


async def chat(gateway: str, proxy_key: str) -> tuple[int, Any, str]:
    headers = {"Authorization": f"Bearer {proxy_key}"}
    return await through_gateway(gateway, "/openai/v1/chat/completions", CHAT, headers)


def no_proxy_key_in(seen: dict[str, Any], proxy_key: str) -> bool:
    return all(proxy_key not in value for value in seen["headers"].values())


async def test_a_proxy_key_calls_the_provider_with_the_stored_key(
    heliograph_on_each_db: Heliograph, fake: Fake
) -> None:
    heliograph = heliograph_on_each_db
    provider_key_id = await add_provider_key(heliograph)
    proxy_id, proxy_key = await add_proxy_key(heliograph, provider_key_id)
    assert proxy_key.startswith(PROXY_KEY_PREFIX)

    status, answer, request_id = await chat(heliograph.gateway, proxy_key)
    assert status == 200, answer
    seen = fake.seen.requests[-1]
    assert seen["headers"]["authorization"] == f"Bearer {SECRET}"
    assert no_proxy_key_in(seen, proxy_key)
    row = await heliograph.wait_for(request_id, timeout_s=5)
    assert row["provider"] == "OPENAI"
    assert row["response_status"] == 200
    sql = (
        "SELECT toString(api_key_id) AS key FROM request_response"
        f" WHERE request_id = '{request_id}'"
    )
    status, found = await heliograph.api_post("/v1/helicone-sql/execute", {"sql": sql})
    assert status == 200, found
    assert found["data"]["rows"] == [{"key": proxy_id}], "the proxy key's id is the record's key"

    # The listing shows the key's prefix, never the key; the provider key only its last four.
    status, listed = await call(heliograph, "GET", "/v1/api-keys/proxy-keys")
    assert status == 200
    assert [key["id"] for key in listed["data"]] == [proxy_id]
    assert proxy_key not in str(listed)
    assert SECRET not in str(listed)
    status, one = await call(heliograph, "GET", f"/v1/api-keys/provider-key/{provider_key_id}")
    assert status == 200
    assert one["data"]["providerKeyPreview"] == "...WXYZ"
    assert SECRET not in str(one)


async def test_anthropic_and_gemini_get_the_key_in_their_own_header(
    heliograph: Heliograph, fake: Fake
) -> None:
    anthropic_secret = "sk-ant-stored-0123456789"
    gemini_secret = "AIza-stored-0123456789"
    anthropic = await add_provider_key(heliograph, "anthropic", anthropic_secret)
    gemini = await add_provider_key(heliograph, "GOOGLE", gemini_secret)
    _, anthropic_proxy = await add_proxy_key(heliograph, anthropic)
    _, gemini_proxy = await add_proxy_key(heliograph, gemini)

    headers = {"x-api-key": anthropic_proxy, "anthropic-version": "2023-06-01"}
    status, answer, _ = await through_gateway(
        heliograph.gateway, "/anthropic/v1/messages", MESSAGES, headers
    )
    assert status == 200, answer
    assert fake.seen.requests[-1]["headers"]["x-api-key"] == anthropic_secret
    assert no_proxy_key_in(fake.seen.requests[-1], anthropic_proxy)

    path = "/gemini/v1beta/models/gemini-1.5-flash:generateContent"
    headers = {"x-goog-api-key": gemini_proxy}
    status, answer, _ = await through_gateway(heliograph.gateway, path, GEMINI, headers)
    assert status == 200, answer
    assert fake.seen.requests[-1]["headers"]["x-goog-api-key"] == gemini_secret
    assert "authorization" not in fake.seen.requests[-1]["headers"]

    # A proxy key on another provider's route is refused and nothing is sent.
    before = len(fake.seen.requests)
    headers = {"Authorization": f"Bearer {gemini_proxy}"}
    status, answer, _ = await through_gateway(
        heliograph.gateway, "/openai/v1/chat/completions", CHAT, headers
    )
    assert status == 403
    assert "GOOGLE" in answer["error"]["message"]
    assert "OPENAI" in answer["error"]["message"]
    assert len(fake.seen.requests) == before


async def refused_within_5s(gateway: str, proxy_key: str) -> None:
    since = time.monotonic()
    while True:
        status, answer, _ = await chat(gateway, proxy_key)
        if status == 401:
            assert "proxy key" in answer["error"]["message"]
            return
        assert status == 200
        assert time.monotonic() - since < 5, "a revoked proxy key still works after 5 s"
        await asyncio.sleep(0.1)


async def test_revoked_proxy_keys_and_deleted_provider_keys_stop_within_5s(
    heliograph_on_each_db: Heliograph,
) -> None:
    heliograph = heliograph_on_each_db
    vault = heliograph.running.services.provider_keys
    organization_id = heliograph.organization_id
    provider_key_id = await add_provider_key(heliograph)
    revoked_id, revoked = await add_proxy_key(heliograph, provider_key_id)
    _, kept = await add_proxy_key(heliograph, provider_key_id)
    assert (await chat(heliograph.gateway, revoked))[0] == 200
    assert (await chat(heliograph.gateway, kept))[0] == 200

    # Changed behind the cache's back, as another API process would: only the re-check sees it.
    vault.revoke_proxy_key(organization_id, revoked_id, SYSTEM)
    await refused_within_5s(heliograph.gateway, revoked)
    assert (await chat(heliograph.gateway, kept))[0] == 200

    vault.delete(organization_id, provider_key_id, SYSTEM)
    await refused_within_5s(heliograph.gateway, kept)

    actions = [
        line.action for line in heliograph.running.services.audit.query(AuditQuery(organization_id))
    ]
    assert {"provider_key.create", "provider_key.delete"} <= set(actions)
    assert {"proxy_key.create", "proxy_key.delete"} <= set(actions)


async def test_the_api_routes_take_effect_at_once_and_are_audited(heliograph: Heliograph) -> None:
    provider_key_id = await add_provider_key(heliograph)
    proxy_id, proxy_key = await add_proxy_key(heliograph, provider_key_id)
    assert (await chat(heliograph.gateway, proxy_key))[0] == 200

    new_secret = "sk-openai-replacement-000000001234"
    patch = {"providerKey": new_secret, "providerKeyName": "renamed"}
    path = f"/v1/api-keys/provider-key/{provider_key_id}"
    status, patched = await call(heliograph, "PATCH", path, patch)
    assert status == 200, patched
    assert patched["data"]["providerKeyName"] == "renamed"
    assert patched["data"]["providerKeyPreview"] == "...1234"
    assert new_secret not in str(patched)

    status, deleted = await call(heliograph, "DELETE", f"/v1/api-keys/proxy-key/{proxy_id}")
    assert status == 200, deleted
    assert (await chat(heliograph.gateway, proxy_key))[0] == 401
    status, again = await call(heliograph, "DELETE", f"/v1/api-keys/proxy-key/{proxy_id}")
    assert status == 404, again

    status, deleted = await call(heliograph, "DELETE", path)
    assert status == 200
    assert (await call(heliograph, "GET", path))[0] == 404
    assert (await call(heliograph, "GET", "/v1/api-keys/provider-keys"))[1]["data"] == []

    lines = heliograph.running.services.audit.query(AuditQuery(heliograph.organization_id))
    update = next(line for line in lines if line.action == "provider_key.update")
    assert update.target_id == provider_key_id
    assert update.details == {"renamed": True, "secret_replaced": True}
    assert all(new_secret not in str(line.details) for line in lines)


async def test_limits_answer_429_and_say_which(
    heliograph_on_each_backend: Heliograph, fake: Fake
) -> None:
    heliograph = heliograph_on_each_backend
    provider_key_id = await add_provider_key(heliograph)
    limits = {"requestLimit": 2, "requestWindowSeconds": 3600}
    _, counted = await add_proxy_key(heliograph, provider_key_id, limits)
    assert (await chat(heliograph.gateway, counted))[0] == 200
    assert (await chat(heliograph.gateway, counted))[0] == 200
    before = len(fake.seen.requests)
    status, answer, request_id = await chat(heliograph.gateway, counted)
    assert status == 429
    assert answer["error"]["message"] == "proxy key is over its request limit of 2 per 3600 s"
    assert len(fake.seen.requests) == before, "a limited request is never forwarded"
    row = await heliograph.wait_for(request_id, timeout_s=5)
    assert row["response_status"] == 429

    daily = {"spendLimitUsd": 0.000001, "spendPeriod": "day"}
    _, spending = await add_proxy_key(heliograph, provider_key_id, daily)
    assert (await chat(heliograph.gateway, spending))[0] == 200
    gateway = heliograph.running.gateway
    assert gateway is not None
    await gateway.proxy.drain()  # the first request's cost is charged once it is complete
    status, answer, _ = await chat(heliograph.gateway, spending)
    assert status == 429
    assert answer["error"]["message"] == "proxy key is over its daily spend limit of $0.000001"

    monthly = {"spendLimitUsd": 5, "spendPeriod": "month"}
    proxy_id, _ = await add_proxy_key(heliograph, provider_key_id, monthly)
    listed = (await call(heliograph, "GET", "/v1/api-keys/proxy-keys"))[1]["data"]
    shown = next(key for key in listed if key["id"] == proxy_id)
    assert shown["limits"] == {
        "spendLimitUsd": 5.0,
        "spendPeriod": "month",
        "requestLimit": None,
        "requestWindowSeconds": None,
    }


async def test_other_organizations_keys_are_not_found(heliograph_on_each_db: Heliograph) -> None:
    heliograph = heliograph_on_each_db
    other_org, other_key = heliograph.new_organization("neighbour")
    theirs = await add_provider_key(heliograph, key=other_key)
    their_proxy = heliograph.running.services.provider_keys.create_proxy_key(
        other_org, "theirs", theirs, _no_limits(), SYSTEM
    )
    path = f"/v1/api-keys/provider-key/{theirs}"
    for method, route, body in [
        ("GET", path, None),
        ("PATCH", path, {"providerKeyName": "mine now"}),
        ("DELETE", path, None),
        ("POST", "/v1/api-keys/proxy-key", {"proxyKeyName": "x", "providerKeyId": theirs}),
        ("DELETE", f"/v1/api-keys/proxy-key/{their_proxy.info.id}", None),
        ("GET", "/v1/api-keys/provider-key/not-a-key", None),
    ]:
        status, answer = await call(heliograph, method, route, body)
        assert status == 404, (method, route, answer)
        assert answer["data"] is None
    assert (await call(heliograph, "GET", "/v1/api-keys/provider-keys"))[1]["data"] == []
    assert (await call(heliograph, "GET", "/v1/api-keys/proxy-keys"))[1]["data"] == []
    # Theirs still works for them.
    assert (await chat(heliograph.gateway, their_proxy.proxy_key))[0] == 200


def _no_limits() -> Any:
    from heliograph.services.provider_keys import ProxyLimits

    return ProxyLimits()


async def test_keys_without_key_management_are_refused(heliograph: Heliograph) -> None:
    services = heliograph.running.services
    provider_key_id = await add_provider_key(heliograph)
    for permissions in (KeyPermissions.READ, KeyPermissions.WRITE):
        limited = services.keys.create_key(heliograph.organization_id, "limited", permissions)
        path = f"/v1/api-keys/provider-key/{provider_key_id}"
        for method, route, body in [
            ("GET", "/v1/api-keys/provider-keys", None),
            ("GET", path, None),
            ("PATCH", path, {"providerKeyName": "x"}),
            ("DELETE", path, None),
            ("POST", "/v1/api-keys/provider-key", {"providerName": "openai"}),
            ("POST", "/v1/api-keys/proxy-key", {"proxyKeyName": "x", "providerKeyId": "y"}),
            ("GET", "/v1/api-keys/proxy-keys", None),
            ("DELETE", "/v1/api-keys/proxy-key/any", None),
        ]:
            status, answer = await call(heliograph, method, route, body, limited.api_key)
            assert status == 403, (permissions, method, route, answer)
    status, _ = await call(heliograph, "GET", "/v1/api-keys/provider-keys", key="sk-helicone-no")
    assert status == 401


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"providerName": "nope", "providerKey": SECRET, "providerKeyName": "n"}, "providerName"),
        ({"providerName": "openai", "providerKey": "short", "providerKeyName": "n"}, "8 to"),
        (
            {"providerName": "openai", "providerKey": "sk-ü-1234567", "providerKeyName": "n"},
            "ASCII",
        ),
        (
            {"providerName": "openai", "providerKey": "sk-a\r\nb-12345", "providerKeyName": "n"},
            "ASCII",
        ),
        ({"providerName": "openai", "providerKey": "x" * 4097, "providerKeyName": "n"}, "4096"),
        ({"providerName": "openai", "providerKey": SECRET, "providerKeyName": " "}, "1 to 200"),
        (
            {"providerName": "openai", "providerKey": SECRET, "providerKeyName": "n" * 201},
            "1 to 200",
        ),
        ({"providerName": "openai", "providerKeyName": "n"}, "providerKey"),
        ({"providerName": 3, "providerKey": SECRET, "providerKeyName": "n"}, "providerName"),
    ],
)
async def test_bad_provider_keys_are_400s(
    heliograph: Heliograph, body: dict[str, Any], says: str
) -> None:
    status, answer = await call(heliograph, "POST", "/v1/api-keys/provider-key", body)
    assert status == 400, answer
    assert says in answer["error"]
    assert "stored" not in str(answer)
    assert (await call(heliograph, "GET", "/v1/api-keys/provider-keys"))[1]["data"] == []


async def test_bad_proxy_keys_and_patches_are_400s(heliograph: Heliograph) -> None:
    provider_key_id = await add_provider_key(heliograph)
    for limits in [
        {"spendLimitUsd": -1},
        {"spendLimitUsd": 0},
        {"spendPeriod": "day"},
        {"spendLimitUsd": 5, "spendPeriod": "year"},
        {"requestLimit": 0},
        {"requestWindowSeconds": 60},
        {"requestLimit": 10, "requestWindowSeconds": 10**9},
        {"requestLimit": "many"},
    ]:
        body = {"proxyKeyName": "app", "providerKeyId": provider_key_id, "limits": limits}
        status, answer = await call(heliograph, "POST", "/v1/api-keys/proxy-key", body)
        assert status == 400, (limits, answer)
    body = {"proxyKeyName": "", "providerKeyId": provider_key_id}
    assert (await call(heliograph, "POST", "/v1/api-keys/proxy-key", body))[0] == 400
    assert (await call(heliograph, "GET", "/v1/api-keys/proxy-keys"))[1]["data"] == []

    path = f"/v1/api-keys/provider-key/{provider_key_id}"
    status, answer = await call(heliograph, "PATCH", path, {})
    assert status == 400
    assert "providerKeyName" in answer["error"]
    status, answer = await call(heliograph, "PATCH", path, {"providerKey": "tiny"})
    assert status == 400
    for route in ("/v1/api-keys/provider-key", "/v1/api-keys/proxy-key"):
        status, answer = await call(heliograph, "POST", route, data=b'{"providerName": ')
        assert status == 400, answer


async def test_unknown_proxy_keys_are_401s(heliograph: Heliograph, fake: Fake) -> None:
    status, answer, _ = await chat(heliograph.gateway, PROXY_KEY_PREFIX + "made-up")
    assert status == 401
    assert answer["error"]["message"] == "invalid or revoked proxy key"
    headers = {"Authorization": "Bearer sk-somebody-elses-openai-key"}
    status, answer, _ = await through_gateway(
        heliograph.gateway, "/openai/v1/chat/completions", CHAT, headers
    )
    assert status == 401
    assert "Helicone-Auth" in answer["error"]["message"]
    assert fake.seen.requests == []


async def test_a_gateway_process_uses_proxy_keys_and_drops_revoked_ones(
    api: Heliograph, fake: Fake, tmp_path: Path
) -> None:
    provider_key_id = await add_provider_key(api)
    proxy_id, proxy_key = await add_proxy_key(api, provider_key_id)
    async with gateway_process(api, fake, tmp_path) as gateway:
        status, answer, request_id = await chat(gateway, proxy_key)
        assert status == 200, answer
        assert fake.seen.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET}"
        assert no_proxy_key_in(fake.seen.requests[-1], proxy_key)
        await api.wait_for(request_id, timeout_s=5)

        status, _ = await call(api, "DELETE", f"/v1/api-keys/proxy-key/{proxy_id}")
        assert status == 200
        await refused_within_5s(gateway, proxy_key)
