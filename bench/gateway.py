"""Gateway benchmark: the same load sent straight to a fake provider, through a bare aiohttp
proxy (the floor any Python proxy pays) and through Heliograph (`heliograph serve`, logging on),
in the same run, so the differences are the gateway's cost.

Scenarios: one connection (latency p50/p99; direct, floor and Heliograph take turns for
`--rounds` rounds, so the host's noisy moments fall on all three alike), fixed rates of 200 and
500 req/s (latency under load), 64 connections (throughput; wrk when installed), each
non-streaming and streaming.
`--pieces` makes the fake provider answer in pieces with small gaps, as real providers do, so a
request spans several turns of the gateway's event loop. `--rss-requests N` then sends N more
requests through the gateway and reports the gateway process's resident memory.
Prints a table and writes `bench/results/gateway.json`.

    python bench/gateway.py [--seconds 10] [--pieces] [--scenarios 1conn,rates,64conn,cache]
                            [--rounds 3] [--rss-requests 10000] [--out bench/results/gateway.json]

Run it with `PYTHONPATH=<another checkout>/src` to measure that version of Heliograph instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}]}
STREAM_BODY = {**BODY, "stream": True}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_request(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> float:
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
    return (time.perf_counter() - started) * 1000


async def sequential(
    url: str, body: bytes, headers: dict[str, str], seconds: float
) -> dict[str, Any]:
    return summarise(await sequential_latencies(url, body, headers, seconds), seconds)


async def sequential_latencies(
    url: str, body: bytes, headers: dict[str, str], seconds: float
) -> list[float]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(50):  # warm up
            await one_request(session, url, body, headers)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            latencies.append(await one_request(session, url, body, headers))
    return latencies


async def interleaved(
    targets: dict[str, tuple[str, dict[str, str]]], body: bytes, seconds: float, rounds: int
) -> dict[str, dict[str, Any]]:
    """One connection to each target in turn, `rounds` times, so a noisy moment of the host
    falls on every target alike; the latencies of all rounds are summarised together."""
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (url, headers) in targets.items():
            latencies[name] += await sequential_latencies(url, body, headers, seconds / rounds)
    return {name: summarise(values, seconds) for name, values in latencies.items()}


async def fixed_rate(
    url: str, body: bytes, headers: dict[str, str], rate: int, seconds: float
) -> dict[str, Any]:
    """Open loop: requests start on schedule whether or not earlier ones finished."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(50):
            await one_request(session, url, body, headers)

        async def fire() -> None:
            nonlocal errors
            try:
                latencies.append(await one_request(session, url, body, headers))
            except (RuntimeError, aiohttp.ClientError):
                errors += 1

        tasks = []
        start = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(fire()))
        await asyncio.gather(*tasks)
    result = summarise(latencies, seconds)
    result["errors"] = errors
    return result


def summarise(latencies: list[float], seconds: float) -> dict[str, Any]:
    return {
        "requests": len(latencies),
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
        "mean_ms": round(statistics.fmean(latencies), 3),
        "req_per_s": round(len(latencies) / seconds, 1),
    }


def wrk_throughput(
    url: str, body: dict[str, Any], headers: dict[str, str], seconds: float
) -> dict[str, Any]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(json.dumps(body))}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join(lines))
    output = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{int(seconds)}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    script.unlink()
    figures: dict[str, Any] = {"tool": "wrk -t2 -c64"}
    for line in output.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            figures["req_per_s"] = float(parts[1])
        elif parts[:1] == ["50%"]:
            figures["p50_ms"] = _ms(parts[1])
        elif parts[:1] == ["99%"]:
            figures["p99_ms"] = _ms(parts[1])
        elif "Non-2xx" in line:
            figures["non_2xx"] = int(parts[-1])
    return figures


def _ms(text: str) -> float:
    for suffix, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(suffix):
            return round(float(text[: -len(suffix)]) * factor, 3)
    return float(text)


