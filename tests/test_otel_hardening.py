"""OTLP ingest and export under hostile input: attributes that may hold credentials never become
properties or body fields, out-of-range counts and timings refuse one span (never the export),
gzip member floods and oversized JSON are quick 4xx answers, and the export loop guard knows
this Heliograph under any spelling."""

from __future__ import annotations

import asyncio
import gzip
import time
import uuid
from typing import Any

import aiohttp
import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ResourceValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from conftest import Heliograph
from heliograph.ingest.otlp import (
    MAX_GZIP_MEMBERS,
    ExportTooLarge,
    InvalidExport,
    gunzip,
    records_from_export,
)
from heliograph.ingest.otlp_dialects import secret
from heliograph.ingest.otlp_export import OtlpConfig, same_endpoint
from heliograph.settings import InvalidSetting

JSON = {"Content-Type": "application/json"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON_TYPE = "application/json"
MIB = 1024 * 1024
INT32_MAX = 2**31 - 1


def span(span_id: int, **attributes: Any) -> dict[str, Any]:
    """An OTLP/JSON span; a dict value is an AnyValue as given, an int an intValue."""
    start = time.time_ns() - 2_000_000_000
    values = [
        {
            "key": key,
            "value": value
            if isinstance(value, dict)
            else {"intValue": value}
            if isinstance(value, int)
            else {"stringValue": value},
        }
        for key, value in attributes.items()
    ]
    return {
        "traceId": uuid.uuid4().hex,
        "spanId": f"{span_id:016x}",
        "name": "llm",
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 1_000_000),
        "attributes": values,
    }


def export(*spans: dict[str, Any], resource: dict[str, str] | None = None) -> bytes:
    attributes = [{"key": k, "value": {"stringValue": v}} for k, v in (resource or {}).items()]
    return orjson.dumps(
        {
            "resourceSpans": [
                {"resource": {"attributes": attributes}, "scopeSpans": [{"spans": list(spans)}]}
            ]
        }
    )


async def post(
    hg: Heliograph, body: bytes, headers: dict[str, str], timeout_s: float = 30
) -> tuple[int, Any]:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(f"{hg.api}/v1/traces", data=body, headers={**hg.auth(), **headers}) as resp,
    ):
        raw = await resp.read()
        return resp.status, orjson.loads(raw) if resp.content_type == JSON_TYPE else raw


async def rows_by_model(hg: Heliograph, count: int) -> dict[str, dict[str, Any]]:
    """The organization's requests by model, once there are `count` of them (up to 5 s)."""
    deadline = time.monotonic() + 5
    while True:
        body = {"filter": "all", "limit": 100, "sort": {"created_at": "asc"}}
        status, answer = await hg.api_post("/v1/request/query-clickhouse", body)
        assert status == 200, answer
        if len(answer["data"]) >= count or time.monotonic() > deadline:
            assert len(answer["data"]) == count, answer["data"]
            return {row["model"]: row for row in answer["data"]}
        await asyncio.sleep(0.05)


# Secrets


SECRETS = {
    "session.token": "SECRET-1",
    "user.accessToken": "SECRET-2",
    "http.request.header.x-api-key": "SECRET-3",
    "db.password": "SECRET-4",
    "auth.bearer": "SECRET-5",
    "http.cookie": "SECRET-6",
    "Authorization": "SECRET-7",
    "oauth.client_secret": "SECRET-8",
    "app.note": "Bearer SECRET-9-abcdefghijkl",
    "traceloop.association.properties.refresh_token": "SECRET-10",
}
KEPT = {
    "deployment.environment": "prod",
    "plan": "Basic tier",  # reads like a header's scheme, but is not a credential
    "gen_ai.request.max_tokens": 256,  # says token, counts them
    "traceloop.association.properties.team": "blue",
    "traceloop.association.properties.Helicone-Property-Auth-Flow": "sso",  # named on purpose
}


def test_the_secret_word_list_is_a_deny_list_with_token_counts_allowed() -> None:
    for key, value in SECRETS.items():
        assert secret(key, value), key
    for key in ("gen_ai.usage.total_tokens", "llm.token_count.total", "max_tokens", "author"):
        assert not secret(key, 1), key
    assert not secret("plan", "Basic tier")
    assert secret("note", "basic dXNlcjpwYXNzd29yZA==")


