"""A gateway alone, wired as `server.py` wires it but with in-memory ports (one key, a list of
records, a dict cache), in front of the fake provider; and raw-socket helpers for tests that must
send what no HTTP client would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from heliograph.domain.keys import Identity
from heliograph.domain.ratelimit import RateLimitPolicy
from heliograph.domain.record import RequestRecord
from heliograph.gateway.ports import GatewayPorts
from heliograph.gateway.proxy import Proxy
from heliograph.gateway_process import open_gateway
from heliograph.providers.registry import BUILT_IN, build_registry
from heliograph.runtime import bind
from heliograph.settings import load_settings
from heliograph.state.buckets import MemoryBuckets
from heliograph.telemetry import Telemetry

KEY = "sk-helicone-aaaaaaa-bbbbbbb-ccccccc-ddddddd"
AUTH = {"Helicone-Auth": f"Bearer {KEY}"}


class OneKey:
    async def verify(self, header_value: str | None) -> Identity | None:
        return Identity("org-1", "key-1") if header_value == f"Bearer {KEY}" else None


class NoRules:
    async def policies(self, organization_id: str) -> tuple[RateLimitPolicy, ...]:
        return ()


@dataclass
class Records:
    items: list[RequestRecord] = field(default_factory=list)

    def put(self, record: RequestRecord) -> None:
        self.items.append(record)


@dataclass
class DictCache:
    values: dict[str, bytes] = field(default_factory=dict)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [self.values.get(key) for key in keys]

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self.values[key] = value

    async def close(self) -> None:
        pass


@dataclass
class Gateway:
    port: int
    records: Records
    cache: DictCache
    runner: web.AppRunner
    proxy: Proxy

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def gateway(provider_origin: str, **overrides: Any) -> AsyncIterator[Gateway]:
    env = {f"HELIOGRAPH_{p.prefix.upper()}_BASE_URL": provider_origin for p in BUILT_IN}
    settings = load_settings(env, gateway_port=0, **overrides)
    records, cache, telemetry = Records(), DictCache(), Telemetry()
    providers = build_registry(settings.provider_base_urls)
    ports = GatewayPorts(providers, OneKey(), records, NoRules(), telemetry)
    sock = bind("127.0.0.1", 0)
    async with open_gateway(settings, ports, sock, buckets=MemoryBuckets(), cache=cache) as opened:
        yield Gateway(sock.getsockname()[1], records, cache, opened.runner, opened.proxy)


async def exchange(port: int, *parts: bytes, pause_s: float = 0.0, read_s: float = 5.0) -> bytes:
    """Send `parts` (pausing between them) on a fresh connection, then read until the server
    closes it or `read_s` passes; b"" when the server closed without answering."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for index, part in enumerate(parts):
            if index and pause_s:
                await asyncio.sleep(pause_s)
            writer.write(part)
            await writer.drain()
        return await asyncio.wait_for(reader.read(), read_s)
    finally:
        writer.close()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
