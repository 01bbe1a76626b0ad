"""OpenTelemetry ingest end to end: the OpenTelemetry SDK's OTLP exporter, raw OTLP/JSON (gzip or
not, on `/v1/traces` and Helicone's `/v1/trace/log`) and OpenInference's OpenAI instrumentation
around the real OpenAI SDK each log requests found through the API with the right model, tokens,
cost, user, session tree and properties; bad exports are clear 4xx answers that lose nothing."""

from __future__ import annotations

import asyncio
import gzip
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from openinference.instrumentation import using_attributes
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from conftest import Fake, Heliograph
from fake_provider import TEXT
from heliograph.domain.access import KeyPermissions

# gpt-4o-mini: $0.15 / $0.60 per million tokens, cache reads $0.075 (as in test_sdks.py).
# The fake reports 21 prompt (5 cached) and 9 completion (2 reasoning) tokens.
GPT_4O_MINI_NANO_USD = 16 * 150 + 5 * 75 + 9 * 600
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def tracer_provider(hg: Heliograph, key: str | None = None) -> TracerProvider:
    """A provider of its own (never the global one) exporting OTLP/protobuf to the live API."""
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-test"}))
    exporter = OTLPSpanExporter(endpoint=f"{hg.api}/v1/traces", headers=hg.auth(key), timeout=5)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


async def flush(provider: TracerProvider) -> None:
    # The exporter blocks; the API answers on this test's event loop, so export from a thread.
    assert await asyncio.to_thread(provider.force_flush, 10_000)
    await asyncio.to_thread(provider.shutdown)


async def rows_of(hg: Heliograph, count: int, key: str | None = None) -> list[dict[str, Any]]:
    """The organization's requests once there are `count` of them (waits up to 5 s)."""
    deadline = time.monotonic() + 5
    while True:
        status, body = await hg.api_post(
            "/v1/request/query-clickhouse",
            {"filter": "all", "limit": 100, "sort": {"created_at": "asc"}},
            key,
        )
        assert status == 200, body
        if len(body["data"]) >= count or time.monotonic() > deadline:
            assert len(body["data"]) == count, body["data"]
            return list(body["data"])
        await asyncio.sleep(0.05)


async def post(
    hg: Heliograph, path: str, body: bytes, headers: dict[str, str], key: str | None = None
) -> tuple[int, str, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{hg.api}{path}", data=body, headers={**hg.auth(key), **headers}) as resp,
    ):
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


async def test_sdk_exporter_logs_a_gen_ai_span_with_model_tokens_and_cost(
    heliograph: Heliograph,
) -> None:
    provider = tracer_provider(heliograph)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("chat gpt-4o-mini") as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 500,
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": "hi",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": TEXT,
                "gen_ai.completion.0.finish_reason": "stop",
                "gen_ai.completion.0.tool_calls.0.name": "lookup",
                "gen_ai.completion.0.tool_calls.0.arguments": '{"q": 1}',
                "llm.headers": "{'Helicone-Auth': 'Bearer sk-secret'}",
                "http.request.header.authorization": "Bearer sk-secret",
                "traceloop.association.properties.user_id": "alice",
                "traceloop.association.properties.team": "red",
                "deployment.environment": "prod",
            }
        )
        trace_id = format(span.get_span_context().trace_id, "032x")
    await flush(provider)

    [row] = await rows_of(heliograph, 1)
    assert row["provider"] == "OPENAI"
    assert row["model"] == "gpt-4o-mini-2024-07-18"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (1000, 500)
    assert round(row["cost"] * 1e9) == 1000 * 150 + 500 * 600
    assert row["pricing_status"] == "priced"
    assert row["request_user_id"] == "alice"
    assert row["properties"]["team"] == "red"
    assert row["properties"]["otel.deployment.environment"] == "prod"
    assert row["properties"]["otel.service.name"] == "otel-test"
    assert not any("prompt" in key or "completion" in key for key in row["properties"])
    assert "sk-secret" not in str(row["properties"])  # secrets and headers never become properties
    assert not any(key.startswith("otel.telemetry.sdk.") for key in row["properties"])
    assert (row["session_id"], row["session_path"]) == (trace_id, "/chat gpt-4o-mini")
    assert row["response_status"] == 200
    detail = await heliograph.wait_for(row["request_id"])
    assert detail["request_body"]["messages"] == [{"role": "user", "content": "hi"}]
    message = detail["response_body"]["choices"][0]["message"]
    assert message["content"] == TEXT
    assert message["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"q": 1}'}


def otlp_json(spans: list[dict[str, Any]], **resource: str) -> dict[str, Any]:
    resource_attributes = [{"key": k, "value": {"stringValue": v}} for k, v in resource.items()]
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": resource_attributes},
                "scopeSpans": [{"scope": {"name": "manual"}, "spans": spans}],
            }
        ]
    }


