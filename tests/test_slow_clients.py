"""Slow, oversized and malformed clients on both ports, over raw sockets: a head sent a byte at a
time, a connection that says nothing, a body that stops, too many or too large headers, and
garbage, which is one log line."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from gateway_harness import AUTH, Gateway, exchange, gateway, status_of
from heliograph.domain.record import STATUS_CLIENT_CANCELLED

# The deadlines below are the behaviour under test: a client that stalls is cut at these limits
# (0.5 s, noticed by twice that), never after the few seconds a test would wait for it.
LIMITS = {"header_timeout_s": 0.5, "body_timeout_s": 0.5, "max_headers": 30}
CHAT = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})


@pytest.fixture
async def bare(fake: Fake) -> AsyncIterator[Gateway]:
    async with gateway(fake.origin, **LIMITS) as instance:
        yield instance


@pytest.fixture
async def api(tmp_path: Path, analytics_dir: Path, fake: Fake) -> AsyncIterator[Heliograph]:
    instance = await start_heliograph(heliograph_settings(tmp_path, analytics_dir, fake, **LIMITS))
    yield instance
    await instance.running.stop()


async def seconds_until_closed(port: int, head: bytes, trickle: bytes, limit_s: float) -> float:
    """Send `head`, then `trickle` every 50 ms; how long until the server hangs up."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    try:
        while time.monotonic() - started < limit_s:
            try:
                data = await asyncio.wait_for(reader.read(1024), 0.05)
            except TimeoutError:
                writer.write(trickle)
                continue
            if not data:
                break
    except ConnectionError:
        pass
    finally:
        writer.close()
    return time.monotonic() - started


SLOW_HEAD = b"POST /v1/request/query HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize("trickle", [b"X-Slow: 1\r\n", b"a", b""])
async def test_a_head_that_never_completes_is_cut_on_the_gateway(
    bare: Gateway, trickle: bytes
) -> None:
    assert await seconds_until_closed(bare.port, SLOW_HEAD, trickle, limit_s=3.0) < 1.5


@pytest.mark.parametrize("trickle", [b"X-Slow: 1\r\n", b"a"])
async def test_a_head_that_never_completes_is_cut_on_the_api(
    api: Heliograph, trickle: bytes
) -> None:
    assert await seconds_until_closed(api.running.api_port, SLOW_HEAD, trickle, 3.0) < 1.5


async def test_a_silent_connection_is_cut_on_both_ports(api: Heliograph) -> None:
    for port in (api.running.gateway_port, api.running.api_port):
        assert await seconds_until_closed(port, b"", b"", limit_s=3.0) < 1.5


def chat_head(length: int, extra: str = "") -> bytes:
    return (
        "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Helicone-Auth: {AUTH['Helicone-Auth']}\r\n{extra}"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def test_a_stalled_body_is_a_logged_408_on_the_gateway(bare: Gateway, fake: Fake) -> None:
    request_id = str(uuid.uuid4())
    head = chat_head(len(CHAT), f"Helicone-Request-Id: {request_id}\r\n")
    started = time.monotonic()
    answer = await exchange(bare.port, head + CHAT[:10], read_s=3.0)
    assert status_of(answer) == 408
    assert time.monotonic() - started < 2.0
    assert b"body_timeout" in answer
    (record,) = bare.records.items
    assert (record.request_id, record.status) == (request_id, 408)
    assert fake.seen.requests == []


async def test_a_client_gone_mid_body_is_logged_as_cancelled_without_a_traceback(
    bare: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", bare.port)
    writer.write(chat_head(len(CHAT)) + CHAT[:10])
    await asyncio.sleep(0.1)  # the gateway is reading the body when the client goes
    writer.close()
    for _ in range(50):
        if bare.records.items:
            break
        await asyncio.sleep(0.02)
    (record,) = bare.records.items
    assert record.status == STATUS_CLIENT_CANCELLED
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_slow_but_moving_body_is_not_cut(bare: Gateway) -> None:
    pieces = [CHAT[i : i + 8] for i in range(0, len(CHAT), 8)]
    answer = await exchange(bare.port, chat_head(len(CHAT)), *pieces, pause_s=0.1, read_s=3.0)
    assert len(pieces) * 0.1 > 0.5  # longer in all than the body timeout
    assert status_of(answer) == 200


async def test_a_stalled_body_is_cut_on_the_api(api: Heliograph) -> None:
    head = (
        "POST /v1/log/request HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {api.api_key}\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    started = time.monotonic()
    answer = await exchange(api.running.api_port, head + b'{"providerRequest"', read_s=3.0)
    assert time.monotonic() - started < 2.0
    assert status_of(answer) == 408


def many_headers(count: int) -> bytes:
    return b"".join(b"X-H%d: v\r\n" % index for index in range(count))


async def test_too_many_or_too_large_headers_on_the_gateway(bare: Gateway) -> None:
    crowded = await exchange(bare.port, chat_head(0, many_headers(40).decode()))
    assert status_of(crowded) == 400
    assert b"Too many headers" in crowded
    huge = await exchange(bare.port, chat_head(0, f"X-Big: {'a' * 9000}\r\n"))
    assert status_of(huge) == 400


async def test_too_many_or_too_large_headers_on_the_api(api: Heliograph) -> None:
    port = api.running.api_port
    crowded = await exchange(
        port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many_headers(40) + b"\r\n"
    )
    assert status_of(crowded) == 431
    huge = f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 9000}\r\n\r\n".encode()
    assert status_of(await exchange(port, huge)) == 431
    enormous = f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 70000}\r\n\r\n".encode()
    assert status_of(await exchange(port, enormous)) in (400, 431)
    fine = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(fine) in (200, 503)


@pytest.mark.parametrize(
    "garbage", [b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", b"\x00\x01\x02\r\n\r\n"]
)
async def test_a_malformed_request_is_one_log_line_on_both_ports(
    api: Heliograph, caplog: pytest.LogCaptureFixture, garbage: bytes
) -> None:
    caplog.set_level(logging.INFO)
    for port in (api.running.gateway_port, api.running.api_port):
        caplog.clear()
        assert status_of(await exchange(port, garbage)) == 400
        lines = [r for r in caplog.records if r.levelno >= logging.INFO]
        assert len(lines) <= 1, [r.getMessage() for r in lines]  # aiohttp counts bytes that
        for line in lines:  # are not HTTP at all as noise (debug)
            assert line.exc_info is None
            assert "\n" not in line.getMessage()