async def test_secret_looking_attributes_never_become_properties_or_body_fields(
    heliograph: Heliograph,
) -> None:
    parameters = {"temperature": 0.2, "api_key": "SECRET-11", "max_tokens": 9}
    call = span(
        1,
        **{
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 3,
            "llm.invocation_parameters": orjson.dumps(parameters).decode(),
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "hi",
            **SECRETS,
            **KEPT,
        },
    )
    body = export(call, resource={"service.name": "svc", "service.api_key": "SECRET-12"})
    status, answer = await post(heliograph, body, JSON)
    assert status == 200, answer
    assert "partialSuccess" not in answer
    row = (await rows_by_model(heliograph, 1))["gpt-4o-mini"]
    properties = row["properties"]
    assert "SECRET" not in orjson.dumps(properties).decode(), properties
    assert properties["otel.deployment.environment"] == "prod"
    assert properties["otel.plan"] == "Basic tier"
    assert properties["otel.gen_ai.request.max_tokens"] == "256"
    assert properties["team"] == "blue"
    assert properties["Auth-Flow"] == "sso"
    assert properties["otel.service.name"] == "svc"
    assert row["prompt_tokens"] == 3
    detail = await heliograph.wait_for(row["request_id"])
    sent = detail["request_body"]
    assert "SECRET" not in orjson.dumps(sent).decode()
    assert (sent["temperature"], sent["max_tokens"]) == (0.2, 9)
    assert sent["messages"] == [{"role": "user", "content": "hi"}]


# Values that cannot be stored


async def test_out_of_range_counts_and_timings_refuse_only_their_span(
    heliograph: Heliograph,
) -> None:
    huge = span(1, **{"gen_ai.request.model": "huge", "gen_ai.usage.input_tokens": INT32_MAX + 1})
    int64 = span(2, **{"gen_ai.request.model": "int64", "gen_ai.usage.output_tokens": 2**63 - 1})
    edge = span(
        3,
        **{
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": INT32_MAX,
            "gen_ai.response.time_to_first_chunk": {"doubleValue": 1e300},
        },
    )
    infinite = span(
        4,
        **{
            "gen_ai.request.model": "infinite",
            "gen_ai.response.time_to_first_chunk": {"doubleValue": "Infinity"},
            "gen_ai.server.time_to_first_token": {"doubleValue": "NaN"},
        },
    )
    status, answer = await post(heliograph, export(huge, int64, edge, infinite), JSON)
    assert status == 200, answer
    assert answer["partialSuccess"]["rejectedSpans"] == "2"
    assert str(INT32_MAX) in answer["partialSuccess"]["errorMessage"]
    rows = await rows_by_model(heliograph, 2)
    assert set(rows) == {"gpt-4o", "infinite"}
    assert rows["gpt-4o"]["prompt_tokens"] == INT32_MAX
    assert 0 < rows["gpt-4o"]["cost"] < 2**64 / 1e9
    assert rows["gpt-4o"]["time_to_first_token"] == INT32_MAX
    assert rows["infinite"]["time_to_first_token"] in (None, 0)


# Decompression


def test_gunzip_walks_members_across_read_boundaries_and_counts_them() -> None:
    data = bytes(range(256)) * 2000  # 512 KB: several 64 KiB reads per member
    members = b"".join(gzip.compress(data[i::3]) for i in range(3))
    assert gunzip(members, 10 * MIB) == b"".join(data[i::3] for i in range(3))
    assert gunzip(gzip.compress(b"") * MAX_GZIP_MEMBERS, MIB) == b""
    with pytest.raises(InvalidExport, match="members"):
        gunzip(gzip.compress(b"") * (MAX_GZIP_MEMBERS + 1), MIB)
    with pytest.raises(InvalidExport, match="truncated"):
        gunzip(members[:-5], 10 * MIB)
    with pytest.raises(InvalidExport, match="not valid gzip"):
        gunzip(members + b"junk", 10 * MIB)
    with pytest.raises(ExportTooLarge):
        gunzip(gzip.compress(data), len(data) - 1)
    assert gunzip(gzip.compress(data), len(data)) == data