def json_span(
    trace_id: str, span_id: str, name: str, parent: str = "", **attributes: Any
) -> dict[str, Any]:
    start = time.time_ns() - 2_000_000_000
    values = []
    for key, value in attributes.items():
        kind = "intValue" if isinstance(value, int) else "stringValue"
        values.append({"key": key.replace("__", "."), "value": {kind: value}})
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 1_250_000_000),
        "attributes": values,
        "status": {},
    }


OPENINFERENCE: dict[str, Any] = {
    "openinference__span__kind": "LLM",
    "llm__provider": "openai",
    "llm__model_name": "gpt-4o-mini",
    "llm__token_count__prompt": 21,
    "llm__token_count__completion": 9,
    "llm__token_count__prompt_details__cache_read": 5,
    "llm__token_count__completion_details__reasoning": 2,
    "llm__input_messages__0__message__role": "user",
    "llm__input_messages__0__message__content": "hi",
}


async def test_gzipped_json_export_keeps_the_trace_tree_and_is_stored_once(
    heliograph: Heliograph,
) -> None:
    trace_id = uuid.uuid4().hex
    spans = [
        json_span(trace_id, "00000000000000a1", "agent", openinference__span__kind="AGENT"),
        # A framework's LLM span around the SDK's: stored once, as the inner call.
        json_span(trace_id, "00000000000000c0", "chain", "00000000000000a1", **OPENINFERENCE),
        json_span(trace_id, "00000000000000b2", "step/one", "00000000000000c0", **OPENINFERENCE),
    ]
    body = gzip.compress(orjson.dumps(otlp_json(spans, **{"service.name": "svc"})))
    headers = {**JSON, "Content-Encoding": "gzip"}
    for _ in range(2):  # an exporter retrying the same export
        status, content_type, answer = await post(heliograph, "/v1/traces", body, headers)
        assert (status, content_type, orjson.loads(answer)) == (200, "application/json", {})

    [row] = await rows_of(heliograph, 1)
    assert (row["model"], row["prompt_tokens"], row["completion_tokens"]) == ("gpt-4o-mini", 16, 7)
    assert (row["prompt_cache_read_tokens"], row["reasoning_tokens"]) == (5, 2)
    assert round(row["cost"] * 1e9) == GPT_4O_MINI_NANO_USD
    assert (row["session_id"], row["session_name"]) == (trace_id, "agent")
    assert row["session_path"] == "/agent/chain/step_one"  # a slash in a name is not a level
    assert row["delay_ms"] == 1250
    assert row["properties"]["otel.service.name"] == "svc"
    await asyncio.sleep(0.3)  # the re-sent export had time to land, and did not
    assert len(await rows_of(heliograph, 1)) == 1


async def test_helicone_trace_log_takes_association_properties_and_counts_refused_spans(
    heliograph: Heliograph,
) -> None:
    trace_id = uuid.uuid4().hex
    helicone = {
        "traceloop__association__properties__Helicone-User-Id": "dora",
        "traceloop__association__properties__Helicone-Session-Id": "sess-h",
        "traceloop__association__properties__Helicone-Property-Plan": "pro",
    }
    good = json_span(trace_id, "00000000000000c3", "llm", **OPENINFERENCE, **helicone)
    bad = json_span(trace_id, "00000000000000d4", "llm", **OPENINFERENCE)
    bad["startTimeUnixNano"] = bad["endTimeUnixNano"] = "0"
    body = orjson.dumps(otlp_json([good, bad]))
    status, _, answer = await post(heliograph, "/v1/trace/log", body, JSON)
    assert status == 200
    partial = orjson.loads(answer)["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "1970" in partial["errorMessage"]

    [row] = await rows_of(heliograph, 1)
    assert (row["request_user_id"], row["session_id"]) == ("dora", "sess-h")
    assert row["properties"]["Plan"] == "pro"


@pytest.fixture
def instrumented() -> Iterator[TracerProvider]:
    """OpenInference's OpenAI instrumentation on a provider of this test's own."""
    provider = TracerProvider()
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield provider
    instrumentor.uninstrument()


async def test_openinference_instrumented_openai_sdk_logs_a_session_tree(
    heliograph: Heliograph, fake: Fake, instrumented: TracerProvider
) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{heliograph.api}/v1/traces", headers=heliograph.auth())
    instrumented.add_span_processor(BatchSpanProcessor(exporter))
    tracer = instrumented.get_tracer("app")
    async with openai.AsyncOpenAI(
        api_key="sk-provider", base_url=f"{fake.origin}/v1", max_retries=0
    ) as client:
        with using_attributes(user_id="carol"), tracer.start_as_current_span("plan"):
            for step in ("draft", "review"):
                with tracer.start_as_current_span(step):
                    completion = await client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": step}]
                    )
                    assert completion.choices[0].message.content == TEXT
    await flush(instrumented)

    rows = await rows_of(heliograph, 2)
    assert {row["session_path"] for row in rows} == {
        "/plan/draft/ChatCompletion",
        "/plan/review/ChatCompletion",
    }
    assert len({row["session_id"] for row in rows}) == 1
    for row in rows:
        assert (row["provider"], row["model"]) == ("OPENAI", "gpt-4o-mini-2024-07-18")
        assert (row["prompt_tokens"], row["completion_tokens"]) == (16, 7)
        assert (row["prompt_cache_read_tokens"], row["reasoning_tokens"]) == (5, 2)
        assert round(row["cost"] * 1e9) == GPT_4O_MINI_NANO_USD
        assert (row["request_user_id"], row["session_name"]) == ("carol", "plan")
    detail = await heliograph.wait_for(rows[0]["request_id"])
    assert detail["request_body"]["messages"][0]["content"] in ("draft", "review")
    assert detail["response_body"]["choices"][0]["message"]["content"] == TEXT


