"""`Proxy.handle`: authenticate, plan the upstream call, forward it, stream the answer back
untouched, then hand one `RequestRecord` to the sink. Nothing here waits on storage."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from heliograph.domain.cache import CachedResponse
from heliograph.domain.errors import InvalidInput
from heliograph.domain.keys import Identity
from heliograph.domain.record import (
    STATUS_CLIENT_CANCELLED,
    STATUS_UPSTREAM_TIMEOUT,
    STATUS_UPSTREAM_UNREACHABLE,
    RequestRecord,
)
from heliograph.gateway.attempts import Hop, Outcome, send
from heliograph.gateway.caching import CacheSlot, ResponseCacher
from heliograph.gateway.connections import Incomplete, read_body
from heliograph.gateway.headers import (
    HeliconeOptions,
    proxy_key_in,
    response_headers,
    split_headers,
    with_provider_key,
)
from heliograph.gateway.moderation import FLAGGED_CODE, last_user_message, moderate
from heliograph.gateway.plan import Plan, plan_request
from heliograph.gateway.ports import GatewayPorts, ProxyGrant
from heliograph.gateway.prompts import MARKER as PROMPT_MARKER
from heliograph.gateway.prompts import PromptCompiler
from heliograph.gateway.ratelimit import LIMITED_BODY, Limit, RateLimiter
from heliograph.gateway.routing import RouteOutcome
from heliograph.gateway.streams import UsageChunkFilter
from heliograph.gateway.targets import TargetPolicy
from heliograph.gateway.translating import (
    ChunkFilter,
    attempt_note,
    broken_stream_event,
    hides_usage,
    hop_properties,
    stream_filter,
    translated_headers,
    upstream_error_type,
    whole_answer,
)
from heliograph.gateway.unified import Grant, UnifiedPlanner, read_request
from heliograph.providers.base import Provider
from heliograph.providers.costing import record_cost


def error_response(
    status: int,
    message: str,
    code: str,
    request_id: str = "",
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": "heliograph_error", "code": code}}
    all_headers = {**(headers or {}), **({"Helicone-Id": request_id} if request_id else {})}
    return web.json_response(body, status=status, headers=all_headers, dumps=_dumps)


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


class WrongProvider(InvalidInput):
    """A proxy key used on a route of a provider other than its own."""

    status = 403
    code = "wrong_provider"


CACHE_SAVE_WAIT_S = 2.0
NO_KEY = "missing or invalid Helicone-Auth header (Bearer <key>)"
BAD_PROXY_KEY = "invalid or revoked proxy key"
CLIENT_GONE = "client disconnected before the response was complete"


@dataclass(slots=True)
class Call:
    """One admitted request on its way: what it asked for, where it goes, what will be logged,
    and how long it has waited on the provider (which is not the gateway's overhead)."""

    options: HeliconeOptions
    plan: Plan
    body: bytes
    record: RequestRecord
    started: float
    waited: float = 0.0
    grant: ProxyGrant | None = None  # when a proxy key, not Helicone-Auth, admitted the call


class Proxy:
    def __init__(
        self,
        ports: GatewayPorts,
        session: aiohttp.ClientSession,
        *,
        targets: TargetPolicy,
        max_capture_bytes: int,
        limiter: RateLimiter,
        cacher: ResponseCacher,
        body_timeout_s: float,
        unified: UnifiedPlanner | None = None,
    ) -> None:
        # Unpacked once, so the request path reads each port in one step.
        self._providers = ports.providers
        self._keys = ports.keys
        self._proxy_keys = ports.proxy_keys
        self._prompts = None if ports.prompts is None else PromptCompiler(ports.prompts)
        self._sink = ports.sink
        self._telemetry = ports.telemetry
        self._session = session
        self._targets = targets
        self._max_capture = max_capture_bytes
        self._limiter = limiter
        self._cacher = cacher
        self._body_timeout_s = body_timeout_s
        self._unified = unified
        self._background: set[asyncio.Task[None]] = set()
        self._handling = 0  # requests in flight
        self._quiet = asyncio.Event()  # set while none is
        self._quiet.set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self._handling += 1
        self._quiet.clear()
        try:
            return await self._handle(request)
        finally:
            self._handling -= 1
            if not self._handling:
                self._quiet.set()

    async def list_models(self, request: web.Request) -> web.Response:
        """`GET /v1/models`: what the caller's organization can call through the unified API."""
        auth = request.headers.get("Helicone-Auth") or request.headers.get("Authorization")
        grant = await self._proxy_grant([("Authorization", auth or "")])
        identity = grant.identity if grant is not None else await self._keys.verify(auth)
        if identity is None or self._unified is None:
            return error_response(401, NO_KEY, "unauthorized")
        try:
            models = await self._unified.models(identity.organization_id)
        except InvalidInput as refused:
            return error_response(refused.status, str(refused), refused.code)
        return web.json_response({"object": "list", "data": models}, dumps=_dumps)

    async def drain(self) -> None:
        """Wait for the requests in flight and for the work they started after their response
        (`cents` charges): at shutdown before the buckets close, and in tests."""
        while True:
            await self._quiet.wait()
            if not self._background:
                return
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        call = await self._admit(request)
        if isinstance(call, web.StreamResponse):
            return call
        if call.grant is not None:
            over = await self._limiter.check_proxy(call.grant)
            if over is not None:
                self._answered_here(call, 429, over)
                return error_response(429, over, "proxy_key_limited", call.record.request_id)
        slot = None
        cache = call.options.cache
        if cache is not None:
            call.record.cache_enabled = True
            url = call.plan.targets[0].url
            slot = await self._cacher.lookup(cache, url, call.body, request.headers.items())
            if slot.hit is not None:
                return await self._replay(request, slot, call)
        attribution = call.record.attribution
        limit = await self._limiter.check(
            call.record.organization_id,
            call.options.rate_limit_policy,
            attribution.user_id,
            attribution.properties,
        )
        if limit is not None and not limit.allowed:
            return self._limited(call, limit)
        warnings: dict[str, str] = {}
        if _wants_moderation(call):
            flagged = await self._moderate(call, warnings)
            if flagged is not None:
                return flagged
        return await self._forward(request, call, slot, limit, warnings)

    async def _admit(self, request: web.Request) -> Call | web.StreamResponse:
        """Authenticate and plan the call, or the 4xx that says why not."""
        started = time.perf_counter()
        created_at = datetime.now(UTC)
        forward_headers, options = split_headers(request.headers.items())
        request_id = options.request_id or str(uuid.uuid4())
        unified = _unified_auth(request, forward_headers, options)
        admitted = await self._authenticate(forward_headers, options, request_id)
        if isinstance(admitted, web.Response):
            return admitted
        identity, grant = admitted
        prompt_refused = None
        try:
            if options.refused is not None:
                raise options.refused
            received = await read_body(request, self._body_timeout_s)
            body = received if isinstance(received, bytes) else b""
            if self._prompts is not None and PROMPT_MARKER in body:  # a prompt to compile
                body, prompt_refused = await self._prompts.compile(
                    request.path, identity.organization_id, body, options.attribution
                )
            if unified:
                plan = await self._plan_unified(request.path, identity.organization_id, body, grant)
            else:
                plan = plan_request(
                    request, options, body, forward_headers, self._providers, self._targets
                )
            if options.cache_refused is not None:
                raise options.cache_refused
            if not unified:
                await self._passthrough_credentials(identity.organization_id, plan, grant)
        except web.HTTPRequestEntityTooLarge as too_large:
            message = too_large.text or "request too large"
            return error_response(413, message, "too_large", request_id)
        except InvalidInput as rejected:
            return error_response(rejected.status, str(rejected), rejected.code, request_id)
        except KeyError:
            return error_response(404, "unknown provider route", "unknown_provider", request_id)
        record = _new_record(request_id, identity, created_at, plan, request.method, body, options)
        call = Call(options, plan, body, record, started, grant=grant)
        if isinstance(received, Incomplete):
            return await self._incomplete(request, call, received)
        if prompt_refused is not None:  # recorded with the body as sent, never forwarded
            self._answered_here(call, prompt_refused.status, str(prompt_refused))
            return error_response(
                prompt_refused.status, str(prompt_refused), prompt_refused.code, request_id
            )
        return call

    async def _plan_unified(
        self, path: str, organization_id: str, body: bytes, grant: ProxyGrant | None
    ) -> Plan:
        if self._unified is None:
            raise KeyError("the unified API is not served here")
        request = read_request(path, body)
        held = Grant(grant.provider_name, grant.provider_secret) if grant is not None else None
        return await self._unified.plan(organization_id, request, held)

    async def _passthrough_credentials(
        self, organization_id: str, plan: Plan, grant: ProxyGrant | None
    ) -> None:
        """A Bedrock call signed by the gateway; a proxy key's stored key sent in its place."""
        if plan.provider.prefix != "bedrock":
            if grant is not None:
                self._use_provider_key(plan, grant)
            return
        if self._unified is None:
            raise KeyError("Bedrock is not served here")
        if grant is not None and grant.provider_name != "BEDROCK":
            raise WrongProvider(f"this proxy key is for {grant.provider_name}, not BEDROCK")
        stored = grant.provider_secret if grant is not None else None
        await self._unified.sign_passthrough(organization_id, plan, stored)

    async def _authenticate(
        self, forward_headers: list[tuple[str, str]], options: HeliconeOptions, request_id: str
    ) -> tuple[Identity, ProxyGrant | None] | web.Response:
        """Who is calling (and the proxy key's grant, when one admitted the call), or the 4xx."""
        grant = None
        if options.auth is not None and proxy_key_in(forward_headers) is not None:
            # A Heliograph credential never goes upstream, where the provider would see it.
            message = "send Helicone-Auth or a proxy key, not both"
            return error_response(400, message, "invalid_auth", request_id)
        if options.auth is not None or self._proxy_keys is None:
            identity = await self._keys.verify(options.auth)
        else:
            grant = await self._proxy_grant(forward_headers)
            identity = None if grant is None else grant.identity
        if identity is None:
            message = BAD_PROXY_KEY if proxy_key_in(forward_headers) else NO_KEY
            return error_response(401, message, "unauthorized", request_id)
        if not identity.can_write:
            message = "this key is read-only: logging through the gateway needs a key with w"
            return error_response(403, message, "forbidden", request_id)
        return identity, grant

    async def _proxy_grant(self, headers: list[tuple[str, str]]) -> ProxyGrant | None:
        key = proxy_key_in(headers)
        if key is None or self._proxy_keys is None:
            return None
        return await self._proxy_keys.resolve(key)

    def _use_provider_key(self, plan: Plan, grant: ProxyGrant) -> None:
        """Every target gets the stored provider key in its provider's header, in place of the
        proxy key; a target of another provider is refused."""
        for index, target in enumerate(plan.targets):
            provider = plan.provider_of(index, self._providers)
            if provider.name != grant.provider_name:
                raise WrongProvider(
                    f"this proxy key is for {grant.provider_name} and cannot be used on"
                    f" {provider.name}'s route"
                )
            target.headers[:] = with_provider_key(
                target.headers, grant.provider_name, grant.provider_secret
            )

    async def _incomplete(
        self, request: web.Request, call: Call, why: Incomplete
    ) -> web.StreamResponse:
        """A body that stopped arriving (a 408, then the connection closes) or whose client left
        (status -3): recorded, never forwarded."""
        stalled = why is Incomplete.STALLED
        self._answered_here(call, 408 if stalled else STATUS_CLIENT_CANCELLED, why.value)
        response = error_response(408, why.value, "body_timeout", call.record.request_id)
        if stalled:
            response.force_close()
            await response.prepare(request)
            await response.write_eof()
            # Close now: aiohttp would otherwise linger, reading what is left of the body.
            request.protocol.force_close()
        return response

    async def _moderate(self, call: Call, warnings: dict[str, str]) -> web.Response | None:
        """The 400 for a flagged prompt (recorded, never forwarded), else None."""
        text = last_user_message(call.body)
        if not text:
            return None
        target = call.plan.targets[0]
        verdict = await moderate(self._session, target.origin, target.headers, text)
        if verdict.warning:
            warnings["Helicone-Moderation-Warning"] = verdict.warning
        if not verdict.flagged:
            return None
        call.record.attribution.properties["Helicone-Moderation-Status"] = "flagged"
        error = "prompt flagged for moderation: " + ", ".join(verdict.categories)
        self._answered_here(call, 400, error)
        message = "The prompt was flagged by OpenAI's moderation endpoint"
        failed = {"Helicone-Status": "failed"}  # as Helicone marks a prompt its checks blocked
        return error_response(400, message, FLAGGED_CODE, call.record.request_id, failed)

    def _limited(self, call: Call, limit: Limit) -> web.Response:
        """A request over its limit: answered here, never forwarded, still logged."""
        record = call.record
        record.attribution.properties["Helicone-Rate-Limit-Status"] = "bucket_rate_limited"
        self._answered_here(call, 429, "rate limited by Helicone-RateLimit-Policy")
        headers = {**limit.headers, "Helicone-Id": record.request_id}
        headers["X-Helicone-Error"] = "rate_limited"
        return web.json_response(LIMITED_BODY, status=429, headers=headers, dumps=_dumps)

    async def _forward(
        self,
        request: web.Request,
        call: Call,
        slot: CacheSlot | None,
        limit: Limit | None,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        record, plan = call.record, call.plan
        if limit is not None:
            headers.update(limit.headers)
        if slot is not None and slot.settings.read:
            headers["Helicone-Cache"] = "MISS"
        sent = time.perf_counter()
        observe = self._observer(call) if plan.targets[0].hop is not None else None
        outcome = await send(
            self._session, request.method, plan.targets, call.options.retry, observe
        )
        call.waited = time.perf_counter() - sent
        provider = self._settle(record, plan, outcome, headers)
        if outcome.response is None:
            return self._unreachable(call, outcome, headers)
        saving = None
        if slot is not None and slot.settings.save and outcome.response.status == 200:
            saving = self._cache_saver(slot, outcome.response, call)
        async with outcome.response as upstream_response:
            response = await self._relay(
                request, call, upstream_response, headers, saving, outcome.target.hop
            )
        hop = outcome.target.hop
        if hop is not None and hop.route.deployment is not None and hop.route.deployment.tpm:
            self._count_tokens(hop, provider, record)
        if limit is not None and limit.policy is not None and limit.policy.unit == "cents":
            self._in_background(self._limiter.charge(limit, provider, record))
        if call.grant is not None and call.grant.spend_limit_usd is not None:
            self._in_background(self._limiter.charge_proxy(call.grant, provider, record))
        return response

    def _count_tokens(self, hop: Hop, provider: Provider, record: RequestRecord) -> None:
        """Count an answer's tokens toward its deployment's `tpm` (read only for deployments
        that have one: it parses the answer)."""
        if self._unified is None:
            return
        usage = record_cost(record, provider).usage
        tokens = (usage.input_tokens or 0) + (usage.output_tokens or 0)
        tokens += usage.cache_read_tokens + usage.cache_write_tokens + usage.reasoning_tokens
        self._unified.router.record_tokens(hop.route, tokens)

    def _cache_saver(
        self, slot: CacheSlot, upstream_response: aiohttp.ClientResponse, call: Call
    ) -> Callable[[bytes], Awaitable[None]]:
        """Saves a complete 200 before its last byte goes out, so a client that has the response
        finds it in the cache; a slow cache only delays that last byte by `CACHE_SAVE_WAIT_S`."""
        kept = response_headers(upstream_response.headers.items(), body_changed=True)

        async def save(body: bytes) -> None:
            latency_ms = _ms(time.perf_counter() - call.started)
            entry = CachedResponse(200, kept, [body], latency_ms, call.record.request_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cacher.save(slot, entry), CACHE_SAVE_WAIT_S)

        return save

    def _observer(self, call: Call) -> Callable[[int, int | None, float], None]:
        """Teach the router how each attempt of a unified call ended, and note it for the log."""
        notes: list[str] = []
        router = self._unified.router if self._unified is not None else None

        def observe(index: int, status: int | None, latency_s: float) -> None:
            hop = call.plan.targets[index].hop
            assert hop is not None
            assert router is not None
            router.record(hop.route, RouteOutcome(status, latency_s))
            notes.append(attempt_note(hop, status))
            if len(notes) > 1:  # one attempt says no more than the provider and status columns
                call.record.attribution.properties["Helicone-Attempts"] = ", ".join(notes)

        return observe

    def _settle(
        self, record: RequestRecord, plan: Plan, outcome: Outcome, headers: dict[str, str]
    ) -> Provider:
        """Record which target answered, after how many attempts."""
        hop = outcome.target.hop
        if hop is not None:
            provider = hop.provider
            _note_hop(record, hop, outcome.target.body, headers, len(plan.targets))
        else:
            provider = plan.provider_of(outcome.target_index, self._providers)
        record.provider, record.target_url = provider.name, outcome.target.origin
        record.attempts = outcome.attempts
        if len(plan.targets) > 1:
            headers["helicone-fallback-index"] = str(outcome.target_index)
            record.attribution.properties["Helicone-Fallback-Index"] = str(outcome.target_index)
        return provider

    async def _relay(
        self,
        request: web.Request,
        call: Call,
        upstream_response: aiohttp.ClientResponse,
        headers: dict[str, str],
        before_eof: Callable[[bytes], Awaitable[None]] | None,
        hop: Hop | None = None,
    ) -> web.StreamResponse:
        record = call.record
        record.status = status = upstream_response.status
        record.response_encoding = upstream_response.headers.get("Content-Encoding", "")
        content_type = upstream_response.headers.get("Content-Type", "")
        record.is_stream = record.is_stream or content_type.startswith("text/event-stream")
        translates = hop is not None and hop.translates
        if hop is not None and translates and not (status == 200 and record.is_stream):
            return await self._relay_whole(
                request, call, upstream_response, headers, hop, before_eof
            )
        if hop is not None:
            chunk_filter = stream_filter(hop, status, record.request_id)
        else:
            strip = call.plan.strip_usage and status == 200
            chunk_filter = UsageChunkFilter() if strip else None
        response = web.StreamResponse(status=status)
        upstream_headers = upstream_response.headers.items()
        if translates:
            kept = translated_headers(upstream_headers, "text/event-stream")
        else:
            kept = response_headers(upstream_headers, chunk_filter is not None)
        for name, value in kept:
            response.headers.add(name, value)
        response.headers.update(headers)
        response.headers["Helicone-Id"] = record.request_id
        response.headers["Helicone-Status"] = "success"  # the provider answered, as Helicone says
        # The log keeps what the client received; a translation also keeps the provider's bytes.
        raw = Capture(self._max_capture) if translates else None
        relay = Relay(response, chunk_filter, Capture(self._max_capture), raw, hop)
        if hop is not None and status == 200 and hides_usage(hop):
            relay.hide_usage = UsageChunkFilter()
        return await self._pump(request, call, upstream_response, relay, before_eof)

    async def _pump(
        self,
        request: web.Request,
        call: Call,
        upstream_response: aiohttp.ClientResponse,
        relay: Relay,
        before_eof: Callable[[bytes], Awaitable[None]] | None,
    ) -> web.StreamResponse:
        """Pass the upstream's bytes on as they come, through the relay's filter."""
        record, response, captured = call.record, relay.response, relay.captured
        # With a Content-Length the client is done at the last byte, not at EOF, so a response
        # being cached holds its newest chunk back until the save is over.
        held = b""
        try:
            await response.prepare(request)
            while True:
                before = time.perf_counter()
                chunk = await upstream_response.content.readany()
                call.waited += time.perf_counter() - before
                if not chunk:
                    break
                if record.time_to_first_token_ms is None:
                    record.time_to_first_token_ms = _ms(time.perf_counter() - call.started)
                out = relay.feed(chunk)
                if before_eof is not None:
                    held, out = out, held
                if out:
                    await response.write(out)
            tail = held + relay.flush()
            if before_eof is not None:
                await before_eof(captured.body())
            if tail:
                await response.write(tail)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError) as gone:
            upstream_response.close()  # stop the provider generating for nobody
            self._finish(call, captured.body(), STATUS_CLIENT_CANCELLED, CLIENT_GONE, relay.raw)
            if isinstance(gone, asyncio.CancelledError):
                raise
            return response
        except (TimeoutError, aiohttp.ClientError) as error:
            message = f"provider stream failed: {error}"
            self._finish(call, captured.body(), error=message, raw=relay.raw)
            await _tell_broken(request, relay, message)
            return response
        except Exception as error:  # a bug: still logged, then answered by `guarded`
            upstream_response.close()
            message = f"gateway error relaying the answer: {type(error).__name__}"
            self._finish(call, captured.body(), error=message, raw=relay.raw)
            raise
        self._finish(call, captured.body(), raw=relay.raw)
        return response

    async def _relay_whole(
        self,
        request: web.Request,
        call: Call,
        upstream_response: aiohttp.ClientResponse,
        headers: dict[str, str],
        hop: Hop,
        before_eof: Callable[[bytes], Awaitable[None]] | None,
    ) -> web.StreamResponse:
        """A plain answer or an error in another provider's shape: read whole, translated, sent
        (and cached first, when it is a 200 being cached)."""
        record = call.record
        try:
            before = time.perf_counter()
            raw = await upstream_response.read()
            call.waited += time.perf_counter() - before
        except (TimeoutError, aiohttp.ClientError) as failure:
            message = f"provider answer failed: {failure}"
            self._finish(call, b"", STATUS_UPSTREAM_UNREACHABLE, message)
            code = "upstream_unreachable"
            return error_response(502, message, code, record.request_id, headers)
        record.time_to_first_token_ms = _ms(time.perf_counter() - call.started)
        status, body, error = whole_answer(
            hop,
            upstream_response.status,
            raw,
            upstream_error_type(upstream_response.headers.items()),
            record.request_id,
        )
        kept = translated_headers(upstream_response.headers.items(), "application/json")
        response = web.Response(body=body, status=status, headers=kept)
        response.headers.update(headers)
        response.headers["Helicone-Id"] = record.request_id
        response.headers["Helicone-Status"] = "success"
        if before_eof is not None and status == 200:
            await before_eof(body)
        provider_body = Capture(self._max_capture)
        provider_body.add(raw)
        try:
            await response.prepare(request)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError) as gone:
            self._finish(call, body, STATUS_CLIENT_CANCELLED, CLIENT_GONE, provider_body)
            if isinstance(gone, asyncio.CancelledError):
                raise
            return response
        self._finish(call, body, status, error, provider_body)
        return response

    async def _replay(
        self, request: web.Request, slot: CacheSlot, call: Call
    ) -> web.StreamResponse:
        """Answer from the cache: the stored bytes, as a stream when they were one."""
        record = call.record
        entry = slot.hit
        assert entry is not None
        response = web.StreamResponse(status=entry.status)
        for name, value in entry.headers:
            response.headers.add(name, value)
        response.headers["Helicone-Id"] = record.request_id
        response.headers["Helicone-Status"] = "success"
        response.headers["Helicone-Cache"] = "HIT"
        response.headers["Helicone-Cache-Bucket-Idx"] = str(slot.hit_index)
        response.headers["Helicone-Cache-Latency"] = str(entry.latency_ms)
        record.status, record.attempts = entry.status, 0
        record.response_encoding = response.headers.get("Content-Encoding", "")
        record.is_stream = record.is_stream or response.content_type == "text/event-stream"
        record.cache_reference_id = entry.request_id
        record.cache_original_latency_ms = entry.latency_ms
        hop = call.plan.targets[0].hop
        strip = call.plan.strip_usage or (hop is not None and (hop.ask_usage or hides_usage(hop)))
        chunk_filter = UsageChunkFilter() if strip else None
        record.translated = hop is not None
        status, error = None, ""
        try:
            await response.prepare(request)
            record.time_to_first_token_ms = _ms(time.perf_counter() - call.started)
            for chunk in entry.chunks:
                await response.write(chunk_filter.feed(chunk) if chunk_filter else chunk)
            if chunk_filter:
                await response.write(chunk_filter.flush())
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError) as gone:
            status, error = STATUS_CLIENT_CANCELLED, CLIENT_GONE
            if isinstance(gone, asyncio.CancelledError):
                raise
        finally:
            self._finish(call, b"".join(entry.chunks), status, error)
        return response

    def _unreachable(self, call: Call, outcome: Outcome, headers: dict[str, str]) -> web.Response:
        timed_out = isinstance(outcome.error, TimeoutError | aiohttp.ServerTimeoutError)
        status = STATUS_UPSTREAM_TIMEOUT if timed_out else STATUS_UPSTREAM_UNREACHABLE
        reason = "timed out" if timed_out else "unreachable"
        message = f"provider {reason}: {'; '.join(outcome.errors)}"
        call.waited = time.perf_counter() - call.started  # none of it was the gateway's
        self._finish(call, b"", status, message)
        code = "upstream_timeout" if timed_out else "upstream_unreachable"
        return error_response(status, message, code, call.record.request_id, headers)

    def _answered_here(self, call: Call, status: int, error: str) -> None:
        """Finish a call the gateway answered itself, without sending it anywhere."""
        call.record.attempts = 0
        self._finish(call, b"", status, error)

    def _finish(
        self,
        call: Call,
        body: bytes,
        status: int | None = None,
        error: str = "",
        raw: Capture | None = None,
    ) -> None:
        """Complete the record (the status and error when this exit sets them) and hand it to
        the sink: every exit of every admitted call ends here, once. `raw` holds a translated
        answer's bytes as the provider sent them."""
        record = call.record
        if raw is not None and record.translated:
            record.provider_response_body = raw.body()
        if status is not None:
            record.status = status
        if error:
            record.error = error
        elapsed = time.perf_counter() - call.started
        record.response_body = body
        record.latency_ms = _ms(elapsed)
        record.response_created_at = datetime.now(UTC)
        self._telemetry.overhead.observe(max(elapsed - call.waited, 0.0))
        self._telemetry.requests.labels(record.provider, f"{record.status // 100}xx").inc()
        self._sink.put(record)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._background.discard)


