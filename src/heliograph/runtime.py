"""What every Heliograph server process needs from the operating system: a listening socket and an
event loop to run on. Standard library and uvloop only, so the lean gateway process imports it."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Coroutine
from typing import Any


class PortInUse(Exception):
    """Another process listens on a port this server needs."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"port {port} on {host} is in use")
        self.host = host
        self.port = port


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # An explicit IPPROTO_TCP: accepted sockets inherit it, and asyncio turns Nagle off only on
    # sockets that report it; without it every keep-alive response waits ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    # SO_REUSEADDR: a restart binds at once, even while the last run's connections linger.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(host, port) from None
        raise
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def run_async(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not available on Windows
        asyncio.run(main)
        return
    uvloop.run(main)
