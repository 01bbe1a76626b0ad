"""OpenTelemetry export: stored requests reach a local OTLP/HTTP receiver as GenAI spans, retried
through a 503, never holding up ingest when the endpoint is down or hangs, and a failing
stored-rows listener costs no row."""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from heliograph import server
from heliograph.domain.request_row import RequestRow
from heliograph.ingest.otlp_export import (
    OtlpConfig,
    OtlpExporter,
    _retry_after,
    parse_headers,
    traces_url,
)
from heliograph.ingest.otlp_export_spans import operation_of
from heliograph.settings import InvalidSetting

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
CLAUDE = {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": CHAT["messages"]}
SECRET = "s3cret token"
HEADERS = "Authorization=Bearer%20s3cret%20token, x-scope-orgid=team-a"


@dataclass
class Receiver:
    """An OTLP/HTTP trace receiver: answers `answers` first (then 200), keeps what it took."""

    port: int = 0
    answers: list[int] = field(default_factory=list)
    hang: bool = False
    statuses: list[int] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    posted: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.Response:
        if self.hang:
            await asyncio.sleep(3600)
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        self.headers.append(dict(request.headers))
        status = self.answers.pop(0) if self.answers else 200
        self.statuses.append(status)
        self.posted.set()
        if status != 200:
            return web.Response(status=status)
        for resource_spans in message.resource_spans:
            service = attributes(resource_spans.resource.attributes)["service.name"]
            for scope_spans in resource_spans.scope_spans:
                self.services += [str(service)] * len(scope_spans.spans)
                self.spans += scope_spans.spans
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    def by_request(self) -> dict[str, Span]:
        return {str(attributes(s.attributes)["heliograph.request_id"]): s for s in self.spans}

    async def wait_for(self, request_ids: list[str], timeout_s: float = 10.0) -> dict[str, Span]:
        deadline = time.monotonic() + timeout_s
        while not set(request_ids) <= self.by_request().keys():
            if time.monotonic() > deadline:
                got = sorted(self.by_request())
                raise AssertionError(f"spans for {request_ids} not received in time; got {got}")
            await asyncio.sleep(0.02)
        return self.by_request()


async def start_receiver(receiver: Receiver) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/v1/traces", receiver.handle)
    # Bodies as sent (aiohttp would gunzip them itself), so the test sees the gzip.
    runner = web.AppRunner(app, shutdown_timeout=0.1, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", receiver.port, reuse_address=True)
    await site.start()
    receiver.port = runner.addresses[0][1]
    return runner


def attributes(pairs: Any) -> dict[str, object]:
    return {pair.key: value_of(pair.value) for pair in pairs}


def value_of(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


async def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time allowed")
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    runner = await start_receiver(found)
    yield found
    await runner.cleanup()


async def exporting_to(
    endpoint: str, tmp_path: Path, analytics_dir: Path, fake: Fake
) -> Heliograph:
    settings = heliograph_settings(
        tmp_path, analytics_dir, fake, otlp_endpoint=endpoint, otlp_headers=HEADERS
    )
    return await start_heliograph(settings)


@pytest.fixture
async def exporting(
    receiver: Receiver, tmp_path: Path, analytics_dir: Path, fake: Fake
) -> AsyncIterator[Heliograph]:
    instance = await exporting_to(receiver.endpoint, tmp_path, analytics_dir, fake)
    yield instance
    await instance.running.stop()


async def send(
    hg: Heliograph, path: str, body: dict[str, Any], **headers: str
) -> tuple[str, int, float]:
    """One call through the gateway: its request id, status and seconds taken."""
    request_id = str(uuid.uuid4())
    sent = {**hg.gateway_auth(), "Helicone-Request-Id": request_id, **headers}
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{hg.gateway}{path}", json=body, headers=sent) as response:
            await response.read()
            return request_id, response.status, time.monotonic() - started


async def test_each_stored_request_arrives_as_a_genai_span(
    exporting: Heliograph, receiver: Receiver
) -> None:
    hg = exporting
    plain, _, _ = await send(
        hg,
        "/openai/v1/chat/completions",
        CHAT,
        **{"Helicone-User-Id": "ada", "Helicone-Property-Env": "prod"},
    )
    session = {"Helicone-Session-Id": "s-1", "Helicone-Session-Path": "/plan"}
    streamed, _, _ = await send(
        hg, "/openai/v1/chat/completions", {**CHAT, "stream": True}, **session
    )
    claude, _, _ = await send(hg, "/anthropic/v1/messages", {**CLAUDE, "stream": True}, **session)
    failed, status, _ = await send(
        hg, "/openai/v1/chat/completions", {**CHAT, "model": "error-500"}
    )
    assert status == 500
    spans = await receiver.wait_for([plain, streamed, claude, failed])

    span = spans[plain]
    found = attributes(span.attributes)
    stored = await hg.wait_for(plain)
    assert span.name == "chat gpt-4o-mini"
    assert span.kind == Span.SpanKind.SPAN_KIND_CLIENT
    assert span.trace_id == uuid.UUID(plain).bytes
    assert len(span.span_id) == 8
    assert span.status.code == Status.StatusCode.STATUS_CODE_UNSET
    assert span.end_time_unix_nano >= span.start_time_unix_nano > 0
    assert found["gen_ai.operation.name"] == "chat"
    assert found["gen_ai.provider.name"] == "openai"
    assert found["gen_ai.request.model"] == "gpt-4o-mini"
    assert found["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert found["gen_ai.response.id"] == "chatcmpl-1"
    # As the provider counted them: 21 in (5 of them cached), 9 out (2 of them reasoning).
    assert found["gen_ai.usage.input_tokens"] == 21
    assert found["gen_ai.usage.cache_read.input_tokens"] == 5
    assert found["gen_ai.usage.output_tokens"] == 9
    assert found["heliograph.usage.reasoning_tokens"] == 2
    assert found["heliograph.organization_id"] == hg.organization_id
    assert found["heliograph.status"] == 200
    assert found["server.address"] == "127.0.0.1"
    assert found["user.id"] == "ada"
    assert found["heliograph.property.env"] == "prod"  # names lower-cased, as Helicone keeps them
    assert stored["costUSD"] > 0
    assert found["heliograph.cost_usd"] == pytest.approx(stored["costUSD"])
    assert "session.id" not in found
    assert "heliograph.request.body" not in found  # no bodies unless asked for
    assert "heliograph.response.body" not in found

    one, two = spans[streamed], spans[claude]
    assert one.trace_id == two.trace_id != uuid.UUID(streamed).bytes  # one trace per session
    assert one.span_id != two.span_id
    streamed_found, claude_found = attributes(one.attributes), attributes(two.attributes)
    assert streamed_found["gen_ai.usage.input_tokens"] == 21
    assert streamed_found["gen_ai.usage.output_tokens"] == 9
    assert streamed_found["heliograph.stream"] is True
    assert streamed_found["session.id"] == "s-1"
    assert streamed_found["heliograph.session.path"] == "/plan"
    assert isinstance(streamed_found["heliograph.time_to_first_token_ms"], int)
    assert two.name == "chat claude-sonnet-4-5"
    assert claude_found["gen_ai.provider.name"] == "anthropic"
    assert claude_found["gen_ai.response.id"] == "msg_1"
    assert claude_found["gen_ai.usage.input_tokens"] == 12 + 3 + 2  # with cache reads and writes
    assert claude_found["gen_ai.usage.output_tokens"] == 7

    error = spans[failed]
    assert error.status.code == Status.StatusCode.STATUS_CODE_ERROR
    assert attributes(error.attributes)["error.type"] == "500"

    assert set(receiver.services) == {"heliograph"}
    sent = receiver.headers[0]
    assert sent["Authorization"] == f"Bearer {SECRET}"
    assert sent["x-scope-orgid"] == "team-a"
    assert sent["Content-Type"] == "application/x-protobuf"
    assert sent["Content-Encoding"] == "gzip"
    assert len(receiver.spans) == 4  # each request once


async def test_a_503_is_retried_until_the_span_arrives(
    exporting: Heliograph, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.answers = [503]
    request_id, _, _ = await send(exporting, "/openai/v1/chat/completions", CHAT)
    await receiver.wait_for([request_id])
    assert receiver.statuses == [503, 200]
    said = [r.getMessage() for r in caplog.records if r.name.startswith(("heliograph", "httpx"))]
    assert "the OTLP endpoint answered 503; retrying" in said
    assert not [line for line in said if "/v1/traces" in line]  # no line per export
    assert "s3cret" not in caplog.text  # the headers are never logged
    assert exporting.running.services.otlp is not None
    assert exporting.running.services.otlp.dropped == 0


async def test_an_endpoint_that_hangs_holds_up_neither_gateway_nor_ingest(
    receiver: Receiver, tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    receiver.hang = True
    hg = await exporting_to(receiver.endpoint, tmp_path, analytics_dir, fake)
    try:
        ids = []
        for _ in range(5):  # over more than one export interval: posts are hanging meanwhile
            request_id, status, _ = await send(hg, "/openai/v1/chat/completions", CHAT)
            assert status == 200
            await hg.wait_for(request_id)  # stored within the usual 2 s
            ids.append(request_id)
            await asyncio.sleep(0.25)
        _, _, seconds = await send(hg, "/openai/v1/chat/completions", CHAT)
        assert seconds < 1.0  # the fake answers at once; an export would have waited 10 s
    finally:
        started = time.monotonic()
        await hg.running.stop()
        stopped_in = time.monotonic() - started
    exporter = hg.running.services.otlp
    assert exporter is not None
    assert stopped_in < 8.0  # the export's 5 s shutdown deadline, not its 10 s post timeout
    assert exporter.exported == 0
    assert exporter.dropped == len(ids) + 1
    assert receiver.spans == []


async def test_spans_wait_while_the_endpoint_is_down_and_arrive_when_it_is_back(
    tmp_path: Path, analytics_dir: Path, fake: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="heliograph.otlp")
    later = Receiver(port=free_port())
    hg = await exporting_to(later.endpoint, tmp_path, analytics_dir, fake)
    runner = None
    try:
        request_id, status, _ = await send(hg, "/openai/v1/chat/completions", CHAT)
        assert status == 200
        await hg.wait_for(request_id)  # stored while nothing listens at the endpoint
        await asyncio.wait_for(hg.running.services.writer.idle(), 2.0)
        exporter = hg.running.services.otlp
        assert exporter is not None
        await eventually(lambda: exporter.posts >= 3)  # refused, retried after 0.5 s and 1 s
        runner = await start_receiver(later)
        await later.wait_for([request_id])
        said = [r.getMessage() for r in caplog.records if r.name == "heliograph.otlp"]
        assert said.count("cannot reach the OTLP endpoint (ConnectError); retrying") == 1
        assert "OTLP export works again (0 spans dropped so far)" in said
    finally:
        await hg.running.stop()
        if runner is not None:
            await runner.cleanup()


async def test_a_failing_listener_costs_no_row_and_no_span(
    exporting: Heliograph, receiver: Receiver
) -> None:
    calls: list[int] = []

    def broken(rows: list[RequestRow]) -> None:
        calls.append(len(rows))
        raise RuntimeError("listener bug")

    exporting.running.services.writer.inserter.on_stored.insert(0, broken)
    request_id, _, _ = await send(exporting, "/openai/v1/chat/completions", CHAT)
    stored = await exporting.wait_for(request_id)
    assert stored["request_id"] == request_id
    assert calls
    await receiver.wait_for([request_id])  # the listeners after it are still told
    spool = exporting.running.services.settings.spool_dir
    assert not spool.exists() or list(spool.iterdir()) == []  # the batch was not spooled


def row(request_id: str, **changes: Any) -> RequestRow:
    base: dict[str, Any] = {
        "request_id": request_id,
        "organization_id": str(uuid.uuid4()),
        "request_created_at": "2026-01-02 03:04:05.678",
        "response_created_at": None,
        "provider": "GOOGLE",
        "model": "gemini-2.5-flash",
        "request_model": "gemini-2.5-flash",
        "response_model": "",
        "model_override": "",
        "target_url": "https://generativelanguage.googleapis.com/v1beta",
        "request_path": "/v1beta/models/gemini-2.5-flash:generateContent",
        "method": "POST",
        "status": 200,
        "latency": 120,
        "time_to_first_token": None,
        "is_stream": False,
        "user_id": "",
        "properties": {},
        "session_id": "",
        "session_path": "",
        "session_name": "",
        "prompt_tokens": None,
        "completion_tokens": None,
        "prompt_cache_read_tokens": 0,
        "prompt_cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "prompt_audio_tokens": 0,
        "completion_audio_tokens": 0,
        "cost": 0,
        "pricing_status": "no_usage",
        "cache_enabled": False,
        "request_body_omitted": False,
        "response_body_omitted": False,
        "storage_location": "clickhouse",
        "error": "",
        "attempts": 1,
        "response_body": '{"candidates": [], "responseId": "r-7"}',
    }
    base.update(changes)
    return cast(RequestRow, base)


async def test_a_full_queue_drops_its_oldest_spans(receiver: Receiver) -> None:
    config = OtlpConfig(traces_url(receiver.endpoint), queue_spans=3, interval_s=0.05)
    exporter = OtlpExporter(config)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    exporter.rows_stored([row(ids[0]), row(ids[1])])
    exporter.rows_stored([row(request_id) for request_id in ids[2:]])
    assert exporter.dropped == 2
    exporter.start()
    try:
        spans = await receiver.wait_for(ids[2:])
    finally:
        await asyncio.to_thread(exporter.close)
    assert sorted(spans) == sorted(ids[2:])
    found = attributes(spans[ids[4]].attributes)
    assert spans[ids[4]].name == "generate_content gemini-2.5-flash"
    assert found["gen_ai.provider.name"] == "gcp.gemini"
    assert found["gen_ai.response.id"] == "r-7"
    assert "gen_ai.usage.input_tokens" not in found  # no usage: no count, rather than 0
    assert spans[ids[4]].end_time_unix_nano - spans[ids[4]].start_time_unix_nano == 120_000_000
    assert exporter.exported == 3


async def test_a_row_without_a_span_or_a_refused_batch_costs_only_itself(
    receiver: Receiver,
) -> None:
    exporter = OtlpExporter(OtlpConfig(traces_url(receiver.endpoint), interval_s=0.05))
    receiver.answers = [400]  # not retryable: that batch is dropped, the next goes through
    good, odd, refused = (str(uuid.uuid4()) for _ in range(3))
    exporter.start()
    try:
        exporter.rows_stored([row(refused)])
        await asyncio.wait_for(receiver.posted.wait(), 5.0)
        exporter.rows_stored([row(good), row(odd, request_created_at="yesterday")])
        spans = await receiver.wait_for([good])
    finally:
        await asyncio.to_thread(exporter.close)
    assert receiver.statuses == [400, 200]
    assert list(spans) == [good]
    assert exporter.dropped == 2
    assert exporter.exported == 1


async def test_bodies_are_added_only_when_asked_and_cut_short(receiver: Receiver) -> None:
    config = OtlpConfig(traces_url(receiver.endpoint), interval_s=0.05, include_bodies=True)
    exporter = OtlpExporter(config)
    long, omitted = str(uuid.uuid4()), str(uuid.uuid4())
    exporter.rows_stored([row(long, request_body="é" * 5000), row(omitted, response_body="")])
    exporter.start()
    try:
        spans = await receiver.wait_for([long, omitted])
    finally:
        await asyncio.to_thread(exporter.close)
    found = attributes(spans[long].attributes)
    assert found["heliograph.request.body"] == "é" * 4096
    assert str(found["heliograph.response.body"]).startswith('{"candidates"')
    assert "heliograph.response.body" not in attributes(spans[omitted].attributes)


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://collector:4318", "http://collector:4318/v1/traces"),
        ("https://otlp.example.com/otlp/", "https://otlp.example.com/otlp/v1/traces"),
        ("http://collector:4318/v1/traces", "http://collector:4318/v1/traces"),
    ],
)
def test_the_endpoint_is_a_base_url(endpoint: str, url: str) -> None:
    assert traces_url(endpoint) == url


@pytest.mark.parametrize(
    "endpoint", ["ftp://collector", "collector:4318", "http://", "http://h:99999", "http://h/?a=1"]
)
def test_a_bad_endpoint_is_one_line_naming_the_variable(endpoint: str) -> None:
    with pytest.raises(InvalidSetting, match=r"^HELIOGRAPH_OTLP_ENDPOINT must be an http"):
        traces_url(endpoint)


@pytest.mark.parametrize(
    "raw", ["authorization", "bad name=Bearer s3cret", "x-key=s3cret%0Aevil", "=s3cret"]
)
def test_bad_headers_are_refused_without_showing_their_values(raw: str) -> None:
    with pytest.raises(InvalidSetting, match="HELIOGRAPH_OTLP_HEADERS") as refused:
        parse_headers(raw)
    assert "s3cret" not in str(refused.value)
    assert "\n" not in str(refused.value)


def test_exporting_to_its_own_ingest_is_refused() -> None:
    with pytest.raises(InvalidSetting, match="own OTLP ingest"):
        OtlpConfig.from_settings("http://127.0.0.1:8585/", "", "http://127.0.0.1:8585")
    assert OtlpConfig.from_settings("http://127.0.0.1:4318", "", "http://127.0.0.1:8585")


def test_headers_parse_like_otel_exporter_otlp_headers() -> None:
    assert parse_headers(HEADERS) == {
        "authorization": f"Bearer {SECRET}",
        "x-scope-orgid": "team-a",
    }
    assert parse_headers("") == {}
    assert SECRET not in repr(OtlpConfig.from_settings("http://h", HEADERS))
    assert "url-pw" not in repr(OtlpConfig.from_settings("http://user:url-pw@h", ""))


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/v1/chat/completions", "chat"),
        ("/v1/messages", "chat"),
        ("/v1/responses", "chat"),
        ("/v1/completions", "text_completion"),
        ("/v1/embeddings", "embeddings"),
        ("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "generate_content"),
    ],
)
def test_operation_names(path: str, operation: str) -> None:
    assert operation_of(path) == operation


async def test_a_bad_endpoint_stops_the_start_before_any_store_opens(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    settings = heliograph_settings(tmp_path, analytics_dir, fake, otlp_endpoint="ftp://nowhere")
    with pytest.raises(InvalidSetting, match="HELIOGRAPH_OTLP_ENDPOINT"):
        await server.start(settings)
    assert not (tmp_path / "data" / "app.db").exists()


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2.5", 2.5),
        ("120", 120.0),
        ("NaN", 0.0),  # a NaN wait would compare false everywhere: no backoff at all
        ("nan", 0.0),
        ("inf", 0.0),
        ("-Infinity", 0.0),
        ("-3", 0.0),
        ("0", 0.0),
        ("", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date: the usual backoff
    ],
)
def test_retry_after_is_a_positive_finite_wait_or_none(header: str, seconds: float) -> None:
    assert _retry_after(header) == seconds
