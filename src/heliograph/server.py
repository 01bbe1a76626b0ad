"""Composition. `heliograph serve` runs the API and the ingest writer in this process and the
gateway in `gateway_workers` child processes that share one listening socket and ship their logs
to the API's ingest endpoint, so the hot path never shares a GIL with parsing and storage.
`start` runs everything in one process instead (tests, and `gateway_workers = 0`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import uvicorn

from heliograph.api.http_limits import HeaderLimits, head_bytes, limited_protocol
from heliograph.gateway.ports import GatewayPorts, ResponseCache
from heliograph.gateway_process import GATEWAY_SOCKET_FD_ENV, OpenGateway, open_gateway
from heliograph.lifeline import Lifeline, wait_for_stop
from heliograph.runtime import bind, run_async
from heliograph.services.container import Services
from heliograph.settings import Settings
from heliograph.web.app import build_web_app

log = logging.getLogger("heliograph")
CHILD_STOP_TIMEOUT_S = 30


class _ApiServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # signals belong to `serve_forever`, which stops everything in order


async def serve_api(
    services: Services, sock: socket.socket
) -> tuple[_ApiServer, asyncio.Task[None]]:
    settings = services.settings
    app = HeaderLimits(build_web_app(services), settings.max_headers, settings.max_header_bytes)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        http=limited_protocol(settings.header_timeout_s, settings.body_timeout_s),
        h11_max_incomplete_event_size=head_bytes(settings.max_header_bytes),
    )
    api = _ApiServer(config)
    task = asyncio.create_task(api.serve(sockets=[sock]), name="api-server")
    while not api.started and not task.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.01)
    return api, task


@dataclass
class Running:
    """Everything in one process: gateway, API and writer."""

    services: Services
    gateway_port: int
    api_port: int
    gateway: OpenGateway | None  # None when child processes serve the gateway port
    _gateway: contextlib.AsyncExitStack
    _api: _ApiServer
    _api_task: asyncio.Task[None]

    async def stop(self) -> None:
        """Stop taking traffic, then flush every pending log before closing the stores."""
        await self._gateway.aclose()
        self._api.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._api_task
        await self.services.close()


async def start(
    settings: Settings,
    gateway_socket: socket.socket | None = None,
    *,
    cache: ResponseCache | None = None,
) -> Running:
    """Start the API and writer, and the gateway in-process unless a socket is kept for children.
    Ports are bound before the stores open, so a busy port fails at once and leaves nothing open.
    `cache` replaces the response cache the settings name (a test's, on its own clock)."""
    with contextlib.ExitStack() as on_failure:
        api_socket = on_failure.enter_context(bind(settings.host, settings.api_port))
        in_process = gateway_socket is None
        if gateway_socket is None:
            gateway_socket = on_failure.enter_context(bind(settings.host, settings.gateway_port))
        # The bound port (when asked for port 0), so links the API makes name it.
        settings = replace(settings, api_port=api_socket.getsockname()[1])
        # And the gateway's, which the prompt playground calls.
        settings = replace(settings, gateway_port=gateway_socket.getsockname()[1])
        services = await Services.open(settings)
        on_failure.pop_all()
    stack, gateway = contextlib.AsyncExitStack(), None
    if in_process:
        ports = GatewayPorts(
            services.providers,
            services.verifier,
            services.writer,
            services.rule_source,
            services.telemetry,
            services.proxy_keys,
            services.price_cache,
            services.prompt_cache,
            services.own_keys,
        )
        gateway = await stack.enter_async_context(
            open_gateway(settings, ports, gateway_socket, cache=cache)
        )
    gateway_port = gateway_socket.getsockname()[1]
    api, api_task = await serve_api(services, api_socket)
    api_port = api_socket.getsockname()[1]
    return Running(services, gateway_port, api_port, gateway, stack, api, api_task)


class GatewayChildren:
    """Starts the gateway processes on a socket bound here, restarts any that dies, stops them.
    Each child holds a `Lifeline` to this process, so a `kill -9` here stops the children too."""

    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        self._settings = settings
        self._socket = sock
        self._lifeline = Lifeline()
        self._children: dict[int, asyncio.subprocess.Process] = {}
        self._stopping = False
        self._watchers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for index in range(self._settings.gateway_workers):
            self._watchers.append(asyncio.create_task(self._keep_running(index)))

    async def _keep_running(self, index: int) -> None:
        while not self._stopping:
            child = await self._spawn(index)
            self._children[index] = child
            code = await child.wait()
            if not self._stopping:
                log.error("gateway process %d exited with %s; restarting it", index, code)
                await asyncio.sleep(1)

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        settings = self._settings
        env: dict[str, Any] = {
            **os.environ,
            GATEWAY_SOCKET_FD_ENV: str(self._socket.fileno()),
            "HELIOGRAPH_DATA_DIR": str(settings.data_dir),
            "HELIOGRAPH_DATABASE_URL": settings.resolved_database_url,
            "HELIOGRAPH_API_URL": settings.resolved_api_url,
            "HELIOGRAPH_INGEST_URL": settings.resolved_ingest_url,
            "HELIOGRAPH_INGEST_TOKEN": settings.ingest_token,
            "HELIOGRAPH_GATEWAY_WORKER": str(index),
            "HELIOGRAPH_LOG_LEVEL": settings.log_level,
            # The provider keys' master key, when not in the data directory's `secret.key`.
            **({"HELIOGRAPH_SECRET_KEY": settings.secret_key} if settings.secret_key else {}),
            **self._lifeline.child_env(),
        }
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "heliograph.gateway_process",
            env=env,
            pass_fds=(self._socket.fileno(), self._lifeline.read_fd),
        )

    async def stop(self) -> None:
        """SIGTERM every child and wait: each finishes its streams and ships its last logs."""
        self._stopping = True
        for child in self._children.values():
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
        for child in self._children.values():
            try:
                await asyncio.wait_for(child.wait(), CHILD_STOP_TIMEOUT_S)
            except TimeoutError:
                child.kill()
        for watcher in self._watchers:
            watcher.cancel()
        self._lifeline.close()


async def serve_forever(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then stop in order: gateways, API, writer (flushing logs)."""
    children = None
    if settings.gateway_workers > 0:
        settings = replace(
            settings, ingest_token=settings.ingest_token or secrets.token_urlsafe(32)
        )
        gateway_socket = bind(settings.host, settings.gateway_port)
        running = await start(settings, gateway_socket)
        settings = replace(settings, api_port=running.api_port)
        children = GatewayChildren(settings, gateway_socket)
        await children.start()
    else:
        running = await start(settings)
    log.info(
        "gateway on http://%s:%d (%d processes), API on http://%s:%d, data in %s",
        settings.host,
        running.gateway_port,
        max(settings.gateway_workers, 1),
        settings.host,
        running.api_port,
        settings.data_dir,
    )
    await wait_for_stop()
    log.info("stopping: flushing pending logs")
    if children is not None:
        await children.stop()
    await running.stop()
    log.info("stopped")


def run(settings: Settings) -> None:
    run_async(serve_forever(settings))
