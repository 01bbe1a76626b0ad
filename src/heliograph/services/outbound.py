"""Requests Heliograph makes to addresses its users supply (webhook destinations, alert
channels): `https://` and public only, unless the operator listed the origin in
`HELIOGRAPH_ALLOWED_WEBHOOK_ORIGINS`. A URL is checked when it is saved and again before every
delivery, and the session's resolver refuses a name that has come to point into the private
network since (DNS rebinding)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from heliograph.domain.addresses import is_private_address, is_private_host
from heliograph.domain.errors import InvalidInput

MAX_URL_CHARS = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
ALLOW_LIST = "HELIOGRAPH_ALLOWED_WEBHOOK_ORIGINS"


class DestinationRejected(InvalidInput):
    """A webhook or alert URL that is malformed, not https, or private; the message says which."""

    code = "invalid_destination"


class OutboundPolicy:
    def __init__(self, allowed_origins: Iterable[str]) -> None:
        self._allowed = frozenset(_origin_key(origin) for origin in allowed_origins if origin)

    def check(self, url: str) -> str:
        """`url`, stripped, when it may be called; else a `DestinationRejected` saying why."""
        url = url.strip() if isinstance(url, str) else ""
        if not url or len(url) > MAX_URL_CHARS:
            raise DestinationRejected(f"a destination must be a URL of 1 to {MAX_URL_CHARS} chars")
        try:
            parts = urlsplit(url)
            port = parts.port
            # The host as aiohttp will connect to it: yarl turns full-width digits, ideographic
            # dots and other Unicode spellings of an address into the address itself.
            host = URL(url).raw_host
        except ValueError:
            raise DestinationRejected(f"{url[:80]!r} is not a valid URL") from None
        if parts.scheme not in DEFAULT_PORTS or not host:
            raise DestinationRejected("a destination must be an https:// URL")
        if parts.username is not None or parts.password is not None or parts.fragment:
            raise DestinationRejected("a destination cannot carry credentials or a #fragment")
        if any(ord(char) < 33 for char in url):
            raise DestinationRejected("a destination cannot contain spaces or control characters")
        if self.listed(parts.scheme, host, port or DEFAULT_PORTS[parts.scheme]):
            return url  # listed by the operator: trusted even when private or plain http
        if parts.scheme != "https":
            raise DestinationRejected(
                f"a destination must be https:// (or an origin listed in {ALLOW_LIST})"
            )
        if is_private_host(host):
            raise DestinationRejected(
                f"{host} is a private or local address; list the origin in {ALLOW_LIST}"
            )
        return url

    def listed(self, scheme: str, host: str, port: int) -> bool:
        return f"{scheme}://{_host_key(host)}:{port}" in self._allowed

    def listed_any_scheme(self, host: str, port: int) -> bool:
        return any(self.listed(scheme, host, port) for scheme in DEFAULT_PORTS)

    def session(self, timeout_s: float) -> aiohttp.ClientSession:
        """A client session whose resolver keeps unlisted names off private addresses; no
        proxies from the environment, and callers pass `allow_redirects=False`."""
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self), limit=256)
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        return aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False)


class GuardedResolver(AbstractResolver):
    """The default resolver, with private addresses dropped unless the host and port are an
    origin the operator listed."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if self._policy.listed_any_scheme(host, port):
            return found
        public = [entry for entry in found if not _private(entry)]
        if not public:
            raise OSError(f"{host} resolves only to private addresses")
        return public

    async def close(self) -> None:
        await self._inner.close()


def _private(entry: ResolveResult) -> bool:
    try:
        return is_private_address(ipaddress.ip_address(entry["host"]))
    except ValueError:
        return True


def _origin_key(origin: str) -> str:
    """`scheme://host:port` with the port spelt out, for comparing origins however written."""
    parts = urlsplit(origin.strip().rstrip("/"))
    scheme = parts.scheme.lower()
    port: Any = parts.port or DEFAULT_PORTS.get(scheme, 0)
    return f"{scheme}://{_host_key(URL(origin.strip()).raw_host or '')}:{port}"


def _host_key(host: str) -> str:
    return host.lower().strip("[]").rstrip(".")