async def _tell_broken(request: web.Request, relay: Relay, message: str) -> None:
    """Make a stream the provider broke off look broken: a unified call ends with an error
    event; a passthrough's connection is dropped, so its client never takes it for complete."""
    if relay.hop is None:
        if request.transport is not None:
            request.transport.abort()
        return
    with contextlib.suppress(ConnectionResetError):
        await relay.response.write(broken_stream_event(relay.hop, message))


def _unified_auth(
    request: web.Request, forward_headers: list[tuple[str, str]], options: HeliconeOptions
) -> bool:
    """Whether `request` is for the unified API (a route of its own), where a Heliograph key
    may come as `Authorization: Bearer`, as Helicone's AI gateway takes it."""
    if "prefix" in request.match_info:
        return False
    if options.auth is None and proxy_key_in(forward_headers) is None:
        options.auth = request.headers.get("Authorization")
    return True


def _note_hop(
    record: RequestRecord, hop: Hop, sent: bytes, headers: dict[str, str], routes: int
) -> None:
    """What the log and the client learn of the route that answered a unified call: which of
    several routes it was, and its deployment."""
    record.attribution.properties.update(hop_properties(hop, routes > 1))
    record.translated = True
    if hop.translates:
        record.provider_request_body = sent
    headers["Helicone-Provider"] = hop.provider.name
    headers["Helicone-Model"] = hop.route.model