async def python_throughput(
    url: str, body: bytes, headers: dict[str, str], seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                latencies.append(await one_request(session, url, body, headers))

        await asyncio.gather(*(worker() for _ in range(64)))
    result = summarise(latencies, seconds)
    result["tool"] = "python aiohttp, 64 connections"
    return result


def start_processes(
    workdir: Path, pieces: bool
) -> tuple[list[subprocess.Popen[bytes]], dict[str, Any]]:
    upstream_port, gateway_port, api_port = free_port(), free_port(), free_port()
    upstream_argv = [sys.executable, str(HERE / "upstream.py"), str(upstream_port)]
    upstream = subprocess.Popen(upstream_argv + (["--pieces"] if pieces else []))
    env = {
        **os.environ,
        "HELIOGRAPH_DATA_DIR": str(workdir),
        "HELIOGRAPH_LOG_LEVEL": "warning",
        "HELIOGRAPH_OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}",
        # The unified API (/v1/chat/completions) calls both with the operator's keys.
        "HELIOGRAPH_ANTHROPIC_BASE_URL": f"http://127.0.0.1:{upstream_port}",
        "OPENAI_API_KEY": "sk-bench",
        "ANTHROPIC_API_KEY": "sk-ant-bench",
    }
    init = subprocess.run(
        [sys.executable, "-m", "heliograph", "init", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = json.loads(init.stdout.splitlines()[-1])["api_key"]
    gateway = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "heliograph",
            "serve",
            "--gateway-port",
            str(gateway_port),
            "--api-port",
            str(api_port),
        ],
        env=env,
    )
    floor_port = free_port()
    floor = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "floor_proxy.py"),
            str(floor_port),
            f"http://127.0.0.1:{upstream_port}",
        ]
    )
    wait_for(f"http://127.0.0.1:{gateway_port}/healthz")
    wait_for(f"http://127.0.0.1:{api_port}/healthz")
    wait_for_post(f"http://127.0.0.1:{upstream_port}/v1/chat/completions")
    wait_for_post(f"http://127.0.0.1:{floor_port}/v1/chat/completions")
    return [upstream, floor, gateway], {
        "direct": f"http://127.0.0.1:{upstream_port}/v1/chat/completions",
        "floor": f"http://127.0.0.1:{floor_port}/v1/chat/completions",
        "gateway": f"http://127.0.0.1:{gateway_port}/openai/v1/chat/completions",
        "api": f"http://127.0.0.1:{api_port}",
        "key": key,
        "serve_pid": gateway.pid,
    }


