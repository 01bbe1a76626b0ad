"""`off_the_loop`: CPU-heavy reading of a request body (a log of up to 8 MiB, an OTLP export) in a
worker thread, a few at a time, so the event loop keeps serving every other route meanwhile."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

# Bodies read at once: the rest wait, so a flood of large ones cannot take every worker thread
# the API's other routes run on.
CONCURRENT_READS = 2
# Bodies below this are read on the event loop: well under a millisecond of parsing.
SMALL_BODY_BYTES = 64 * 1024

T = TypeVar("T")
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


async def off_the_loop(work: Callable[[], T], size: int | None = None) -> T:
    """`work` in a worker thread, at most `CONCURRENT_READS` at once across the routes that
    use it; or here, on the loop, for a body of `size` under `SMALL_BODY_BYTES`, since handing
    it to a thread costs about as much as reading it. `size` None: always in a thread (a
    compressed body's cost is unknown until it is inflated)."""
    if size is not None and size < SMALL_BODY_BYTES:
        return work()
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)  # a limiter belongs to the loop that first waits on it
    if limiter is None:
        limiter = _limiters[loop] = CapacityLimiter(CONCURRENT_READS)
    return await anyio.to_thread.run_sync(work, limiter=limiter)
