"""How soon a webhook hears of a request: one Heliograph in this process (gateway, writer, API
and the delivery worker, embedded stores) with a webhook to a loopback receiver, and N requests
sent through the gateway over C connections to a lean fake provider. Measured per request, from
the moment its row is stored (a stamp taken by an `on_stored` listener placed before the
webhooks' own) and from the moment its response was complete at the client, to the moment the
receiver has the payload. Prints the figures, writes `bench/results/webhook_latency.json`.

    python bench/webhook_latency.py [--requests 2000] [--connections 16] [--rate 200]
                                    [--database-url URL]

Two runs: one as fast as the connections go (the ingest and the deliveries fall behind, and the
figures measure that backlog), and one paced at `--rate` requests per second.

Everything shares one event loop and two cores, the receiver too, so the figures are an upper
bound on what a separate receiver would see. The run is bounded: it gives up waiting 60 s after
the last request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from heliograph import server
from heliograph.domain.request_row import RequestRow
from heliograph.settings import load_settings

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import upstream  # noqa: E402 - the lean fake provider beside this file
from auth import own_schema  # noqa: E402 - a PostgreSQL schema of the run's own

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "webhook bench"}]}
WAIT_AFTER_S = 60.0


class Clock:
    """When each request was completed, stored and received, by request id (monotonic s)."""

    def __init__(self) -> None:
        self.completed: dict[str, float] = {}
        self.stored: dict[str, float] = {}
        self.received: dict[str, float] = {}
        self.all_received = asyncio.Event()
        self.expected = 0

    def rows_stored(self, rows: list[RequestRow]) -> None:  # on the inserter's thread
        now = time.monotonic()
        for row in rows:
            self.stored.setdefault(row["request_id"], now)

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        request_id = json.loads(body)["request_id"]
        self.received.setdefault(request_id, time.monotonic())
        if len(self.received) >= self.expected:
            self.all_received.set()
        return web.Response(text="ok")


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def summary(values_s: list[float]) -> dict[str, float]:
    ordered = sorted(value * 1000 for value in values_s)
    if not ordered:
        return {}
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[max(int(len(ordered) * 0.95) - 1, 0)], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def main(
    requests: int, connections: int, database_url: str, rate: float = 0.0
) -> dict[str, Any]:
    clock = Clock()
    clock.expected = requests
    provider = web.Application()
    provider[upstream.GAP_S] = 0.0
    provider.router.add_post("/v1/chat/completions", upstream.chat)
    receiver = web.Application()
    receiver.router.add_post("/hook", clock.receive)
    provider_runner, provider_origin = await serve(provider)
    receiver_runner, receiver_origin = await serve(receiver)
    with tempfile.TemporaryDirectory() as data, own_schema(database_url) as url:
        settings = load_settings(
            {"HELIOGRAPH_OPENAI_BASE_URL": provider_origin},
            data_dir=Path(data),
            api_port=0,
            gateway_port=0,
            database_url=url,
            allowed_webhook_origins=(receiver_origin,),
        )
        running = await server.start(settings)
        running.services.writer.inserter.on_stored.insert(0, clock.rows_stored)
        try:
            return await measure(running, clock, receiver_origin, requests, connections, rate)
        finally:
            await running.stop()
            await receiver_runner.cleanup()
            await provider_runner.cleanup()


async def measure(
    running: server.Running,
    clock: Clock,
    receiver: str,
    requests: int,
    connections: int,
    rate: float,
) -> dict[str, Any]:
    key = running.services.keys.create_organization("bench").api_key
    api, gateway = (
        f"http://127.0.0.1:{running.api_port}",
        f"http://127.0.0.1:{running.gateway_port}",
    )
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        hook = {"destination": receiver + "/hook", "config": {"sampleRate": 100}}
        headers = {"Authorization": f"Bearer {key}"}
        async with session.post(f"{api}/v1/webhooks", json=hook, headers=headers) as response:
            assert response.status == 201, await response.text()
        started = time.monotonic()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for number in range(requests):
            queue.put_nowait(number)

        async def client() -> None:
            while not queue.empty():
                number = queue.get_nowait()
                if rate > 0:  # paced: request `number` leaves at its slot of the schedule
                    await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
                async with session.post(
                    f"{gateway}/openai/v1/chat/completions",
                    json=CHAT,
                    headers={"Helicone-Auth": f"Bearer {key}", "Authorization": "Bearer sk-x"},
                ) as response:
                    await response.read()
                    clock.completed[response.headers["Helicone-Id"]] = time.monotonic()

        await asyncio.gather(*(client() for _ in range(connections)))
        sent_s = time.monotonic() - started
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(clock.all_received.wait(), WAIT_AFTER_S)
    done = [rid for rid in clock.completed if rid in clock.received and rid in clock.stored]
    return {
        "requests": requests,
        "connections": connections,
        "paced_at_per_s": rate or None,
        "requests_per_s": round(requests / sent_s, 1),
        "delivered": len(done),
        "stored_to_received": summary([clock.received[r] - clock.stored[r] for r in done]),
        "completed_to_received": summary([clock.received[r] - clock.completed[r] for r in done]),
        "database": running.services.engine.dialect.name,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--rate", type=float, default=200.0, help="the paced run's requests/s")
    options = parser.parse_args()
    runs = {}
    for label, rate in (("saturated", 0.0), ("paced", options.rate)):
        runs[label] = asyncio.run(
            main(options.requests, options.connections, options.database_url, rate)
        )
        print(label, json.dumps(runs[label]))
    name = "webhook_latency.json"
    if runs["paced"]["database"] != "sqlite":
        name = f"webhook_latency-{runs['paced']['database']}.json"
    (HERE / "results" / name).write_text(json.dumps(runs, indent=2) + "\n")
