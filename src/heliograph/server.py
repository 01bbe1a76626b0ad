"""Composition. `heliograph serve` runs the API and the ingest writer in this process and the
gateway in `gateway_workers` child processes that share one listening socket and ship their logs
to the API's ingest endpoint, so the hot path never shares a GIL with parsing and storage.
`start` runs everything in one process instead (tests, and `gateway_workers = 0`)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
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
from aiohttp import web

from heliograph.api.app import build_api_app
from heliograph.gateway.app import build_gateway_app
from heliograph.gateway.caching import ResponseCacher
from heliograph.gateway.ports import Buckets, KeyVerifier, RecordSink, ResponseCache, RuleSource
from heliograph.gateway.proxy import Proxy
from heliograph.gateway.ratelimit import RateLimiter
from heliograph.gateway.targets import TargetPolicy
from heliograph.ingest.shipper import LogShipper
from heliograph.ingest.spool import Spool
from heliograph.providers.base import Provider
from heliograph.providers.registry import build_registry
from heliograph.services.container import Services, open_app_db
from heliograph.services.keys import CachedKeyVerifier
from heliograph.services.ratelimits import CachedRuleSource
from heliograph.settings import Settings
from heliograph.state.buckets import MemoryBuckets
from heliograph.state.disk_cache import DiskResponseCache
from heliograph.state.redis_buckets import RedisBuckets
from heliograph.state.redis_cache import RedisResponseCache
from heliograph.telemetry import Telemetry

log = logging.getLogger("heliograph")
GATEWAY_SOCKET_FD_ENV = "HELIOGRAPH_GATEWAY_SOCKET_FD"
SHUTDOWN_GRACE_S = 10  # in-flight streams get this long to finish before they are cut
CHILD_STOP_TIMEOUT_S = 30


class _ApiServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # signals belong to `serve_forever`, which stops everything in order


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # An explicit IPPROTO_TCP: accepted sockets inherit it, and asyncio turns Nagle off only on
    # sockets that report it; without it every keep-alive response waits ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def open_buckets(settings: Settings) -> Buckets:
    """Rate-limit buckets in Redis when `HELIOGRAPH_REDIS_URL` is set, else in this process."""
    if settings.redis_url:
        return RedisBuckets(settings.redis_url)
    return MemoryBuckets()


def open_response_cache(settings: Settings) -> ResponseCache:
    """Cached responses in Redis when `HELIOGRAPH_REDIS_URL` is set, else in the data dir."""
    if settings.redis_url:
        return RedisResponseCache(settings.redis_url)
    return DiskResponseCache(settings.data_dir / "cache", settings.cache_max_bytes)


def build_proxy(
    settings: Settings,
    providers: dict[str, Provider],
    keys: KeyVerifier,
    sink: RecordSink,
    telemetry: Telemetry,
    buckets: Buckets,
    rules: RuleSource,
    cache: ResponseCache,
) -> Proxy:
    origins = [provider.origin for provider in providers.values()]
    return Proxy(
        providers,
        TargetPolicy(origins, settings.allowed_target_origins),
        keys,
        sink,
        telemetry,
        max_capture_bytes=settings.max_request_bytes,
        limiter=RateLimiter(buckets, rules),
        cacher=ResponseCacher(cache, settings.max_stored_body_bytes),
    )


async def serve_gateway(
    settings: Settings, proxy: Proxy, telemetry: Telemetry, sock: socket.socket
) -> web.AppRunner:
    app = build_gateway_app(
        proxy,
        telemetry,
        max_request_bytes=settings.max_request_bytes,
        connect_timeout_s=settings.upstream_connect_timeout_s,
        read_timeout_s=settings.upstream_timeout_s,
        api_url=settings.resolved_api_url,
    )
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_S
    )
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


async def serve_api(
    services: Services, sock: socket.socket
) -> tuple[_ApiServer, asyncio.Task[None]]:
    config = uvicorn.Config(
        build_api_app(services), lifespan="off", log_level="warning", access_log=False
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
    _gateway: web.AppRunner | None
    _buckets: Buckets | None
    _cache: ResponseCache | None
    _api: _ApiServer
    _api_task: asyncio.Task[None]

    async def stop(self) -> None:
        """Stop taking traffic, then flush every pending log before closing the stores."""
        if self._gateway is not None:
            await self._gateway.cleanup()
        if self._buckets is not None:
            await self._buckets.close()
        if self._cache is not None:
            await self._cache.close()
        self._api.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._api_task
        await self.services.close()


async def start(settings: Settings, gateway_socket: socket.socket | None = None) -> Running:
    """Start the API and writer, and the gateway in-process unless a socket is kept for children."""
    services = await Services.open(settings)
    api_socket = bind(settings.host, settings.api_port)
    settings = replace(settings, api_port=api_socket.getsockname()[1])  # when bound to port 0
    runner = None
    buckets = None
    cache = None
    if gateway_socket is None:
        gateway_socket = bind(settings.host, settings.gateway_port)
        buckets = open_buckets(settings)
        cache = open_response_cache(settings)
        proxy = build_proxy(
            settings,
            services.providers,
            services.verifier,
            services.writer,
            services.telemetry,
            buckets,
            services.rule_source,
            cache,
        )
        runner = await serve_gateway(settings, proxy, services.telemetry, gateway_socket)
    gateway_port = gateway_socket.getsockname()[1]
    api, api_task = await serve_api(services, api_socket)
    api_port = api_socket.getsockname()[1]
    return Running(services, gateway_port, api_port, runner, buckets, cache, api, api_task)


async def run_gateway_process(settings: Settings) -> None:
    """A gateway child (or a standalone `heliograph gateway`): proxy, verify keys, ship logs."""
    telemetry = Telemetry()
    app_db = open_app_db(settings, migrate=False)
    shipper = LogShipper(
        settings.resolved_ingest_url,
        settings.ingest_token,
        Spool(settings.gateway_spool_dir),
        flush_rows=settings.flush_rows,
        flush_interval_ms=min(settings.flush_interval_ms, 200),
    )
    await shipper.start()
    verifier = CachedKeyVerifier(app_db.keys, settings.key_cache_ttl_s)
    rules = CachedRuleSource(app_db.rules, settings.key_cache_ttl_s)
    providers = build_registry(settings.provider_base_urls)
    buckets = open_buckets(settings)
    cache = open_response_cache(settings)
    proxy = build_proxy(settings, providers, verifier, shipper, telemetry, buckets, rules, cache)
    inherited = os.environ.get(GATEWAY_SOCKET_FD_ENV)
    if inherited:
        sock = socket.socket(fileno=int(inherited))
    else:
        sock = bind(settings.host, settings.gateway_port)
    runner = await serve_gateway(settings, proxy, telemetry, sock)
    quiet_garbage_collector()
    await _wait_for_signal()
    await runner.cleanup()
    await shipper.stop()
    await buckets.close()
    await cache.close()
    app_db.engine.dispose()


def quiet_garbage_collector() -> None:
    """Move everything alive after start-up out of the collector's sight and collect less often:
    a proxy allocates many short-lived objects, and full collections showed up as p99 spikes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


class GatewayChildren:
    """Starts the gateway processes on a socket bound here, restarts any that dies, stops them."""

    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        self._settings = settings
        self._socket = sock
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
        }
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "heliograph",
            "gateway",
            env=env,
            pass_fds=(self._socket.fileno(),),
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
    await _wait_for_signal()
    log.info("stopping: flushing pending logs")
    if children is not None:
        await children.stop()
    await running.stop()
    log.info("stopped")


def run_async(main: Any) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not available on Windows
        asyncio.run(main)
        return
    uvloop.run(main)


def run(settings: Settings) -> None:
    run_async(serve_forever(settings))


def run_gateway(settings: Settings) -> None:
    run_async(run_gateway_process(settings))