def wait_for_post(url: str, headers: dict[str, str] | None = None, timeout_s: float = 30) -> None:
    sent = headers or {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=json.dumps(BODY).encode(), headers=sent)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(request, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def logged_count(api: str, key: str) -> int:
    request = urllib.request.Request(
        f"{api}/v1/request/count/query",
        data=b'{"filter": "all"}',
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(json.loads(response.read())["data"])


def gateway_headers(key: str) -> dict[str, str]:
    return {
        "Helicone-Auth": f"Bearer {key}",
        "Authorization": "Bearer sk-bench",
        "Content-Type": "application/json",
    }


async def run_scenarios(
    urls: dict[str, Any], seconds: float, scenarios: set[str], rounds: int
) -> dict[str, Any]:
    through_gateway = gateway_headers(urls["key"])
    direct_headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
    targets = {
        target: (urls[target], through_gateway if target == "gateway" else direct_headers)
        for target in ("direct", "floor", "gateway")
    }
    results: dict[str, Any] = {}
    for mode, body in (("non-streaming", BODY), ("streaming", STREAM_BODY)):
        encoded = json.dumps(body).encode()
        if "1conn" in scenarios:
            one = await interleaved(targets, encoded, seconds, rounds)
            for target, figures in one.items():
                results[f"{mode}/{target}/1 connection"] = figures
        for target, (url, headers) in targets.items():
            prefix = f"{mode}/{target}"
            for rate in (200, 500) if "rates" in scenarios else ():
                results[f"{prefix}/{rate} req/s"] = await fixed_rate(
                    url, encoded, headers, rate, seconds
                )
            if "64conn" not in scenarios:
                continue
            if shutil.which("wrk"):
                results[f"{prefix}/64 connections"] = wrk_throughput(url, body, headers, seconds)
            else:
                results[f"{prefix}/64 connections"] = await python_throughput(
                    url, encoded, headers, seconds
                )
    if "cache" in scenarios and "1conn" in scenarios:
        results.update(await cache_hits(urls["gateway"], through_gateway, seconds))
    return results


async def cache_hits(url: str, headers: dict[str, str], seconds: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    cached_headers = {**headers, "Helicone-Cache-Enabled": "true"}
    for mode, body in (("non-streaming", BODY), ("streaming", STREAM_BODY)):
        encoded = json.dumps(body).encode()
        results[f"cache/{mode}/hit, 1 connection"] = await sequential(
            url, encoded, cached_headers, seconds
        )
    return results


async def gateway_memory(urls: dict[str, Any], requests: int) -> dict[str, Any]:
    """Resident memory of the gateway process after `requests` more requests (half streaming),
    64 at a time."""
    child = gateway_child(urls["serve_pid"])
    before = process_memory_mb(child)
    headers = gateway_headers(urls["key"])
    bodies = [json.dumps(BODY).encode(), json.dumps(STREAM_BODY).encode()]
    remaining = requests
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await one_request(session, urls["gateway"], bodies[remaining % 2], headers)

        await asyncio.gather(*(worker() for _ in range(64)))
    await asyncio.sleep(1)  # the last batch ships
    return {"requests": requests, "before": before, "after": process_memory_mb(child)}


def gateway_child(serve_pid: int) -> int:
    """The gateway process `heliograph serve` started (its only child)."""
    children = Path(f"/proc/{serve_pid}/task/{serve_pid}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one gateway process, found {children}")
    return int(children[0])


def process_memory_mb(pid: int) -> dict[str, float]:
    """Resident (VmRSS) and peak resident (VmHWM) memory, in MB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[name] = round(int(value.split()[0]) / 1024, 1)
    return figures


def cache_table(results: dict[str, Any]) -> str:
    """Cache hits against the same request going upstream through the gateway."""
    lines = [f"{'cache':<30} {'upstream p50/p99':>17} {'hit p50/p99':>12} {'hit rps':>8}"]
    for mode in ("non-streaming", "streaming"):
        if f"cache/{mode}/hit, 1 connection" not in results:
            continue
        upstream = results[f"{mode}/gateway/1 connection"]
        hit = results[f"cache/{mode}/hit, 1 connection"]
        lines.append(
            f"{mode + ', 1 connection':<30} {_pair(upstream, None):>17} {_pair(hit, None):>12} "
            f"{hit['req_per_s']:>8.0f}"
        )
    return "\n".join(lines)


def table(results: dict[str, Any]) -> str:
    """Latency added over direct (p50/p99, ms) and throughput: the floor proxy and Heliograph."""
    lines = [
        f"{'scenario':<30} {'direct p50/p99':>15} {'floor +p50/+p99':>16} "
        f"{'heliograph +p50/+p99':>21} {'direct rps':>10} {'floor rps':>9} {'helio rps':>9}"
    ]
    for key, gateway in results.items():
        if "/gateway/" not in key or key.startswith("cache/"):
            continue
        direct = results[key.replace("/gateway/", "/direct/")]
        floor = results[key.replace("/gateway/", "/floor/")]
        name = key.replace("/gateway", "")
        lines.append(
            f"{name:<30} {_pair(direct, None):>15} {_pair(floor, direct):>16} "
            f"{_pair(gateway, direct):>21} "
            f"{direct['req_per_s']:>10.0f} {floor['req_per_s']:>9.0f} {gateway['req_per_s']:>9.0f}"
        )
    return "\n".join(lines)


def _pair(figures: dict[str, Any], base: dict[str, Any] | None) -> str:
    """`p50/p99` of `figures`, less those of `base` when given."""
    p50, p99 = figures["p50_ms"], figures["p99_ms"]
    if base is not None:
        p50, p99 = p50 - base["p50_ms"], p99 - base["p99_ms"]
    return f"{p50:.2f}/{p99:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pieces", action="store_true", help="the provider answers in pieces")
    parser.add_argument("--scenarios", default="1conn,rates,64conn,cache")
    parser.add_argument("--rss-requests", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved 1-connection rounds")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "gateway.json")
    args = parser.parse_args()
    memory = None
    with tempfile.TemporaryDirectory() as workdir:
        processes, urls = start_processes(Path(workdir), args.pieces)
        try:
            import uvloop

            scenarios = set(args.scenarios.split(","))
            results = uvloop.run(run_scenarios(urls, args.seconds, scenarios, args.rounds))
            if args.rss_requests:
                memory = uvloop.run(gateway_memory(urls, args.rss_requests))
            time.sleep(2)  # let the last batch flush
            logged = logged_count(urls["api"], urls["key"])
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(timeout=60)
    summary = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "seconds_per_scenario": args.seconds,
        "upstream": "in pieces" if args.pieces else "one write",
        "requests_logged_through_gateway": logged,
        "gateway_memory_mb": memory,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(table(results))
    print()
    print(cache_table(results))
    if memory is not None:
        print(f"\ngateway process memory (MB): {memory}")
    print(f"\nrequests logged through the gateway: {logged}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
