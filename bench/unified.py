"""The unified API against its peers, in one run on one fake provider: straight to the provider,
Heliograph's passthrough route (`/openai/v1/chat/completions`), Heliograph's unified endpoint
(`/v1/chat/completions`, once the gateway serves it) and LiteLLM's proxy (pinned, one worker;
see `litellm_peer.py`). One connection, taking turns for `--rounds` rounds (added latency, p50 and
p99 over direct), then 64 connections (throughput), non-streaming and streaming.
Prints a table and writes `bench/results/unified.json`.

    python bench/unified.py [--seconds 10] [--rounds 3] [--litellm-python PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gateway import (  # noqa: E402
    BODY,
    STREAM_BODY,
    free_port,
    gateway_headers,
    interleaved,
    python_throughput,
    start_processes,
    wait_for_post,
    wrk_throughput,
)
from litellm_peer import PINNED, litellm_headers, litellm_version, start_litellm  # noqa: E402

Target = tuple[str, dict[str, str]]


def serves(url: str, headers: dict[str, str]) -> bool:
    """Whether `url` answers a chat completion with 200 (the unified endpoint may not exist)."""
    request = urllib.request.Request(url, data=json.dumps(BODY).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


async def measure(targets: dict[str, Target], seconds: float, rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for mode, body in (("non-streaming", BODY), ("streaming", STREAM_BODY)):
        encoded = json.dumps(body).encode()
        for target, figures in (await interleaved(targets, encoded, seconds, rounds)).items():
            results[f"{mode}/{target}/1 connection"] = figures
        for target, (url, headers) in targets.items():
            key = f"{mode}/{target}/64 connections"
            if shutil.which("wrk"):
                results[key] = wrk_throughput(url, body, headers, seconds)
            else:
                results[key] = await python_throughput(url, encoded, headers, seconds)
    return results


def table(results: dict[str, Any], targets: list[str]) -> str:
    """Per mode: each target's added p50/p99 over direct (ms) and rps at 64 connections, with
    the ratio to LiteLLM's rps where LiteLLM ran."""
    heading = f"{'+p50/+p99 ms':>14} {'rps (64 conn)':>14} {'vs litellm':>11}"
    lines = [f"{'mode':<14} {'target':<12} {heading}"]
    for mode in ("non-streaming", "streaming"):
        direct = results[f"{mode}/direct/1 connection"]
        peer = results.get(f"{mode}/litellm/64 connections")
        for target in targets:
            one = results[f"{mode}/{target}/1 connection"]
            added = f"{one['p50_ms'] - direct['p50_ms']:.2f}/{one['p99_ms'] - direct['p99_ms']:.2f}"
            rps = results[f"{mode}/{target}/64 connections"]["req_per_s"]
            ratio = f"{rps / peer['req_per_s']:.1f}x" if peer and peer["req_per_s"] else "-"
            lines.append(f"{mode:<14} {target:<12} {added:>14} {rps:>14.0f} {ratio:>11}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--litellm-python", default="", help="a Python with litellm[proxy]")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "unified.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        processes, urls = start_processes(Path(workdir), pieces=False)
        try:
            through = gateway_headers(urls["key"])
            origin = urls["gateway"].removesuffix("/openai/v1/chat/completions")
            targets: dict[str, Target] = {
                "direct": (urls["direct"], {"Content-Type": "application/json"}),
                "passthrough": (urls["gateway"], through),
            }
            if serves(origin + "/v1/chat/completions", through):
                targets["unified"] = (origin + "/v1/chat/completions", through)
            else:
                print("the gateway serves no /v1/chat/completions yet: unified not measured")
            peer = ""
            if args.litellm_python:
                peer = litellm_version(args.litellm_python)
                if peer != PINNED:
                    print(f"litellm {peer or 'missing'} where {PINNED} is pinned: figures differ")
                port = free_port()
                upstream = urls["direct"].removesuffix("/v1/chat/completions")
                processes.append(start_litellm(args.litellm_python, upstream, port, Path(workdir)))
                url = f"http://127.0.0.1:{port}/v1/chat/completions"
                wait_for_post(url, litellm_headers(), timeout_s=120)  # it starts in 6 to 16 s
                targets["litellm"] = (url, litellm_headers())
            results = asyncio.run(measure(targets, args.seconds, args.rounds))
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(timeout=60)
    compared = [name for name in targets if name != "direct"]
    summary = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "seconds_per_scenario": args.seconds,
        "litellm": peer or None,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(table(results, compared))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
