"""`Proxy.handle`: authenticate, resolve the upstream, forward, stream the answer back untouched,
then hand one `RequestRecord` to the sink. Nothing here waits on storage."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from yarl import URL

from heliograph.domain.keys import Identity
from heliograph.domain.record import (
    STATUS_CLIENT_CANCELLED,
    STATUS_UPSTREAM_TIMEOUT,
    STATUS_UPSTREAM_UNREACHABLE,
    RequestRecord,
)
from heliograph.gateway.headers import HeliconeOptions, response_headers, split_headers
from heliograph.gateway.ports import KeyVerifier, RecordSink
from heliograph.gateway.ratelimit import LIMITED_BODY, Limit, RateLimiter
from heliograph.gateway.streams import UsageChunkFilter
from heliograph.gateway.targets import TargetPolicy, TargetRejected
from heliograph.providers.base import Provider
from heliograph.providers.registry import provider_for_origin
from heliograph.telemetry import Telemetry


def error_response(status: int, message: str, code: str, request_id: str = "") -> web.Response:
    body = {"error": {"message": message, "type": "heliograph_error", "code": code}}
    headers = {"Helicone-Id": request_id} if request_id else None
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


@dataclass(slots=True)
class Upstream:
    provider: Provider
    url: str
    path: str
    body: bytes
    headers: list[tuple[str, str]]
    is_stream: bool
    strip_usage: bool


class Proxy:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        targets: TargetPolicy,
        keys: KeyVerifier,
        sink: RecordSink,
        telemetry: Telemetry,
        max_capture_bytes: int,
        limiter: RateLimiter,
    ) -> None:
        self._providers = providers
        self._targets = targets
        self._keys = keys
        self._sink = sink
        self._telemetry = telemetry
        self._max_capture = max_capture_bytes
        self._limiter = limiter
        self._background: set[asyncio.Task[None]] = set()
        self.session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        created_at = datetime.now(UTC)
        forward_headers, options = split_headers(request.headers.items())
        request_id = options.request_id or str(uuid.uuid4())
        identity = await self._keys.verify(options.auth)
        if identity is None:
            return error_response(
                401,
                "missing or invalid Helicone-Auth header (Bearer <key>)",
                "unauthorized",
                request_id,
            )
        try:
            provider, origin = self._resolve(request.match_info["prefix"], options)
        except TargetRejected as rejected:
            return error_response(400, str(rejected), "invalid_target", request_id)
        except KeyError:
            return error_response(404, "unknown provider route", "unknown_provider", request_id)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as too_large:
            return error_response(
                413, too_large.text or "request too large", "too_large", request_id
            )
        upstream = _prepare(provider, origin, request, body, forward_headers)
        record = RequestRecord(
            request_id=request_id,
            organization_id=identity.organization_id,
            created_at=created_at,
            provider=provider.name,
            target_url=origin,
            path=upstream.path,
            method=request.method,
            request_body=body,
            is_stream=upstream.is_stream,
        )
        _apply_options(record, options, identity)
        limit = await self._limiter.check(
            identity.organization_id, options.rate_limit_policy, record.user_id, record.properties
        )
        if limit is not None and not limit.allowed:
            return self._limited(record, limit, started)
        return await self._forward(request, upstream, record, started, limit)

    def _resolve(self, prefix: str, options: HeliconeOptions) -> tuple[Provider, str]:
        if prefix == "gateway":
            origin = self._targets.check(options.target_url)
            return provider_for_origin(self._providers, origin), origin
        provider = self._providers[prefix]
        return provider, provider.origin

    async def _forward(
        self,
        request: web.Request,
        upstream: Upstream,
        record: RequestRecord,
        started: float,
        limit: Limit | None,
    ) -> web.StreamResponse:
        assert self.session is not None, "the gateway's client session is not started"
        waited = 0.0
        sent = time.perf_counter()
        try:
            upstream_response = await self.session.request(
                request.method,
                URL(upstream.url, encoded=True),  # as the client sent it, never re-quoted
                headers=upstream.headers,
                data=upstream.body,
                allow_redirects=False,
                auto_decompress=False,
            )
        except (TimeoutError, aiohttp.ServerTimeoutError) as error:
            return self._fail(
                record, started, STATUS_UPSTREAM_TIMEOUT, f"provider timed out: {error}"
            )
        except aiohttp.ClientError as error:
            return self._fail(
                record, started, STATUS_UPSTREAM_UNREACHABLE, f"provider unreachable: {error}"
            )
        waited += time.perf_counter() - sent
        async with upstream_response:
            response = await self._relay(
                request, upstream, upstream_response, record, started, waited, limit
            )
        if limit is not None and limit.policy is not None and limit.policy.unit == "cents":
            self._in_background(self._limiter.charge(limit, upstream.provider, record))
        return response

    async def _relay(
        self,
        request: web.Request,
        upstream: Upstream,
        upstream_response: aiohttp.ClientResponse,
        record: RequestRecord,
        started: float,
        waited: float,
        limit: Limit | None,
    ) -> web.StreamResponse:
        record.status = upstream_response.status
        record.response_encoding = upstream_response.headers.get("Content-Encoding", "")
        content_type = upstream_response.headers.get("Content-Type", "")
        record.is_stream = record.is_stream or content_type.startswith("text/event-stream")
        strip = upstream.strip_usage and upstream_response.status == 200
        response = web.StreamResponse(status=upstream_response.status)
        for name, value in response_headers(upstream_response.headers.items(), strip):
            response.headers.add(name, value)
        response.headers["Helicone-Id"] = record.request_id
        if limit is not None:
            response.headers.update(limit.headers)
        chunk_filter = UsageChunkFilter() if strip else None
        captured: list[bytes] = []
        captured_bytes = 0
        try:
            await response.prepare(request)
            while True:
                before = time.perf_counter()
                chunk = await upstream_response.content.readany()
                waited += time.perf_counter() - before
                if not chunk:
                    break
                if record.time_to_first_token_ms is None:
                    record.time_to_first_token_ms = _ms(time.perf_counter() - started)
                if captured_bytes < self._max_capture:
                    captured.append(chunk)
                    captured_bytes += len(chunk)
                out = chunk_filter.feed(chunk) if chunk_filter else chunk
                if out:
                    await response.write(out)
            if chunk_filter:
                await response.write(chunk_filter.flush())
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError) as gone:
            upstream_response.close()  # stop the provider generating for nobody
            record.status = STATUS_CLIENT_CANCELLED
            record.error = "client disconnected before the response was complete"
            self._finish(record, captured, started, waited)
            if isinstance(gone, asyncio.CancelledError):
                raise
            return response
        except (TimeoutError, aiohttp.ClientError) as error:
            record.error = f"provider stream failed: {error}"
            self._finish(record, captured, started, waited)
            return response
        self._finish(record, captured, started, waited)
        return response

    def _finish(
        self, record: RequestRecord, captured: list[bytes], started: float, waited: float
    ) -> None:
        elapsed = time.perf_counter() - started
        record.response_body = b"".join(captured)
        record.latency_ms = _ms(elapsed)
        record.response_created_at = datetime.now(UTC)
        self._telemetry.overhead.observe(max(elapsed - waited, 0.0))
        self._telemetry.requests.labels(record.provider, f"{record.status // 100}xx").inc()
        self._sink.put(record)

    def _limited(self, record: RequestRecord, limit: Limit, started: float) -> web.Response:
        """A request over its limit: answered here, never forwarded, still logged."""
        record.status = 429
        record.error = "rate limited by Helicone-RateLimit-Policy"
        record.properties["Helicone-Rate-Limit-Status"] = "bucket_rate_limited"
        self._finish(record, [], started, 0.0)
        headers = {**limit.headers, "Helicone-Id": record.request_id}
        headers["X-Helicone-Error"] = "rate_limited"
        return web.json_response(LIMITED_BODY, status=429, headers=headers, dumps=_dumps)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._background.discard)

    def _fail(
        self, record: RequestRecord, started: float, status: int, message: str
    ) -> web.Response:
        record.status = status
        record.error = message
        self._finish(record, [], started, time.perf_counter() - started)
        code = "upstream_timeout" if status == STATUS_UPSTREAM_TIMEOUT else "upstream_unreachable"
        return error_response(status, message, code, record.request_id)


def _prepare(
    provider: Provider,
    origin: str,
    request: web.Request,
    body: bytes,
    headers: list[tuple[str, str]],
) -> Upstream:
    raw = request.raw_path  # forwarded as sent: still percent-encoded, query string included
    path = raw[raw.find("/", 1) :] if raw.find("/", 1) > 0 else "/"
    tail, _, query = path.partition("?")
    is_stream = any(marker in tail for marker in provider.stream_in_path) or "alt=sse" in query
    strip_usage = False
    if b'"stream"' in body:
        document = _json_object(body)
        is_stream = is_stream or (document is not None and document.get("stream") is True)
        if is_stream and document is not None and _should_ask_usage(provider, tail, document):
            options = document.get("stream_options")
            options = dict(options) if isinstance(options, dict) else {}
            options["include_usage"] = True
            document["stream_options"] = options
            body, strip_usage = orjson.dumps(document), True
            headers = [h for h in headers if h[0].lower() != "accept-encoding"]
            headers.append(("Accept-Encoding", "identity"))  # the filter reads plain SSE
    return Upstream(provider, origin + path, path, body, headers, is_stream, strip_usage)


def _should_ask_usage(provider: Provider, tail: str, document: dict[str, object]) -> bool:
    if not provider.injects_stream_usage or not tail.endswith("completions"):
        return False
    options = document.get("stream_options")
    return not (isinstance(options, dict) and options.get("include_usage") is True)


def _json_object(body: bytes) -> dict[str, object] | None:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _apply_options(record: RequestRecord, options: HeliconeOptions, identity: Identity) -> None:
    record.user_id = options.user_id
    record.properties = options.properties
    record.session_id = options.session_id
    record.session_path = options.session_path
    record.session_name = options.session_name
    record.omit_request = options.omit_request
    record.omit_response = options.omit_response
    record.model_override = options.model_override
    record.api_key_id = identity.key_id


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
