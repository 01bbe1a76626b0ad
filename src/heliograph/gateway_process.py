"""The gateway process: each child of `heliograph serve` (`python -m heliograph.gateway_process`)
and a standalone `heliograph gateway`. It forwards, applies policies, verifies keys against the
app DB (plain SQL, `appdb/lookups.py`), resolves proxy keys to the provider keys they stand for
(`services/proxy_key_cache.py`, opened by `services/vault.py`), compiles the prompts request
bodies name (`services/prompt_cache.py`) and ships its records to the API; `cents` rate limits
charge at the organization's price overrides (`services/price_cache.py`); it imports nothing of
the API, the analytics store, the SQL console or SQLAlchemy, so it stays small (import-linter
and `tests/test_gateway_process.py` check). The gateway's wiring lives here too
(`open_gateway`, which opens and closes every part in one order), and `server.py` reuses it for
the in-process mode."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from heliograph.appdb.lookups import AppDbLookups
from heliograph.appdb.prompt_lookups import PromptLookups
from heliograph.appdb.provider_key_lookups import ProviderKeyLookups
from heliograph.appdb.proxy_lookups import ProxyKeyLookups
from heliograph.gateway.app import HealthCheck, build_gateway_app, upstream_session
from heliograph.gateway.caching import ResponseCacher
from heliograph.gateway.connections import connection_options
from heliograph.gateway.ports import Buckets, GatewayPorts, ResponseCache
from heliograph.gateway.proxy import Proxy
from heliograph.gateway.ratelimit import RateLimiter
from heliograph.gateway.targets import TargetPolicy
from heliograph.gateway.unified import build_planner
from heliograph.ingest.quarantine import Quarantine
from heliograph.ingest.shipper import LogShipper
from heliograph.ingest.spool import Spool
from heliograph.lifeline import wait_for_stop
from heliograph.providers.registry import build_registry
from heliograph.runtime import bind, run_async
from heliograph.services.config_file import read_gateway_config
from heliograph.services.key_cache import CachedKeyVerifier
from heliograph.services.price_cache import PriceCache
from heliograph.services.prompt_cache import PromptCache
from heliograph.services.provider_key_source import ProviderKeySource
from heliograph.services.proxy_key_cache import ProxyKeyCache
from heliograph.services.rule_cache import CachedRuleSource
from heliograph.services.vault import Vault
from heliograph.settings import Settings, load_settings
from heliograph.state.buckets import MemoryBuckets
from heliograph.state.disk_cache import DiskResponseCache
from heliograph.telemetry import Telemetry

log = logging.getLogger("heliograph")
GATEWAY_SOCKET_FD_ENV = "HELIOGRAPH_GATEWAY_SOCKET_FD"
SHUTDOWN_GRACE_S = 10  # in-flight streams get this long to finish before they are cut
SHIP_INTERVAL_MS = 200  # the most a crash of the whole tree can lose, in time
# A thread here (key re-checks, spool files) holds the GIL for up to this long before the event
# loop gets it back (Python waits 5 ms by default before it asks a thread to let go).
GIL_SWITCH_INTERVAL_S = 0.0005
M_ARENA_MAX = -8  # <malloc.h>


def open_buckets(settings: Settings) -> Buckets:
    """Rate-limit buckets in Redis when `HELIOGRAPH_REDIS_URL` is set, else in this process."""
    if settings.redis_url:
        # Imported only when used: the Redis client is 6 MB of every gateway process otherwise.
        from heliograph.state.redis_buckets import RedisBuckets

        return RedisBuckets(settings.redis_url)
    return MemoryBuckets()


def open_response_cache(settings: Settings) -> ResponseCache:
    """Cached responses in Redis when `HELIOGRAPH_REDIS_URL` is set, else in the data dir."""
    if settings.redis_url:
        from heliograph.state.redis_cache import RedisResponseCache

        return RedisResponseCache(settings.redis_url)
    return DiskResponseCache(settings.data_dir / "cache", settings.cache_max_bytes)


@dataclass(frozen=True, slots=True)
class OpenGateway:
    proxy: Proxy
    runner: web.AppRunner
    buckets: Buckets
    cache: ResponseCache


@contextlib.asynccontextmanager
async def open_gateway(
    settings: Settings,
    ports: GatewayPorts,
    sock: socket.socket,
    *,
    stalled: HealthCheck | None = None,
    buckets: Buckets | None = None,
    cache: ResponseCache | None = None,
) -> AsyncIterator[OpenGateway]:
    """The gateway serving on `sock`: its state backends (from the settings unless given), its
    client session, the proxy and the app. On exit, in this order: stop taking requests and let
    the ones in flight finish, wait for the work they left (`cents` charges), close the client
    session, then the cache and the buckets."""
    async with contextlib.AsyncExitStack() as stack:
        buckets = buckets if buckets is not None else open_buckets(settings)
        stack.push_async_callback(buckets.close)
        cache = cache if cache is not None else open_response_cache(settings)
        stack.push_async_callback(cache.close)
        session = await stack.enter_async_context(
            upstream_session(settings.upstream_connect_timeout_s, settings.upstream_timeout_s)
        )
        proxy = build_proxy(settings, ports, session, buckets, cache)
        stack.push_async_callback(proxy.drain)
        runner = await serve_gateway(settings, proxy, ports.telemetry, session, sock, stalled)
        stack.push_async_callback(runner.cleanup)
        yield OpenGateway(proxy, runner, buckets, cache)


def build_proxy(
    settings: Settings,
    ports: GatewayPorts,
    session: aiohttp.ClientSession,
    buckets: Buckets,
    cache: ResponseCache,
) -> Proxy:
    origins = [provider.origin for provider in ports.providers.values() if provider.origin]
    return Proxy(
        ports,
        session,
        targets=TargetPolicy(origins, settings.allowed_target_origins),
        max_capture_bytes=settings.max_request_bytes,
        limiter=RateLimiter(buckets, ports.rules, ports.prices),
        cacher=ResponseCacher(cache, settings.max_stored_body_bytes),
        body_timeout_s=settings.body_timeout_s,
        unified=build_planner(
            ports.providers,
            read_gateway_config(settings.config),
            os.environ,
            ports.provider_keys,
            # A service account may take its tokens from an origin the operator trusts.
            [f"{origin}/token" for origin in settings.allowed_target_origins],
        ),
    )


async def serve_gateway(
    settings: Settings,
    proxy: Proxy,
    telemetry: Telemetry,
    session: aiohttp.ClientSession,
    sock: socket.socket,
    stalled: HealthCheck | None = None,
) -> web.AppRunner:
    app = build_gateway_app(
        proxy,
        telemetry,
        session,
        max_request_bytes=settings.max_request_bytes,
        api_url=settings.resolved_api_url,
        body_timeout_s=settings.body_timeout_s,
        stalled=stalled,
    )
    limits = connection_options(
        settings.header_timeout_s, settings.max_headers, settings.max_header_bytes
    )
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_S, **limits
    )
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


def open_shipper(settings: Settings, telemetry: Telemetry) -> LogShipper:
    quarantine_dir = settings.data_dir / "quarantine" / f"gateway-{settings.gateway_worker}"
    return LogShipper(
        settings.resolved_ingest_url,
        settings.ingest_token,
        Spool(settings.gateway_spool_dir),
        flush_rows=settings.flush_rows,
        flush_interval_ms=min(settings.flush_interval_ms, SHIP_INTERVAL_MS),
        quarantine=Quarantine(quarantine_dir, telemetry.quarantined),
        stall_after_s=settings.stall_after_s,
    )


async def run_gateway_process(settings: Settings) -> None:
    """Proxy, verify keys, ship logs, until SIGTERM or the death of the `serve` that started it."""
    inherited = os.environ.get(GATEWAY_SOCKET_FD_ENV)
    # The port first: when it is taken, nothing has been started that would need stopping.
    if inherited:
        sock = socket.socket(fileno=int(inherited))
    else:
        sock = bind(settings.host, settings.gateway_port)
    telemetry = Telemetry()
    app_db = AppDbLookups(settings.resolved_database_url)
    shipper = open_shipper(settings, telemetry)
    await shipper.start()
    verifier = CachedKeyVerifier(app_db, settings.key_cache_ttl_s)
    rules = CachedRuleSource(app_db, settings.key_cache_ttl_s)
    # Provider keys are decrypted here, under the master key `serve` made or was given.
    vault = Vault.from_settings(settings)
    proxy_keys = ProxyKeyCache(ProxyKeyLookups(app_db), vault, settings.key_cache_ttl_s)
    prices = PriceCache(app_db)  # what `cents` charges are priced at, re-read every 2 s
    # Prompt versions that bodies name, re-checked every 2 s: a deploy reaches here within 5 s.
    prompts = PromptCache(PromptLookups(app_db), settings.key_cache_ttl_s)
    # An organization's own provider keys, which the unified API sends before the operator's.
    own_keys = ProviderKeySource(ProviderKeyLookups(app_db), vault, settings.key_cache_ttl_s)
    providers = build_registry(settings.provider_base_urls, os.environ)
    ports = GatewayPorts(
        providers, verifier, shipper, rules, telemetry, proxy_keys, prices, prompts, own_keys
    )
    try:
        async with open_gateway(settings, ports, sock, stalled=shipper.stalled):
            quiet_garbage_collector()
            await wait_for_stop()
    finally:
        await verifier.close()
        await rules.close()
        prices.close()
        await proxy_keys.close()
        await own_keys.close()
        await prompts.close()
        await shipper.stop()
        app_db.close()


def quiet_garbage_collector() -> None:
    """Move everything alive after start-up out of the collector's sight and collect less often:
    a proxy allocates many short-lived objects, and full collections showed up as p99 spikes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def run_gateway(settings: Settings) -> None:
    tune_interpreter()
    run_async(run_gateway_process(settings))


def tune_interpreter() -> None:
    """Before any thread starts: hand the GIL back to the event loop sooner, and keep malloc to
    two arenas instead of one per thread (glibc allows 8 per core), which the threads that check
    keys and write spool files each grew, about 10 MB under load."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).mallopt(M_ARENA_MAX, 2)


def main() -> None:
    """The entry of a gateway child: settings from the environment `serve` gave it."""
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not settings.ingest_token:
        sys.exit("HELIOGRAPH_INGEST_TOKEN is required to ship logs")
    run_gateway(settings)


if __name__ == "__main__":
    main()
