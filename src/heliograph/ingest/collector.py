"""`collector_paused`: Python's cycle collector held off while a large body becomes objects, so a
full collection (seconds with the GIL held, on millions of fresh objects) never stalls the event
loop serving everyone else."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

LARGE_BODY_BYTES = 1024 * 1024  # smaller bodies make too few objects to matter

_pauses = 0
_pause_lock = threading.Lock()
_resume = False


@contextlib.contextmanager
def collector_paused(size: int) -> Iterator[None]:
    """Pause Python's cycle collector while a body of `size` bytes (at least
    `LARGE_BODY_BYTES`) becomes objects. A body of 8 MiB is millions of them, each allocation
    counting towards a collection, and a full collection walks every object of the process
    holding the GIL: seconds in which the event loop, on its own thread, cannot run. The
    objects are acyclic JSON, freed by reference counting; collection resumes with the last."""
    global _pauses, _resume
    if size < LARGE_BODY_BYTES:
        yield
        return
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()  # not turned back on if someone else had turned it off
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()
