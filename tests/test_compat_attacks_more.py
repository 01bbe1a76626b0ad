"""More of an attacker's pass over the Helicone-compatibility surface, the classes
`test_compat_attacks.py` leaves out: dot-dot paths in every spelling, private addresses where
a URL is accepted, lone surrogates and bytes that are not UTF-8 on every new route, and JSON
nested ten thousand deep on every new route. Other organizations' ids, no key and a read-only
key on every route are swept by `test_isolation.py`, `test_permissions.py` and
`test_compat_attacks.py`."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from heliograph.analytics.chdb_executor import ChdbExecutor
from heliograph.analytics.store import AnalyticsStore
from heliograph.ingest.otlp_export import OtlpConfig
from heliograph.settings import InvalidSetting
from test_compat_attacks import (
    JSON,
    WINDOW,
    async_log_body,
    call,
    json_span,
    log_async,
    new_routes,
    otlp_json,
    post_export,
    send,
    still_logs,
)
from test_helicone_import import requests, run_import, write_exports

LOG_ROUTES = ("/oai/v1/log", "/anthropic/v1/log", "/googleapis/v1/log", "/custom/v1/log")


# Helpers


async def raw_request(
    origin: str, method: str, target: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, bytes]:
    """One HTTP/1.1 request whose target is sent byte for byte (a client library would
    resolve the `..` before sending it); status and body."""
    host, port = origin.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    head, _, rest = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


async def made_ids(hg: Heliograph) -> tuple[str, str, str]:
    """A logged request, a saved query and a price override of the test's organization."""
    request_id = await log_async(hg, async_log_body())
    await hg.wait_for(request_id)
    status, made = await call(
        hg, "POST", "/v1/helicone-sql/saved-query", {"name": "mine", "sql": "SELECT 1"}
    )
    assert status == 201, made
    override = {"model": "gpt-mine", "input_per_mtok": "1", "output_per_mtok": "2"}
    status, priced = await call(hg, "POST", "/v1/price-overrides", override)
    assert status == 201, priced
    return request_id, str(made["data"][0]["id"]), str(priced["data"]["id"])


def every_route(request_id: str, query_id: str, override_id: str) -> list[tuple[str, str, Any]]:
    """`new_routes` and the Helicone metrics routes and model search the change added."""
    metrics = {"filter": "all", "timeFilter": WINDOW}
    return [
        *new_routes(request_id, query_id, override_id),
        ("POST", "/v1/metrics/averageTokensPerRequest", metrics),
        ("POST", "/v1/metrics/requestCount", {"filter": "all"}),
        ("POST", "/v1/providers", metrics),
        ("POST", "/v1/dashboard/scores/query", {"timeFilter": WINDOW, "userFilter": "all"}),
        ("GET", "/v1/models?q=gpt", None),
    ]


