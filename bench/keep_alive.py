"""Keep-alive latency on a socket from `runtime.bind` (how the API and gateway ports are
opened): each response on a reused connection should arrive at once. With Nagle left on, every
one after the first waits ~40 ms for a delayed ACK. Budget: median under 25 ms.
Prints the figures, writes `bench/results/keep_alive.json`.

    python bench/keep_alive.py [--requests 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn

from heliograph.runtime import bind

HERE = Path(__file__).resolve().parent
BUDGET_S = 0.025


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})


async def main(requests: int) -> dict[str, Any]:
    sock = bind("127.0.0.1", 0)
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.01)
    timings = []
    async with aiohttp.ClientSession() as session:
        for _ in range(requests + 1):
            started = time.perf_counter()
            async with session.get(f"http://{host}:{port}/healthz") as response:
                await response.read()
            timings.append(time.perf_counter() - started)
    server.should_exit = True
    await serving
    median = statistics.median(timings[1:])  # the first opens the connection
    return {"requests": requests, "median_ms": round(median * 1000, 3), "budget_ms": 25}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50)
    result = asyncio.run(main(parser.parse_args().requests))
    print(json.dumps(result))
    (HERE / "results" / "keep_alive.json").write_text(json.dumps(result, indent=2) + "\n")
    if result["median_ms"] > BUDGET_S * 1000:
        raise SystemExit(f"over budget: {result['median_ms']} ms")
