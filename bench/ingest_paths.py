"""Ingest-path benchmark: the ways requests come in besides the gateway, measured in one run
against the gateway itself as the baseline (issue 12).

One `heliograph serve` (one gateway worker, embedded stores, a temporary data directory) and the
fake provider (`tests/fake_provider`), both on loopback. In turn, each at `--concurrency`:
1. N chat completions through the gateway to the fake provider (the baseline);
2. the same N calls logged through Helicone's async log, `POST /oai/v1/log`, as `helicone-helpers`
   sends it (to the gateway port, its default, then to the API port);
3. the same N calls as Helicone's log message, `POST /v1/log/request`;
4. N OTLP GenAI spans in exports of 100 spans (protobuf, gzip) to `POST /v1/traces`;
each with requests (or spans) per second, p50/p99 latency per HTTP request, the time from the
last answer until the API counts every row (its writer flushes every second, so this lag is up
to a second by design), and from the first request until then. Then `serve` is stopped and
5. `heliograph import helicone` imports a generated 50,000-row export (Helicone's exact layout,
written by ClickHouse as `tests/test_helicone_import.py` writes it): rows/s and peak RSS.
Prints a table (each figure with its ratio to the baseline), writes
`bench/results/ingest_paths.json`.

    python bench/ingest_paths.py [--requests 10000] [--import-rows 50000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
# The fake provider and the Helicone export generator live with the tests.
sys.path.insert(0, str(TESTS))

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}]}
SPANS_PER_EXPORT = 100
WARM_UP = 20  # requests per path before timing (connections, imports, first batches)
OTLP_WARM_UP = 2  # exports
QUERYABLE_TIMEOUT_S = 120.0
PHASE_TIMEOUT_S = 300.0
FAKE_PROVIDER = """
import asyncio, sys
from fake_provider import start_fake

async def main() -> None:
    await start_fake(int(sys.argv[1]))
    await asyncio.Event().wait()

