"""Startup time of `heliograph serve` on a fresh data directory: from launching the command to
both `/healthz` answering 200 (migrations, embedded stores, gateway children). Budget: 15 s.
Prints the figures, writes `bench/results/startup.json`.

    python bench/startup.py [--runs 1] [--gateway-workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BUDGET_S = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], started: float) -> float:
    """Seconds from `started` until `url` answers 200."""
    while not healthy(url):
        if process.poll() is not None:
            raise RuntimeError(f"heliograph serve exited with {process.returncode}")
        if time.monotonic() - started > 60:
            raise RuntimeError("heliograph serve did not start within 60 s")
        time.sleep(0.02)
    return time.monotonic() - started


def one_run(workers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "HELIOGRAPH_DATA_DIR": data_dir}
        heliograph = [sys.executable, "-m", "heliograph"]
        subprocess.run([*heliograph, "init"], env=env, capture_output=True, check=True)
        gateway, api = free_port(), free_port()
        serve = [*heliograph, "serve", "--gateway-port", str(gateway), "--api-port", str(api)]
        serve += ["--gateway-workers", str(workers)]
        started = time.monotonic()
        process = subprocess.Popen(
            serve, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            api_s = wait_until_healthy(f"http://127.0.0.1:{api}/healthz", process, started)
            gateway_s = wait_until_healthy(f"http://127.0.0.1:{gateway}/healthz", process, started)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    return {"api_s": round(api_s, 3), "gateway_s": round(gateway_s, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--gateway-workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "startup.json")
    args = parser.parse_args()
    runs = [one_run(args.gateway_workers) for _ in range(args.runs)]
    ready_s = max(max(run.values()) for run in runs)
    results: dict[str, Any] = {
        "gateway_workers": args.gateway_workers,
        "runs": runs,
        "slowest_ready_s": ready_s,
        "budget_s": BUDGET_S,
        "within_budget": ready_s < BUDGET_S,
    }
    print(f"{'run':<4} {'api s':>7} {'gateway s':>10}")
    for index, run in enumerate(runs, 1):
        print(f"{index:<4} {run['api_s']:>7.3f} {run['gateway_s']:>10.3f}")
    print(f"slowest until both answer: {ready_s:.3f} s (budget {BUDGET_S:.0f} s)")
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
