"""The unified API against its peers, in one run on one fake provider that speaks OpenAI's and
Anthropic's APIs. OpenAI's shape: straight to the provider (`direct`), Heliograph's passthrough
route (`/openai/v1/chat/completions`), the unified endpoint with an OpenAI model (`unified`:
identity translation) and LiteLLM's proxy (pinned, one worker; see `litellm_peer.py`).
Anthropic's: straight to `/v1/messages` (`direct-anthropic`), the passthrough route
(`/anthropic/v1/messages`) and the unified endpoint with a Claude model (`unified-anthropic`:
translated both ways). One connection, taking turns for `--rounds` rounds (added latency, p50 and
p99 over the direct target of the same API), then 64 connections (throughput: `--rounds` runs
each, in a different order each round, the median kept), non-streaming and streaming. Prints a
table and writes `bench/results/unified.json`.

    python bench/unified.py [--seconds 10] [--rounds 3] [--litellm-python PATH] [--out PATH]
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gateway import (  # noqa: E402
    BODY,
    free_port,
    gateway_headers,
    python_throughput,
    sequential_latencies,
    start_processes,
    summarise,
    wait_for_post,
    wrk_throughput,
)
from litellm_peer import PINNED, litellm_headers, litellm_version, start_litellm  # noqa: E402

MODES = ("non-streaming", "streaming")
# What `max_tokens` the unified endpoint sends Anthropic when the caller names none, so the
# Anthropic-shaped targets ask the provider the same.
ANTHROPIC_BODY = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 4096,
    "messages": [{"role": "user", "content": "Say hi"}],
}
ANTHROPIC_HEADERS = {
    "Content-Type": "application/json",
    "x-api-key": "sk-ant-bench",
    "anthropic-version": "2023-06-01",
}
IDENTITY_TARGET_MS = 0.3  # what the identity translation may add over the passthrough route


@dataclass(frozen=True, slots=True)
class Target:
    """Where one target is sent, with what headers, and its non-streaming body."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]

    def body_for(self, mode: str) -> dict[str, Any]:
        return {**self.body, "stream": True} if mode == "streaming" else self.body


def baseline(target: str) -> str:
    """The direct target a target's added latency is measured over: the one of its API."""
    return "direct-anthropic" if target.endswith("-anthropic") else "direct"