def protobuf_export(**attributes: str) -> ExportTraceServiceRequest:
    export = ExportTraceServiceRequest()
    span = export.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = uuid.uuid4().bytes, b"\x01" * 8, "llm"
    span.start_time_unix_nano = time.time_ns()
    span.end_time_unix_nano = span.start_time_unix_nano + 1_000_000
    pairs = {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": "3", **attributes}
    for key, value in pairs.items():
        span.attributes.append(KeyValue(key=key, value=AnyValue(string_value=value)))
    return export


async def test_bad_exports_are_clear_4xx_and_lose_nothing(heliograph: Heliograph) -> None:
    valid = protobuf_export().SerializeToString()
    bad_utf8 = protobuf_export(note="MARKER").SerializeToString().replace(b"MARKER", b"\xff\xfeMA")
    bomb = gzip.compress(b"\0" * (40 * 1024 * 1024))
    cases = [
        (b"\x0a\xff\xff\xff", PROTOBUF, 400),
        (bad_utf8, PROTOBUF, 400),
        (b"{not json", JSON, 400),
        (b'{"a": "\xff"}', JSON, 400),
        (b"[1, 2]", JSON, 400),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 7}]}]}]}', JSON, 400),
        (valid, {"Content-Type": "text/plain"}, 415),
        (valid, {**PROTOBUF, "Content-Encoding": "br"}, 415),
        (b"not gzip", {**PROTOBUF, "Content-Encoding": "gzip"}, 400),
        (bomb, {**PROTOBUF, "Content-Encoding": "gzip"}, 413),
        (b"x" * (9 * 1024 * 1024), PROTOBUF, 413),
    ]
    for body, headers, expected in cases:
        status, _, answer = await post(heliograph, "/v1/traces", body, headers)
        assert status == expected, (headers, body[:40], answer)
        assert orjson.loads(answer)["error"]

    status, _, _ = await post(heliograph, "/v1/traces", valid, PROTOBUF, key="sk-wrong")
    assert status == 401
    read_only = heliograph.running.services.keys.create_key(
        heliograph.organization_id, "reader", KeyPermissions.READ
    ).api_key
    status, _, _ = await post(heliograph, "/v1/trace/log", valid, PROTOBUF, key=read_only)
    assert status == 403

    status, content_type, answer = await post(heliograph, "/v1/traces", valid, PROTOBUF)
    assert (status, content_type) == (200, "application/x-protobuf")
    assert not ExportTraceServiceResponse.FromString(answer).HasField("partial_success")
    [row] = await rows_of(heliograph, 1)
    assert (row["model"], row["prompt_tokens"]) == ("gpt-4o-mini", 3)


async def test_huge_attribute_counts_are_capped_and_other_organizations_see_nothing(
    heliograph: Heliograph,
) -> None:
    export = protobuf_export(**{f"attr.{i}": "v" * (5000 if i < 10 else 9) for i in range(50_000)})
    status, _, _ = await post(heliograph, "/v1/traces", export.SerializeToString(), PROTOBUF)
    assert status == 200
    [row] = await rows_of(heliograph, 1)
    assert len(row["properties"]) == 64
    assert max(len(value) for value in row["properties"].values()) == 1000

    _, other_key = heliograph.new_organization()
    assert await rows_of(heliograph, 0, key=other_key) == []
    status, _ = await heliograph.api_get(f"/v1/request/{row['request_id']}", key=other_key)
    assert status == 404