def _wants_moderation(call: Call) -> bool:
    return (
        call.options.moderation
        and call.plan.provider.name == "OPENAI"
        and call.plan.path.split("?", 1)[0].endswith("chat/completions")
    )


def _new_record(
    request_id: str,
    identity: Identity,
    created_at: datetime,
    plan: Plan,
    method: str,
    body: bytes,
    options: HeliconeOptions,
) -> RequestRecord:
    return RequestRecord(
        request_id=request_id,
        organization_id=identity.organization_id,
        created_at=created_at,
        provider=plan.provider.name,
        target_url=plan.targets[0].origin,
        path=plan.path,  # ASCII: aiohttp refuses any other byte in a request line
        method=method,
        request_body=body,
        is_stream=plan.is_stream,
        attribution=options.attribution,
        client_request_id=options.request_id is not None,
        api_key_id=identity.key_id,
    )


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass(slots=True)
class Relay:
    """A response on its way out: its filter, the copy the log keeps of what the client got
    and, when the filter translates, of what the provider sent (`raw`)."""

    response: web.StreamResponse
    chunk_filter: ChunkFilter | None
    captured: Capture
    raw: Capture | None
    hop: Hop | None = None
    # A translation's usage chunk, kept in the copy but not sent to a client that did not ask;
    # translations write it when they close, so only the flush is filtered.
    hide_usage: UsageChunkFilter | None = None

    def feed(self, chunk: bytes) -> bytes:
        out = self.chunk_filter.feed(chunk) if self.chunk_filter else chunk
        if self.raw is None:
            self.captured.add(chunk)  # untranslated: the provider's bytes, usage chunk and all
        else:
            self.raw.add(chunk)
            self.captured.add(out)
        return out

    def flush(self) -> bytes:
        last = self.chunk_filter.flush() if self.chunk_filter else b""
        if self.raw is not None:
            self.captured.add(last)
        if self.hide_usage is not None:
            last = self.hide_usage.feed(last) + self.hide_usage.flush()
        return last


class Capture:
    """The copy of a response kept for the log: whole chunks until `limit` bytes are held."""

    def __init__(self, limit: int) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._limit = limit

    def add(self, chunk: bytes) -> None:
        if self._size < self._limit:
            self._chunks.append(chunk)
            self._size += len(chunk)

    def body(self) -> bytes:
        # Kept joined: a cached response asks for its body twice (to save, then to log).
        self._chunks = [b"".join(self._chunks)]
        return self._chunks[0]