def serves(target: Target) -> bool:
    """Whether the target answers its body with 200 (a route may not be served yet)."""
    data = json.dumps(target.body).encode()
    request = urllib.request.Request(target.url, data=data, headers=target.headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def gateway_targets(urls: dict[str, Any]) -> dict[str, Target]:
    """Every target but LiteLLM; the gateway's routes that answer no 200 are left out, saying so."""
    through = gateway_headers(urls["key"])
    # Anthropic's SDK sends its key in x-api-key, and no Authorization.
    through_anthropic = {**ANTHROPIC_HEADERS, "Helicone-Auth": through["Helicone-Auth"]}
    origin = urls["gateway"].removesuffix("/openai/v1/chat/completions")
    upstream = urls["direct"].removesuffix("/v1/chat/completions")
    claude = {**BODY, "model": ANTHROPIC_BODY["model"]}
    targets = {
        "direct": Target(urls["direct"], {"Content-Type": "application/json"}, BODY),
        "passthrough": Target(urls["gateway"], through, BODY),
        "unified": Target(origin + "/v1/chat/completions", through, BODY),
        "direct-anthropic": Target(upstream + "/v1/messages", ANTHROPIC_HEADERS, ANTHROPIC_BODY),
        "passthrough-anthropic": Target(
            origin + "/anthropic/v1/messages", through_anthropic, ANTHROPIC_BODY
        ),
        "unified-anthropic": Target(origin + "/v1/chat/completions", through, claude),
    }
    for name in [name for name in targets if not name.startswith("direct")]:
        if not serves(targets[name]):
            print(f"{targets[name].url} answers no 200 for {name}: {name} not measured")
            del targets[name]
    return targets


async def interleaved(
    targets: dict[str, Target], mode: str, seconds: float, rounds: int
) -> dict[str, dict[str, Any]]:
    """`gateway.interleaved` with a body per target: one connection to each target in turn,
    `rounds` times, so a noisy moment of the host falls on every target alike."""
    bodies = {name: json.dumps(target.body_for(mode)).encode() for name, target in targets.items()}
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, target in targets.items():
            latencies[name] += await sequential_latencies(
                target.url, bodies[name], target.headers, seconds / rounds
            )
    return {name: summarise(values, seconds) for name, values in latencies.items()}


async def measure(targets: dict[str, Target], seconds: float, rounds: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for mode in MODES:
        for name, figures in (await interleaved(targets, mode, seconds, rounds)).items():
            results[f"{mode}/{name}/1 connection"] = figures
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        names = list(targets)
        # Each round in another order, and the median run kept: whoever goes right after a busy
        # target shares the machine with the log writer still storing that target's rows.
        for round_index in range(rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                runs[name].append(await throughput(targets[name], mode, seconds))
        for name, measured in runs.items():
            median = sorted(measured, key=lambda run: run["req_per_s"])[len(measured) // 2]
            results[f"{mode}/{name}/64 connections"] = {
                **median,
                "rounds_req_per_s": [run["req_per_s"] for run in measured],
            }
    return results


async def throughput(target: Target, mode: str, seconds: float) -> dict[str, Any]:
    body = target.body_for(mode)
    if shutil.which("wrk"):
        return wrk_throughput(target.url, body, target.headers, seconds)
    return await python_throughput(target.url, json.dumps(body).encode(), target.headers, seconds)


def compare(results: dict[str, Any], targets: list[str]) -> dict[str, Any]:
    """Per mode and target: added p50/p99 over its direct baseline (ms), rps at 64 connections
    and its ratio to LiteLLM's; then the headline figures, None where a target was not measured."""
    figures: dict[str, Any] = {}
    for mode in MODES:
        peer = results.get(f"{mode}/litellm/64 connections", {}).get("req_per_s")
        rows: dict[str, Any] = {}
        for name in targets:
            one, base = results[f"{mode}/{name}/1 connection"], baseline(name)
            direct = results[f"{mode}/{base}/1 connection"]
            rps = results[f"{mode}/{name}/64 connections"]["req_per_s"]
            rows[name] = {
                "baseline": base,
                "added_p50_ms": round(one["p50_ms"] - direct["p50_ms"], 3),
                "added_p99_ms": round(one["p99_ms"] - direct["p99_ms"], 3),
                "req_per_s_64_connections": rps,
                "vs_litellm": round(rps / peer, 2) if peer else None,
            }
        figures[mode] = {
            "targets": rows,
            "translation_overhead_p50_ms": _p50_gap(results, mode, "unified-anthropic"),
            "identity_overhead_p50_ms": _p50_gap(results, mode, "unified"),
        }
    return figures


def _p50_gap(results: dict[str, Any], mode: str, unified: str) -> float | None:
    """`unified`'s p50 less that of the passthrough route of its API, on one connection."""
    passthrough = unified.replace("unified", "passthrough")
    one = results.get(f"{mode}/{unified}/1 connection")
    base = results.get(f"{mode}/{passthrough}/1 connection")
    return round(one["p50_ms"] - base["p50_ms"], 3) if one and base else None


def table(figures: dict[str, Any]) -> str:
    """The comparison, one line per mode and target, then the headline figures per mode."""
    heading = f"{'over':<17} {'+p50/+p99 ms':>14} {'rps (64 conn)':>14} {'vs litellm':>11}"
    lines = [f"{'mode':<14} {'target':<22} {heading}"]
    for mode in MODES:
        for name, row in figures[mode]["targets"].items():
            added = f"{row['added_p50_ms']:.2f}/{row['added_p99_ms']:.2f}"
            ratio = f"{row['vs_litellm']:.1f}x" if row["vs_litellm"] is not None else "-"
            rps = row["req_per_s_64_connections"]
            lines.append(
                f"{mode:<14} {name:<22} {row['baseline']:<17} {added:>14} {rps:>14.0f} {ratio:>11}"
            )
    for mode in MODES:
        translation = _ms(figures[mode]["translation_overhead_p50_ms"])
        identity = _ms(figures[mode]["identity_overhead_p50_ms"])
        lines.append(
            f"{mode}: translation overhead p50 {translation} (unified-anthropic - "
            f"passthrough-anthropic); unified (identity) overhead p50 {identity} "
            f"(unified - passthrough; target <= {IDENTITY_TARGET_MS} ms)"
        )
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.3f} ms"


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
            targets = gateway_targets(urls)
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
                targets["litellm"] = Target(url, litellm_headers(), BODY)
            results = asyncio.run(measure(targets, args.seconds, args.rounds))
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(timeout=60)
    figures = compare(results, [name for name in targets if not name.startswith("direct")])
    summary = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "seconds_per_scenario": args.seconds,
        "rounds": args.rounds,
        "litellm": peer or None,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "identity_overhead_target_p50_ms": IDENTITY_TARGET_MS,
        "comparison": figures,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(table(figures))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
