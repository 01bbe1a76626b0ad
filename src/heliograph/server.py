"""Composition: one process running the gateway (aiohttp), the API (FastAPI on uvicorn) and the
ingest writer on one event loop, over the services built from `Settings`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from aiohttp import web

from heliograph.api.app import build_api_app
from heliograph.gateway.app import build_gateway_app
from heliograph.gateway.proxy import Proxy
from heliograph.gateway.targets import TargetPolicy
from heliograph.services.container import Services
from heliograph.settings import Settings

log = logging.getLogger("heliograph")


class _ApiServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # signals belong to `run`, which stops both servers and flushes the logs


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def build_proxy(services: Services) -> Proxy:
    settings = services.settings
    origins = [provider.origin for provider in services.providers.values()]
    return Proxy(
        services.providers,
        TargetPolicy(origins, settings.allowed_target_origins),
        services.verifier,
        services.writer,
        services.telemetry,
        max_capture_bytes=settings.max_request_bytes,
    )


@dataclass
class Running:
    services: Services
    gateway_port: int
    api_port: int
    _runner: web.AppRunner
    _api: _ApiServer
    _api_task: asyncio.Task[None]

    async def stop(self) -> None:
        """Stop taking traffic, then flush every pending log before closing the stores."""
        self._api.should_exit = True
        await self._runner.cleanup()
        with contextlib.suppress(asyncio.CancelledError):
            await self._api_task
        await self.services.close()


async def start(settings: Settings) -> Running:
    services = await Services.open(settings)
    gateway_socket = bind(settings.host, settings.gateway_port)
    api_socket = bind(settings.host, settings.api_port)
    gateway = build_gateway_app(
        build_proxy(services),
        max_request_bytes=settings.max_request_bytes,
        connect_timeout_s=settings.upstream_connect_timeout_s,
        read_timeout_s=settings.upstream_timeout_s,
    )
    # In-flight streams get this long to finish on shutdown before they are cut.
    runner = web.AppRunner(gateway, access_log=None, handle_signals=False, shutdown_timeout=10)
    await runner.setup()
    await web.SockSite(runner, gateway_socket).start()
    config = uvicorn.Config(
        build_api_app(services), lifespan="off", log_level="warning", access_log=False
    )
    api = _ApiServer(config)
    api_task = asyncio.create_task(api.serve(sockets=[api_socket]), name="api-server")
    while not api.started and not api_task.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.01)
    return Running(
        services,
        gateway_socket.getsockname()[1],
        api_socket.getsockname()[1],
        runner,
        api,
        api_task,
    )


async def serve_forever(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then stop cleanly."""
    running = await start(settings)
    log.info(
        "gateway on http://%s:%d, API on http://%s:%d, data in %s",
        settings.host,
        running.gateway_port,
        settings.host,
        running.api_port,
        settings.data_dir,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("stopping: flushing pending logs")
    await running.stop()
    log.info("stopped")


def run(settings: Settings) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not available on Windows
        asyncio.run(serve_forever(settings))
        return
    uvloop.run(serve_forever(settings))