async def test_gzip_floods_and_large_json_are_quick_4xx_and_lose_nothing(
    heliograph: Heliograph,
) -> None:
    call = export(span(1, **{"gen_ai.request.model": "kept"}))
    thirds = [call[: len(call) // 3], call[len(call) // 3 : -9], call[-9:]]
    split = b"".join(gzip.compress(part) for part in thirds)
    status, answer = await post(heliograph, split, {**JSON, "Content-Encoding": "gzip"})
    assert status == 200, answer

    flood = gzip.compress(b"") * (3 * MIB // 20)
    started = time.monotonic()
    status, answer = await post(heliograph, flood, {**PROTOBUF, "Content-Encoding": "gzip"}, 5)
    assert (status, time.monotonic() - started < 2) == (400, True), answer
    assert str(MAX_GZIP_MEMBERS) in answer["error"]

    # 9 MiB of JSON, gzipped to a few KB: past the JSON cap, refused before it is parsed.
    padded = {"resourceSpans": [], "pad": "x" * (9 * MIB)}
    started = time.monotonic()
    body = gzip.compress(orjson.dumps(padded))
    status, answer = await post(heliograph, body, {**JSON, "Content-Encoding": "gzip"}, 5)
    assert (status, time.monotonic() - started < 2) == (413, True), answer

    # Protobuf keeps its larger cap: the same size decompressed is taken.
    large = span(2, **{"gen_ai.request.model": "large", "big": "y" * (9 * MIB)})
    protobuf = _protobuf(large)
    assert len(protobuf) > 9 * MIB
    status, _ = await post(
        heliograph, gzip.compress(protobuf), {**PROTOBUF, "Content-Encoding": "gzip"}
    )
    assert status == 200
    assert set(await rows_by_model(heliograph, 2)) == {"kept", "large"}


def _protobuf(json_span: dict[str, Any]) -> bytes:
    json_span = {**json_span, "traceId": "AAAAAAAAAAAAAAAAAAAAAQ==", "spanId": "AAAAAAAAAAI="}
    message = json_format.ParseDict(
        {"resourceSpans": [{"scopeSpans": [{"spans": [json_span]}]}]}, ExportTraceServiceRequest()
    )
    return bytes(message.SerializeToString())


async def test_concurrent_exports_wait_their_turn_while_other_routes_answer(
    heliograph: Heliograph,
) -> None:
    bodies = [
        export(span(i, **{"gen_ai.request.model": f"m{i}", "pad": "z" * MIB})) for i in range(5)
    ]
    exports = [post(heliograph, body, JSON) for body in bodies]
    answers = await asyncio.gather(*exports, heliograph.api_get("/healthz"))
    assert [status for status, _ in answers] == [200] * 6, answers[-1]
    assert set(await rows_by_model(heliograph, 5)) == {f"m{i}" for i in range(5)}


# The export loop guard


@pytest.mark.parametrize(
    ("endpoint", "own"),
    [
        ("http://127.0.0.1:8585", "http://0.0.0.0:8585"),
        ("http://localhost:8585/v1/traces/", "http://127.0.0.1:8585"),
        ("http://[::1]:8585", "http://localhost:8585"),
        ("http://[::ffff:127.0.0.1]:8585", "http://[::]:8585"),
        ("http://127.9.9.9:8585", "http://127.0.0.1:8585"),
        ("HTTP://API.Example.COM:80/", "http://api.example.com"),
        ("https://api.example.com./base", "https://api.example.com:443/base/"),
    ],
)
def test_the_export_endpoint_cannot_name_this_heliograph(endpoint: str, own: str) -> None:
    with pytest.raises(InvalidSetting, match="own OTLP ingest"):
        OtlpConfig.from_settings(endpoint, "", own)


@pytest.mark.parametrize(
    ("endpoint", "own"),
    [
        ("http://127.0.0.1:8586", "http://127.0.0.1:8585"),
        ("https://127.0.0.1:8585", "http://127.0.0.1:8585"),
        ("http://127.0.0.1:8585/collector", "http://127.0.0.1:8585"),
        ("http://collector:8585", "http://0.0.0.0:8585"),
        ("http://localhost:8585", "http://api.example.com:8585"),  # own is not on loopback
        ("http://10.0.0.1:8585", "http://127.0.0.1:8585"),
    ],
)
def test_other_endpoints_are_taken(endpoint: str, own: str) -> None:
    config = OtlpConfig.from_settings(endpoint, "", own)
    assert config is not None
    assert not same_endpoint(config.url, own + "/v1/traces")


def test_many_filtered_resource_attributes_are_read_once_not_once_per_span() -> None:
    """4,096 resource attributes that are never properties (secrets, bodies, SDK details) and
    5,000 spans: each attribute is checked once for the resource, not once per span (which took
    13.7 s), and every span still gets the resource's one kept attribute as a property."""
    kept = {"deployment.environment": "prod"}  # first: a resource's first 4,096 are read
    filtered = {f"telemetry.sdk.extra{i}": "x" for i in range(2048)}
    filtered |= {f"vendor.api_key{i}": "sk-hidden" for i in range(2047)}
    resource = ResourceValue(
        attributes=[
            KeyValue(key=key, value=AnyValue(string_value=value))
            for key, value in {**kept, **filtered}.items()
        ]
    )
    start_ns = time.time_ns() - 2_000_000_000
    spans = [
        Span(
            trace_id=uuid.uuid4().bytes,
            span_id=i.to_bytes(8, "big"),
            name="llm",
            start_time_unix_nano=start_ns,
            end_time_unix_nano=start_ns + 1_000_000,
            attributes=[
                KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o")),
                KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=3)),
            ],
        )
        for i in range(1, 5_001)
    ]
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
    )
    assert len(gzip.compress(request.SerializeToString())) < 200_000  # a small upload

    started = time.perf_counter()
    converted = records_from_export(request, str(uuid.uuid4()), "key")
    elapsed = time.perf_counter() - started

    assert len(converted.records) == 5_000
    assert not converted.rejected
    for record in converted.records:
        assert record.attribution.properties == {"otel.deployment.environment": "prod"}
    assert elapsed < 1.0, f"{elapsed:.2f} s to convert the export"
