"""`Periodic`: one background task that runs an async function every few seconds, started on
first use and cancelled on close. A failure is logged once until a run succeeds again, and what
the caches already know stays valid meanwhile (the app DB may be away for a while)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("heliograph.periodic")


class Periodic:
    def __init__(
        self, work: Callable[[], Awaitable[None]], every_s: float, name: str, failing: str
    ) -> None:
        self._work = work
        self._every_s = every_s
        self._name = name
        self._failing = failing  # a %s message for the log, given the error
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start running, unless already running."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> bool:
        """Stop running; whether it was running."""
        if self._task is None:
            return False
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        return True

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self._work()
            except Exception as error:
                if not failing:
                    log.warning(self._failing, error)
                failing = True
            else:
                failing = False
