"""The gateway's edges: paths that climb out of their route, the caller's key kept from
providers, fallback headers, `/v1/feedback` ids, configured private origins, input caps,
cancelled cache replays, and header bytes that are not UTF-8."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from yarl import URL

from conftest import Fake, Heliograph
from gateway_harness import AUTH, KEY, Gateway, exchange, gateway, status_of
from heliograph.domain.cache import CachedResponse
from heliograph.domain.record import STATUS_CLIENT_CANCELLED

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def bare(fake: Fake) -> AsyncIterator[Gateway]:
    async with gateway(fake.origin) as instance:
        yield instance


async def post(
    url: str, headers: dict[str, str], body: object = CHAT
) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session:
        target = URL(url, encoded=True)
        async with session.post(target, data=orjson.dumps(body), headers=headers) as response:
            return response.status, dict(response.headers), await response.read()


@pytest.mark.parametrize(
    "path",
    [
        "/openai/v1/../../admin",
        "/openai/v1/%2e%2e/admin",
        "/openai/v1/%2E%2e/admin",
        "/openai/v1/..%2fadmin",
        "/openai/v1/..%5cadmin",
        "/openai/v1/..\\admin",
        "/openai/v1/%252e%252e/admin",
        "/openai/v1/..;x=1/admin",
        "/gateway/v1/%2e%2e/%2e%2e/x",
    ],
)
async def test_dot_segments_are_refused_in_every_spelling(
    bare: Gateway, fake: Fake, path: str
) -> None:
    headers = {**AUTH, "Helicone-Target-Url": fake.origin}
    status, _, body = await post(bare.url + path, headers)
    assert status == 400
    assert orjson.loads(body)["error"]["code"] == "invalid_path"
    assert fake.seen.requests == []


async def test_dots_inside_a_segment_still_pass(bare: Gateway) -> None:
    status, _, _ = await post(f"{bare.url}/openai/v1/models/gpt-4.1..x/chat/completions", AUTH)
    assert status != 400
    assert bare.records.items[-1].path == "/v1/models/gpt-4.1..x/chat/completions"


async def test_the_callers_heliograph_key_never_reaches_the_provider(
    bare: Gateway, fake: Fake
) -> None:
    headers = {**AUTH, "Authorization": f"Bearer {KEY}", "X-Api-Key": KEY, "X-Other": "kept"}
    status, _, _ = await post(f"{bare.url}/anthropic/v1/messages", headers)
    assert status == 200
    seen = fake.seen.requests[-1]["headers"]
    assert KEY not in str(seen)
    assert seen["x-other"] == "kept"
    # A fallback entry cannot send it either.
    fallbacks = [{"target-url": fake.origin, "headers": {"Authorization": f"Bearer {KEY}"}}]
    headers = {**AUTH, "Helicone-Fallbacks": orjson.dumps(fallbacks).decode()}
    status, _, _ = await post(f"{bare.url}/gateway/v1/chat/completions", headers)
    assert status == 200
    assert KEY not in str(fake.seen.requests[-1]["headers"])


async def test_a_provider_key_still_passes(bare: Gateway, fake: Fake) -> None:
    headers = {**AUTH, "Authorization": "Bearer sk-provider"}
    await post(f"{bare.url}/openai/v1/chat/completions", headers)
    assert fake.seen.requests[-1]["headers"]["authorization"] == "Bearer sk-provider"


@pytest.mark.parametrize(
    "name",
    ["Host", "host", "Connection", "Transfer-Encoding", "Content-Length", "Helicone-Auth", "TE"],
)
async def test_fallback_headers_cannot_set_framing_or_helicone_headers(
    bare: Gateway, fake: Fake, name: str
) -> None:
    fallbacks = [{"target-url": fake.origin, "headers": {name: "x"}}]
    headers = {**AUTH, "Helicone-Fallbacks": orjson.dumps(fallbacks).decode()}
    status, _, body = await post(f"{bare.url}/gateway/v1/chat/completions", headers)
    assert status == 400
    error = orjson.loads(body)["error"]
    assert error["code"] == "invalid_fallbacks"
    assert f"may not set {name}" in error["message"]
    assert fake.seen.requests == []


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-A": "one\r\nHost: evil"}, "one line of text"),
        ({"Bad Name": "x"}, "not a valid header name"),
        ({"X-Number": 1}, "one line of text"),
    ],
)
async def test_fallback_headers_must_be_valid_lines(
    bare: Gateway, fake: Fake, headers: dict[str, object], message: str
) -> None:
    fallbacks = [{"target-url": fake.origin, "headers": headers}]
    sent = {**AUTH, "Helicone-Fallbacks": orjson.dumps(fallbacks).decode()}
    status, _, body = await post(f"{bare.url}/gateway/v1/chat/completions", sent)
    assert status == 400
    assert message in orjson.loads(body)["error"]["message"]


@pytest.mark.parametrize(
    "request_id", ["../session/query?x=", "x/../../v1/request/query", "", "a b", 7]
)
async def test_feedback_takes_only_a_request_uuid(bare: Gateway, request_id: object) -> None:
    body = {"helicone-id": request_id, "rating": True}
    status, _, answer = await post(f"{bare.url}/v1/feedback", AUTH, body)
    assert status == 400
    assert orjson.loads(answer)["data"] is None


async def test_configured_private_provider_origins_are_valid_targets_and_fallbacks(
    bare: Gateway, fake: Fake
) -> None:
    # The fake provider listens on 127.0.0.1 and is every provider's configured origin.
    headers = {**AUTH, "Helicone-Target-Url": fake.origin}
    status, _, _ = await post(f"{bare.url}/gateway/v1/chat/completions", headers)
    assert status == 200
    fallbacks = [{"target-url": fake.origin, "onCodes": [500]}]
    headers = {**AUTH, "Helicone-Fallbacks": orjson.dumps(fallbacks).decode()}
    status, _, _ = await post(f"{bare.url}/gateway/v1/chat/completions", headers)
    assert status == 200
    other_private = {**AUTH, "Helicone-Target-Url": "http://127.0.0.1:1"}
    status, _, body = await post(f"{bare.url}/gateway/v1/chat/completions", other_private)
    assert status == 400
    assert b"private" in body


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({f"Helicone-Property-P{i}": "v" for i in range(65)}, b"at most 64 Helicone-Property"),
        ({"Helicone-Property-" + "k" * 300: "v"}, b"1 to 256 characters"),
        (
            {"Helicone-Cache-Enabled": "true", "Helicone-Cache-Ignore-Keys": ",".join("k" * 65)},
            b"at most 64 keys",
        ),
        (
            {"Helicone-Fallbacks": orjson.dumps([{"target-url": "http://x"}] * 11).decode()},
            b"at most 10 entries",
        ),
    ],
)
async def test_input_caps_are_400s_that_say_which(
    bare: Gateway, fake: Fake, headers: dict[str, str], message: bytes
) -> None:
    sent = {**AUTH, "Helicone-Target-Url": fake.origin, **headers}
    status, _, body = await post(f"{bare.url}/gateway/v1/chat/completions", sent)
    assert status == 400
    assert message in body
    assert fake.seen.requests == []


TOO_MANY_PROPERTIES = {f"Helicone-Property-P{i}": "v" for i in range(65)}
BAD_BUCKETS = {"Helicone-Cache-Enabled": "true", "Helicone-Cache-Bucket-Max-Size": "99"}


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        # The key first: nothing else is answered to a caller without one.
        ("/openai/v1/chat/completions", {**TOO_MANY_PROPERTIES, **BAD_BUCKETS}, 401, None),
        # Then the header caps, before the path and the target are looked at.
        ("/openai/v1/../x", {**AUTH, **TOO_MANY_PROPERTIES}, 400, "invalid_options"),
        # Then where the request goes, before the cache settings.
        ("/openai/v1/../x", {**AUTH, **BAD_BUCKETS}, 400, "invalid_path"),
        ("/gateway/v1/chat/completions", {**AUTH, **BAD_BUCKETS}, 400, "invalid_target"),
        ("/nowhere/v1/chat/completions", {**AUTH, **BAD_BUCKETS}, 404, "unknown_provider"),
        ("/openai/v1/chat/completions", {**AUTH, **BAD_BUCKETS}, 400, "invalid_cache_settings"),
    ],
)
async def test_refusals_come_in_order_with_their_codes(
    bare: Gateway, fake: Fake, path: str, headers: dict[str, str], status: int, code: str | None
) -> None:
    answered, _, body = await post(bare.url + path, headers)
    assert answered == status
    error = orjson.loads(body)["error"]
    assert error["type"] == "heliograph_error"
    assert error["code"] == (code or "unauthorized")
    assert fake.seen.requests == []
    assert bare.records.items == []


async def test_a_request_id_from_the_caller_is_marked_as_such(bare: Gateway) -> None:
    chosen = str(uuid.uuid4())
    await post(f"{bare.url}/openai/v1/chat/completions", {**AUTH, "Helicone-Request-Id": chosen})
    await post(f"{bare.url}/openai/v1/chat/completions", AUTH)
    marked = [(r.request_id == chosen, r.client_request_id) for r in bare.records.items]
    assert marked == [(True, True), (False, False)]


async def test_a_cancelled_cache_replay_is_recorded(bare: Gateway) -> None:
    request = raw_chat({**AUTH, "Helicone-Cache-Enabled": "true"})
    first = bare.records.items
    assert status_of(await exchange(bare.port, request)) == 200
    # Make the stored answer too big to be written at once, so the replay is still going when
    # the gateway shuts down (and cancels it) for a client that does not read.
    (key,) = bare.cache.values
    entry = CachedResponse.decode(bare.cache.values[key])
    big = CachedResponse(200, entry.headers, [b"x" * 1_000_000] * 64, 5, entry.request_id)
    bare.cache.values[key] = big.encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", bare.port)
    writer.write(request)
    assert b"Helicone-Cache: HIT" in await reader.readuntil(b"\r\n\r\n")  # replay under way
    assert bare.runner.server is not None
    await bare.runner.server.shutdown(0.1)
    writer.close()
    replays = [r for r in bare.records.items if r.cache_reference_id == first[0].request_id]
    assert len(replays) == 1
    assert replays[0].status == STATUS_CLIENT_CANCELLED


def raw_chat(headers: dict[str, str], extra: bytes = b"") -> bytes:
    """A chat request as bytes, with `extra` header lines (which may be anything)."""
    body = orjson.dumps(CHAT)
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (
        b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + lines.encode()
        + extra
        + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


NOT_UTF8 = b"\xff\xfe"


async def test_header_bytes_that_are_not_utf8_are_logged_cleaned(
    heliograph: Heliograph, fake: Fake
) -> None:
    request_id = str(uuid.uuid4())
    headers = {**heliograph.gateway_auth(), "Helicone-Request-Id": request_id}
    request = raw_chat(
        headers,
        b"Helicone-User-Id: user-" + NOT_UTF8 + b"\r\n"
        b"Helicone-Property-Team: team-" + NOT_UTF8 + b"\r\n"
        b"Helicone-Session-Id: s-1\r\nHelicone-Session-Name: name-" + NOT_UTF8 + b"\r\n",
    )
    answer = await exchange(heliograph.running.gateway_port, request)
    assert status_of(answer) == 200
    assert fake.seen.requests
    row = await heliograph.wait_for(request_id, timeout_s=5.0)
    logged = {
        "user": row["request_user_id"],
        "team": row["properties"]["team"],
        "name": row["session_name"],
        "name property": row["properties"]["Helicone-Session-Name"],
    }
    for value in logged.values():  # each bad byte became U+FFFD
        prefix, replaced = value.split("-", 1)
        assert prefix in ("user", "team", "name")
        assert set(replaced) == {"\ufffd"}
    # The pipeline still logs what comes next.
    next_id = str(uuid.uuid4())
    headers = {**heliograph.gateway_auth(), "Helicone-Request-Id": next_id}
    status, _, _ = await post(f"{heliograph.gateway}/openai/v1/chat/completions", headers)
    assert status == 200
    await heliograph.wait_for(next_id, timeout_s=5.0)


async def test_a_provider_key_that_is_not_utf8_skips_the_cache(bare: Gateway) -> None:
    bad_key = b"Authorization: Bearer sk-" + NOT_UTF8 + b"\r\n"
    request = raw_chat({**AUTH, "Helicone-Cache-Enabled": "true"}, bad_key)
    for _ in range(2):
        answer = await exchange(bare.port, request)
        assert status_of(answer) == 200
        assert b"Helicone-Cache: MISS" in answer
    assert bare.cache.values == {}
