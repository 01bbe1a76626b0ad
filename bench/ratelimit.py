"""Rate-limit check cost: `RateLimiter.check` on in-process buckets and on Redis, as the gateway
calls it per request. Budget: 0.2 ms p50 in process. Prints a table, writes
`bench/results/ratelimit.json`.

    python bench/ratelimit.py [--requests 20000] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from heliograph.gateway.ratelimit import RateLimiter
from heliograph.state.buckets import MemoryBuckets
from heliograph.state.redis_buckets import RedisBuckets

HERE = Path(__file__).resolve().parent


async def measure(limiter: RateLimiter, requests: int) -> dict[str, Any]:
    organization = str(uuid.uuid4())
    timings = []
    for index in range(requests):
        user = f"user-{index % 100}"
        started = time.perf_counter()
        await limiter.check(organization, "1000000;w=60;s=user", user, {})
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "requests": requests,
        "p50_ms": round(statistics.median(timings), 4),
        "p99_ms": round(timings[int(0.99 * len(timings))], 4),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ratelimit.json")
    args = parser.parse_args()
    results = {"memory": await measure(RateLimiter(MemoryBuckets()), args.requests)}
    redis = RedisBuckets(args.redis)
    try:
        results["redis"] = await measure(RateLimiter(redis), args.requests)
    except OSError as error:
        results["redis"] = {"error": str(error)}
    finally:
        await redis.close()
    print(f"{'backend':<8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, figures in results.items():
        if "error" in figures:
            print(f"{name:<8} unavailable: {figures['error']}")
        else:
            print(f"{name:<8} {figures['p50_ms']:>8.4f} {figures['p99_ms']:>8.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