def with_strings(value: Any, change: Callable[[str], str], keys: bool = False) -> Any:
    """`value` with every string value (and every key, if `keys`) passed through `change`."""
    if isinstance(value, dict):
        return {(change(k) if keys else k): with_strings(v, change, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [with_strings(v, change, keys) for v in value]
    if isinstance(value, str):
        return change(value)
    return value


class Listener:
    """A TCP listener that counts the connections it is offered."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Listener:
        async def count(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.close()

        self.server = await asyncio.start_server(count, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/chat/completions"

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


# 1. Dot-dot paths


async def test_dot_dot_paths_on_the_new_routes_are_a_clear_4xx_on_both_ports(
    heliograph: Heliograph, fake: Fake
) -> None:
    request_id, query_id, override_id = await made_ids(heliograph)
    body = orjson.dumps(async_log_body())
    api_headers = {**JSON, **heliograph.auth()}
    gateway_targets = [
        "/oai/v1/../v1/log",
        "/oai/v1/%2e%2e/v1/log",
        "/oai/v1/log/../../openai/v1/chat/completions",
        "/oai/v1/log/..%2f..%2fopenai%2fv1%2fchat%2fcompletions",
        "/custom/v1/log/..%2f..%2fv1/log/batch",
        "/custom/v1/log/%2e%2e%2f%2e%2e%2fv1%2flog",
        "/anthropic/v1/log/..\\..\\v1\\log",
        "/googleapis/v1/log/..%5c..%5cv1%5clog",
        "/oai/v1/log%2f..%2f..%2fv1%2ftraces",
    ]
    api_targets = [
        ("GET", f"/v1/request/{request_id}/../inputs"),
        ("GET", f"/v1/request/{request_id}/%2e%2e/inputs"),
        ("GET", f"/v1/request/{request_id}%2f..%2f..%2faudit/inputs"),
        ("GET", "/v1/request/..%2f..%2fv1%2faudit/inputs"),
        ("PUT", f"/v1/request/{request_id}%2f..%2f{uuid.uuid4()}/property"),
        ("GET", "/v1/helicone-sql/saved-query/..%2f.."),
        ("GET", "/v1/helicone-sql/saved-query/..%2f..%2fsaved-queries"),
        ("GET", f"/v1/helicone-sql/saved-query/{query_id}/..%2f..%2f..%2faudit"),
        ("DELETE", "/v1/helicone-sql/saved-query/..\\..\\saved-queries"),
        ("DELETE", "/v1/price-overrides/..%2f.."),
        ("PATCH", "/v1/price-overrides/%2e%2e%2frecompute"),
        ("DELETE", f"/v1/price-overrides/{override_id}%2f..%2f..%2fapi-keys"),
        ("POST", "/v1/price-overrides/..%5crecompute"),
        ("POST", "/oai/v1/log/..%2f..%2fv1%2ftraces"),
        ("POST", "/v1/traces/..%2f..%2fv1%2flog%2frequest"),
    ]
    before = len(fake.seen.requests)
    answers: list[tuple[str, int, bytes]] = []
    # Both keys, so the gateway's answer is about the path and not the missing Helicone-Auth.
    gateway_headers = {**api_headers, **heliograph.gateway_auth()}
    for target in gateway_targets:
        status, text = await raw_request(heliograph.gateway, "POST", target, gateway_headers, body)
        answers.append((target, status, text))
    for method, target in api_targets:
        payload = b"{}" if method in ("PUT", "PATCH", "POST") else b""
        status, text = await raw_request(heliograph.api, method, target, api_headers, payload)
        answers.append((f"{method} {target}", status, text))
    wrong = [(t, s, x[:160]) for t, s, x in answers if s not in (400, 404, 405)]
    assert wrong == [], wrong
    for target, _, text in answers:
        for secret in (heliograph.api_key, heliograph.organization_id, "SELECT 1", "gpt-mine"):
            assert secret not in text.decode("utf-8", "replace"), (target, secret)
    forwarded = [r["path"] for r in fake.seen.requests[before:]]
    assert forwarded == [], forwarded  # nothing went upstream, least of all a log
    # Nothing was changed by the attempts: the override and the query are as made.
    status, listed = await call(heliograph, "GET", "/v1/price-overrides")
    assert [o["id"] for o in listed["data"]] == [override_id]
    status, queries = await call(heliograph, "GET", "/v1/helicone-sql/saved-queries")
    assert [q["id"] for q in queries["data"]] == [query_id]
    await still_logs(heliograph)


# 2. Private addresses where a URL is accepted


async def test_private_urls_in_logs_and_spans_are_stored_never_fetched(
    heliograph: Heliograph, fake: Fake
) -> None:
    async with Listener() as listener:
        for route in LOG_ROUTES:
            logged = async_log_body()
            logged["providerRequest"]["url"] = listener.url
            for port in (heliograph.api, heliograph.gateway):
                headers = {**JSON, **heliograph.auth()}
                status, answer = await send(
                    f"{port}{route}", data=orjson.dumps(logged), headers=headers
                )
                assert status == 200, (port, route, answer)
                request_id = orjson.loads(answer)["data"]["request_id"]
                await heliograph.wait_for(request_id)
        for address in ("169.254.169.254", "metadata.google.internal", "127.0.0.1", "[::1]"):
            span = json_span(
                uuid.uuid4().hex[:16],
                **{
                    "gen_ai.request.model": "gpt-4o-mini",
                    "server.address": address,
                    "url.full": listener.url,
                    "http.url": f"http://{address}/latest/meta-data/",
                },
            )
            status, answer = await post_export(heliograph, otlp_json(span), JSON)
            assert status == 200, (address, answer)
        await still_logs(heliograph)
        await asyncio.sleep(0.3)  # time for a fetch to happen, if anything were to fetch
        assert listener.connections == 0
    assert all("/v1/chat/completions" in r["path"] for r in fake.seen.requests)


async def test_a_private_target_url_in_an_import_is_stored_never_fetched(
    store: AnalyticsStore, chdb_executor: ChdbExecutor, tmp_path: Path
) -> None:
    write_exports(chdb_executor, requests(3, seed=5), tmp_path)
    lines = (tmp_path / "requests.jsonl").read_bytes().splitlines()
    async with Listener() as listener:
        targets = [listener.url, "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd"]
        rows = []
        for line, target in zip(lines, targets, strict=True):
            row = orjson.loads(line)
            row["target_url"] = target
            rows.append(orjson.dumps(row))
        path = tmp_path / "private.jsonl"
        path.write_bytes(b"\n".join(rows))
        tally = await asyncio.to_thread(run_import, store, str(uuid.uuid4()), path, tmp_path)
        assert tally.imported + tally.refused == 3
        await asyncio.sleep(0.3)
        assert listener.connections == 0


async def test_the_export_endpoint_may_be_private_but_is_a_url_and_keeps_its_secrets(
    tmp_path: Path, analytics_dir: Path, fake: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    """The endpoint is the operator's: a metadata or link-local address is theirs to name. It
    must still be a URL, and neither a password in it nor the export headers are logged."""
    for endpoint in (
        "http://169.254.169.254:4318",
        "http://metadata.google.internal",
        "http://[fd00::1]:4318",
        "http://10.0.0.1:4318/",
    ):
        config = OtlpConfig.from_settings(endpoint, "")
        assert config is not None, endpoint
        assert config.url.endswith("/v1/traces"), endpoint
    for endpoint in ("169.254.169.254", "http://169.254.169.254:notaport", "metadata:4318"):
        with pytest.raises(InvalidSetting):
            OtlpConfig.from_settings(endpoint, "")

    caplog.set_level(logging.DEBUG)
    async with Listener() as listener:  # takes each export's connection and drops it
        port = listener.url.split(":")[2].split("/")[0]
        secret_url = f"http://user:s3cret-pw@127.0.0.1:{port}"
        settings = heliograph_settings(
            tmp_path,
            analytics_dir,
            fake,
            otlp_endpoint=secret_url,
            otlp_headers="Authorization=Bearer%20tok3n",
        )
        hg = await start_heliograph(settings)
        try:
            await still_logs(hg)
            for _ in range(100):  # until the exporter has tried the endpoint
                if listener.connections:
                    break
                await asyncio.sleep(0.05)
            assert listener.connections > 0
        finally:
            await hg.running.stop()
    told = "\n".join(record.getMessage() for record in caplog.records)
    assert "exporting requests as spans" in told
    for secret in ("s3cret-pw", "tok3n"):
        assert secret not in told, secret


# 3. Lone surrogates and bytes that are not UTF-8


async def test_surrogates_and_invalid_utf8_on_every_new_route_are_never_a_5xx(
    heliograph: Heliograph,
) -> None:
    request_id, query_id, override_id = await made_ids(heliograph)
    routes = every_route(request_id, query_id, override_id)
    headers = {**JSON, **heliograph.auth()}
    marker = "\x00MARK\x00"
    failures = []
    for method, path, body in routes:
        template = {} if body is None else body
        bodies = [b'{"\xff": "\xed\xa0\x80"}']
        for keys in (False, True):  # values alone reach the handlers; keys too, the readers
            surrogate = json.dumps(with_strings(template, lambda s: s + "\ud800x\udcff", keys))
            invalid = json.dumps(with_strings(template, lambda s: s + marker, keys))
            invalid = invalid.replace("\\u0000MARK\\u0000", "MARK")
            bad_bytes = invalid.encode().replace(b"MARK", b"\xff\xfe\xc3(\xed\xa0\x80")
            bodies += [surrogate.encode(), bad_bytes]
        joiner = "&" if "?" in path else "?"
        queries = ["", f"{joiner}q=%ff%fe", f"{joiner}q=%ed%a0%80", f"{joiner}%ff=\\ud800"]
        for query in queries:
            for raw in bodies:
                status, text = await raw_request(heliograph.api, method, path + query, headers, raw)
                if status >= 500:
                    failures.append((method, path + query, raw[:60], status, text[:200]))
                # Whatever it answers, an echoed error too, is JSON in valid UTF-8: orjson
                # refuses both raw bad bytes and an escaped lone surrogate.
                orjson.loads(text or b"null")
    for route in LOG_ROUTES:
        raw = orjson.dumps(async_log_body()).replace(b"gpt-4o-mini", b"gpt\xff\xed\xa0\x80", 1)
        status, text = await raw_request(heliograph.gateway, "POST", route, headers, raw)
        if status >= 500:
            failures.append(("POST gateway", route, raw[:60], status, text[:200]))
    assert failures == [], failures
    await still_logs(heliograph)


# 4. JSON nested ten thousand deep


async def test_json_nested_ten_thousand_deep_on_every_new_route_is_a_4xx(
    heliograph: Heliograph,
) -> None:
    request_id, query_id, override_id = await made_ids(heliograph)
    routes = every_route(request_id, query_id, override_id)
    headers = {**JSON, **heliograph.auth()}
    depth = 10_000
    deep_array = b"[" * depth + b"]" * depth
    deep_object = b'{"a":' * depth + b"1" + b"}" * depth
    failures = []
    for method, path, body in routes:
        if body is None:
            candidates = [deep_array]
        else:  # the nesting inside the first field, where a reader must walk into it
            first = next(iter(body)) if isinstance(body, dict) and body else "x"
            candidates = [
                deep_array,
                b'{"' + first.encode() + b'": ' + deep_object + b"}",
            ]
        for raw in candidates:
            status, text = await raw_request(heliograph.api, method, path, headers, raw)
            accepted = body is None and status < 300  # a GET or DELETE may ignore its body
            if not (400 <= status < 500 or accepted):
                failures.append((method, path, raw[:20], status, text[:200]))
    for route in LOG_ROUTES:
        for raw in (deep_array, b'{"providerRequest": ' + deep_object + b"}"):
            status, text = await raw_request(heliograph.gateway, "POST", route, headers, raw)
            if not 400 <= status < 500:
                failures.append(("POST gateway", route, raw[:20], status, text[:200]))
    assert failures == [], failures
    status, _ = await call(heliograph, "GET", "/v1/price-overrides")
    assert status == 200
    await still_logs(heliograph)