asyncio.run(main())
"""

Send = Callable[[aiohttp.ClientSession, int], Awaitable[None]]


@dataclass
class Phase:
    """One path's figures: `units` (requests or spans) per second, latency per HTTP request."""

    name: str
    unit: str
    units: int
    http_requests: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    queryable_after_s: float = 0.0

    def figures(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        return {
            "unit": self.unit,
            "units": self.units,
            "http_requests": self.http_requests,
            "seconds": round(self.seconds, 3),
            "per_s": round(self.units / self.seconds, 1),
            "p50_ms": round(ordered[len(ordered) // 2], 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
            "queryable_after_s": round(self.queryable_after_s, 3),
            "all_queryable_s": round(self.seconds + self.queryable_after_s, 3),
        }


@dataclass
class Target:
    gateway: str
    api: str
    key: str
    organization_id: str
    answer: dict[str, Any]  # what the fake provider answers CHAT with

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}


# Starting and stopping what the benchmark runs.


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up within {timeout_s:.0f} s") from None
            time.sleep(0.1)


def environment(data_dir: Path, provider_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
        "HELIOGRAPH_DATA_DIR": str(data_dir),
        "HELIOGRAPH_LOG_LEVEL": "warning",
        "HELIOGRAPH_OPENAI_BASE_URL": f"http://127.0.0.1:{provider_port}",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }


def start_fake_provider(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-c", FAKE_PROVIDER, str(port)], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            fake_answer(port)
            return process
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("the fake provider did not come up")


def fake_answer(port: int) -> dict[str, Any]:
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=json.dumps(CHAT).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer sk-fake"},
    )
    with urllib.request.urlopen(request, timeout=2) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def initialise(env: dict[str, str]) -> tuple[str, str]:
    """A fresh organization and its key, from `heliograph init --json`."""
    init = subprocess.run(
        [sys.executable, "-m", "heliograph", "init", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    created = json.loads(init.stdout.splitlines()[-1])
    return str(created["organization_id"]), str(created["api_key"])


def start_serve(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int, int]:
    gateway_port, api_port = free_port(), free_port()
    serve = subprocess.Popen(
        [
            *(sys.executable, "-m", "heliograph", "serve"),
            *("--gateway-port", str(gateway_port), "--api-port", str(api_port)),
            *("--gateway-workers", "1"),
        ],
        env=env,
    )
    wait_for(f"http://127.0.0.1:{api_port}/healthz", serve)
    wait_for(f"http://127.0.0.1:{gateway_port}/healthz", serve)
    return serve, gateway_port, api_port


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 60 s; only ever a process this benchmark started."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# Sending load and waiting for rows.


async def load(session: aiohttp.ClientSession, count: int, concurrency: int, send: Send) -> Phase:
    """`count` calls of `send`, `concurrency` at a time; each call's latency in ms."""
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index, next_index = next_index, next_index + 1
            started = time.perf_counter()
            await send(session, index)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    async with asyncio.timeout(PHASE_TIMEOUT_S):
        await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return Phase("", "requests", count, count, time.perf_counter() - started, latencies)


async def post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> bytes:
    async with session.post(url, data=body, headers=headers) as response:
        answer = await response.read()
        if not 200 <= response.status < 300:
            raise RuntimeError(f"{url}: {response.status} {answer[:300]!r}")
        return answer


async def counted(session: aiohttp.ClientSession, target: Target) -> int:
    answer = await post(
        session, f"{target.api}/v1/request/count/query", b'{"filter": "all"}', target.auth()
    )
    return int(json.loads(answer)["data"])


async def queryable_after(session: aiohttp.ClientSession, target: Target, expected: int) -> float:
    """Seconds until the API counts `expected` rows (polled every 50 ms)."""
    started = time.perf_counter()
    while (found := await counted(session, target)) < expected:
        if time.perf_counter() - started > QUERYABLE_TIMEOUT_S:
            raise RuntimeError(f"{found} of {expected} rows after {QUERYABLE_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.05)
    if found > expected:
        raise RuntimeError(f"{found} rows where {expected} were sent: a path stored twice")
    return time.perf_counter() - started


# The paths: each a function from a call's index to one HTTP request.


def through_gateway(target: Target) -> Send:
    url = f"{target.gateway}/openai/v1/chat/completions"
    body = json.dumps(CHAT).encode()
    headers = {
        "Helicone-Auth": f"Bearer {target.key}",
        "Authorization": "Bearer sk-bench",
        "Content-Type": "application/json",
    }

    async def send(session: aiohttp.ClientSession, index: int) -> None:
        await post(session, url, body, headers)

    return send


def async_log_body(answer: dict[str, Any]) -> bytes:
    """What `helicone_helpers.HeliconeManualLogger.send_log` posts for an OpenAI call."""
    now = time.time()
    started, ended = now - 0.25, now

    def moment(at: float) -> dict[str, int]:
        return {"seconds": int(at), "milliseconds": int((at - int(at)) * 1000)}

    return json.dumps(
        {
            "providerRequest": {"url": "custom-model-nopath", "json": CHAT, "meta": {}},
            "providerResponse": {
                "headers": {},
                "status": 200,
                "json": {**answer, "_type": "unknown", "toolName": "unknown"},
                "textBody": None,
            },
            "timing": {
                "startTime": moment(started),
                "endTime": moment(ended),
                "timeToFirstToken": None,
            },
        }
    ).encode()


def through_async_log(target: Target, base: str) -> Send:
    url = f"{base}/oai/v1/log"
    body = async_log_body(target.answer)

    async def send(session: aiohttp.ClientSession, index: int) -> None:
        await post(session, url, body, target.auth())

    return send


def log_message(answer: dict[str, Any]) -> bytes:
    """Helicone's log message for one call, bodies riding along, with an id of its own."""
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    return json.dumps(
        {
            "authorization": "ignored: the API key decides the organization",
            "heliconeMeta": {},
            "log": {
                "request": {
                    "id": request_id,
                    "userId": "bench",
                    "properties": {"path": "log-message"},
                    "targetUrl": "https://api.openai.com",
                    "provider": "OPENAI",
                    "path": "/v1/chat/completions",
                    "requestCreatedAt": now.isoformat(),
                    "isStream": False,
                    "body": CHAT,
                },
                "response": {
                    "id": request_id,
                    "status": 200,
                    "delayMs": 250,
                    "responseCreatedAt": (now + timedelta(milliseconds=250)).isoformat(),
                    "body": answer,
                },
            },
        }
    ).encode()


def through_log_message(target: Target, count: int) -> Send:
    url = f"{target.api}/v1/log/request"
    bodies = [log_message(target.answer) for _ in range(count)]

    async def send(session: aiohttp.ClientSession, index: int) -> None:
        await post(session, url, bodies[index], target.auth())

    return send


def otlp_export(spans: int, rng: random.Random) -> bytes:
    """One gzipped OTLP/protobuf export of `spans` GenAI chat spans, ten to a trace."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    def attribute(key: str, value: str | int) -> KeyValue:
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=value))

    gen_ai: dict[str, str | int] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 21,
        "gen_ai.usage.output_tokens": 9,
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "Say hi",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "Hi there!",
        "gen_ai.completion.0.finish_reason": "stop",
    }
    attributes = [attribute(key, value) for key, value in gen_ai.items()]
    export = ExportTraceServiceRequest()
    resource_spans = export.resource_spans.add()
    resource_spans.resource.attributes.append(attribute("service.name", "bench"))
    scope_spans = resource_spans.scope_spans.add()
    now_ns = time.time_ns()
    trace_id = b""
    for number in range(spans):
        if number % 10 == 0:
            trace_id = rng.randbytes(16)
        scope_spans.spans.append(
            Span(
                trace_id=trace_id,
                span_id=rng.randbytes(8),
                name="chat gpt-4o-mini",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=now_ns - 250_000_000,
                end_time_unix_nano=now_ns,
                attributes=attributes,
            )
        )
    return gzip.compress(export.SerializeToString())


def through_otlp(target: Target, exports: int, rng: random.Random) -> Send:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    url = f"{target.api}/v1/traces"
    bodies = [otlp_export(SPANS_PER_EXPORT, rng) for _ in range(exports)]
    headers = {
        "Authorization": f"Bearer {target.key}",
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "gzip",
    }

    async def send(session: aiohttp.ClientSession, index: int) -> None:
        answer = ExportTraceServiceResponse.FromString(
            await post(session, url, bodies[index], headers)
        )
        if answer.partial_success.rejected_spans:
            raise RuntimeError(f"OTLP refused spans: {answer.partial_success}")

    return send


async def measure(
    session: aiohttp.ClientSession,
    target: Target,
    name: str,
    send: Send,
    calls: int,
    concurrency: int,
    rows_per_call: int = 1,
    warm_up: int = WARM_UP,
    unit: str = "requests",
) -> Phase:
    """Warm up, send `calls` calls, then wait for every row they stored to be counted."""
    before = await counted(session, target)
    await load(session, warm_up, concurrency, send)
    before += warm_up * rows_per_call
    await queryable_after(session, target, before)
    # The warm-up used the first `warm_up` bodies of paths that pre-built one per call.
    phase = await load(session, calls, concurrency, _offset(send, warm_up))
    phase.queryable_after_s = await queryable_after(session, target, before + calls * rows_per_call)
    phase.name, phase.unit, phase.units = name, unit, calls * rows_per_call
    print(f"  {name}: {phase.figures()}", flush=True)
    return phase


def _offset(send: Send, by: int) -> Send:
    async def shifted(session: aiohttp.ClientSession, index: int) -> None:
        await send(session, index + by)

    return shifted


async def online_paths(target: Target, requests: int, concurrency: int) -> list[Phase]:
    exports = max(1, requests // SPANS_PER_EXPORT)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def run(name: str, send: Send) -> Phase:
            return await measure(session, target, name, send, requests, concurrency)

        phases = [
            await run("gateway (baseline)", through_gateway(target)),
            await run("/oai/v1/log, gateway port", through_async_log(target, target.gateway)),
            await run("/oai/v1/log, API port", through_async_log(target, target.api)),
            await run("/v1/log/request", through_log_message(target, requests + WARM_UP)),
        ]
        otlp = through_otlp(target, exports + OTLP_WARM_UP, random.Random(12))
        name = f"OTLP /v1/traces ({SPANS_PER_EXPORT}/export)"
        spans = await measure(
            *(session, target, name, otlp, exports, concurrency),
            rows_per_call=SPANS_PER_EXPORT,
            warm_up=OTLP_WARM_UP,
            unit="spans",
        )
    return [*phases, spans]


# The Helicone import, against the stopped server's data directory.


def helicone_export(rows: int, directory: Path) -> Path:
    """`requests.jsonl` of `rows` rows in Helicone's layout, written by ClickHouse (chDB, on a
    data path of its own) exactly as the import test writes its exports."""
    from heliograph.analytics.chdb_executor import open_chdb, release_chdb
    from test_helicone_import import requests, write_exports

    executor = open_chdb(directory / "export-chdb")
    try:
        write_exports(executor, requests(rows, seed=12), directory)
    finally:
        release_chdb(executor)
    (directory / "requests.csv").unlink()
    return directory / "requests.jsonl"


def run_import(
    env: dict[str, str], organization_id: str, export: Path, rows: int
) -> dict[str, Any]:
    """`heliograph import helicone` in a process of its own: wall time, rows/s, peak RSS."""
    command = [sys.executable, "-m", "heliograph", "import", "helicone"]
    command += ["--org", organization_id, "--requests", str(export)]
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.DEVNULL)
        peak = PeakWatcher(process.pid)
        peak.start()
        process.wait(timeout=PHASE_TIMEOUT_S)
        seconds = time.perf_counter() - started
        peak.join()
        output.seek(0)
        printed = output.read().decode()
    if process.returncode != 0 or f"{rows:,} imported" not in printed:
        raise RuntimeError(f"the import failed ({process.returncode}): {printed}")
    return {
        "rows": rows,
        "file_mb": round(export.stat().st_size / 1e6, 1),
        "seconds": round(seconds, 2),
        "per_s": round(rows / seconds, 1),
        "peak_rss_mb": round(peak.vm_hwm_kb / 1024, 1),
        "printed": printed.strip().splitlines(),
    }


class PeakWatcher(threading.Thread):
    """Reads VmHWM (peak resident size) from /proc/<pid>/status every 10 ms until the process
    is gone; VmHWM only grows, so the last reading is the peak to within 10 ms of the end.
    (The child's `ru_maxrss` is no use here: Linux keeps it across exec, so it includes the
    forked copy of this benchmark process, chDB and all.)"""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.vm_hwm_kb = 0

    def run(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while True:
            try:
                text = status.read_text()
            except (FileNotFoundError, ProcessLookupError):
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    self.vm_hwm_kb = max(self.vm_hwm_kb, int(line.split()[1]))
            if "State:\tZ" in text:  # exited, not yet reaped
                return
            time.sleep(0.01)


# Figures.


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def table(phases: dict[str, dict[str, Any]], imported: dict[str, Any] | None) -> str:
    baseline = phases["gateway (baseline)"]
    lines = [
        f"{'path':<30} {'unit':<9} {'per s':>8} {'ratio':>6} {'p50 ms':>8} {'ratio':>6} "
        f"{'p99 ms':>8} {'ratio':>6} {'lag s':>6} {'all in s':>8} {'ratio':>6}"
    ]
    for name, figures in phases.items():
        lines.append(
            f"{name:<30} {figures['unit']:<9} {figures['per_s']:>8.0f} "
            f"{ratio(figures['per_s'], baseline['per_s']):>6} {figures['p50_ms']:>8.2f} "
            f"{ratio(figures['p50_ms'], baseline['p50_ms']):>6} {figures['p99_ms']:>8.2f} "
            f"{ratio(figures['p99_ms'], baseline['p99_ms']):>6} "
            f"{figures['queryable_after_s']:>6.2f} {figures['all_queryable_s']:>8.2f} "
            f"{ratio(figures['all_queryable_s'], baseline['all_queryable_s']):>6}"
        )
    if imported is not None:
        lines.append(
            f"{'import helicone (' + format(imported['rows'], ',') + ')':<30} {'rows':<9} "
            f"{imported['per_s']:>8.0f} {ratio(imported['per_s'], baseline['per_s']):>6}   "
            f"{imported['seconds']:.1f} s in all, peak RSS (VmHWM) "
            f"{imported['peak_rss_mb']:.0f} MB"
        )
    lines.append(
        "latency is per HTTP request (an OTLP export carries 100 spans); lag = from the last "
        "answer until the API counts every row; all in = from the first request to that"
    )
    return "\n".join(lines)


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="calls (and spans) per path")
    parser.add_argument("--import-rows", type=int, default=50_000, help="0 skips the import")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ingest_paths.json")
    args = parser.parse_args()
    if args.requests < SPANS_PER_EXPORT or args.concurrency < 1 or args.import_rows < 0:
        parser.error(f"--requests must be at least {SPANS_PER_EXPORT}, --concurrency at least 1")
    began, load_before = time.perf_counter(), load_average()
    imported = None
    with tempfile.TemporaryDirectory(prefix="heliograph-bench-") as workdir:
        provider_port = free_port()
        env = environment(Path(workdir) / "data", provider_port)
        provider = start_fake_provider(provider_port, env)
        try:
            organization_id, key = initialise(env)
            serve, gateway_port, api_port = start_serve(env)
            try:
                target = Target(
                    f"http://127.0.0.1:{gateway_port}",
                    f"http://127.0.0.1:{api_port}",
                    key,
                    organization_id,
                    fake_answer(provider_port),
                )
                print(f"sending {args.requests} calls per path, {args.concurrency} at a time")
                import uvloop

                phases = uvloop.run(online_paths(target, args.requests, args.concurrency))
            finally:
                stop(serve)
        finally:
            stop(provider)
        if args.import_rows:
            print(f"writing a {args.import_rows:,}-row Helicone export", flush=True)
            export = helicone_export(args.import_rows, Path(workdir))
            imported = run_import(env, organization_id, export, args.import_rows)
    figures = {phase.name: phase.figures() for phase in phases}
    summary = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "requests_per_path": args.requests,
        "concurrency": args.concurrency,
        "spans_per_export": SPANS_PER_EXPORT,
        "gateway_workers": 1,
        "run_s": round(time.perf_counter() - began, 1),
        "paths": figures,
        "import": imported,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(table(figures, imported))
    print(
        f"run took {summary['run_s']} s; load average before {load_before}, "
        f"after {summary['load_average_after']}"
    )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
