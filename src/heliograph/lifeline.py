"""A child process's lifeline to the process that started it: the parent keeps the write end of a
pipe that the child watches, so a child notices its parent's death however it died (`kill -9`
included) and stops as if told to with SIGTERM. On Linux the kernel sends that SIGTERM too
(`PR_SET_PDEATHSIG`). Standard library only: the lean gateway process imports it."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable

log = logging.getLogger("heliograph")
PARENT_PID_ENV = "HELIOGRAPH_PARENT_PID"
LIFELINE_FD_ENV = "HELIOGRAPH_LIFELINE_FD"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Lifeline:
    """The parent's end. `os.pipe` makes both ends non-inheritable and only the read end is handed
    to children (`pass_fds`), so the write end closes exactly when this process goes away."""

    def __init__(self) -> None:
        self.read_fd, self._write_fd = os.pipe()

    def child_env(self) -> dict[str, str]:
        return {PARENT_PID_ENV: str(os.getpid()), LIFELINE_FD_ENV: str(self.read_fd)}

    def close(self) -> None:
        for fd in (self.read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


async def wait_for_stop() -> None:
    """Return on SIGINT or SIGTERM, or as soon as the parent named in the environment is gone."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    parent = int(os.environ.get(PARENT_PID_ENV) or 0)  # 0 for a standalone `heliograph gateway`

    def parent_gone() -> None:
        if not stop.is_set():
            log.warning("the process that started this one (%d) is gone; stopping", parent)
        stop.set()

    # The kernel's SIGTERM for a dead parent (sent as each of its threads exits, so possibly
    # before the adoption) looks like any other: only the lifeline says why.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    watched = _watch_parent(loop, parent, parent_gone) if parent else None
    try:
        await stop.wait()
    finally:
        if watched is not None:
            loop.remove_reader(watched)


def _watch_parent(
    loop: asyncio.AbstractEventLoop, parent: int, on_gone: Callable[[], None]
) -> int | None:
    """Call `on_gone` once `parent` is gone; returns the lifeline's descriptor, now watched."""
    _ask_kernel_for_sigterm()
    # The parent may have died before the kernel took the request: then we were adopted already.
    if os.getppid() != parent:
        on_gone()
    fd_text = os.environ.get(LIFELINE_FD_ENV)
    if not fd_text:
        return None
    fd = int(fd_text)
    os.set_blocking(fd, False)

    def readable() -> None:
        with contextlib.suppress(BlockingIOError):
            if not os.read(fd, 1):  # end of file: nobody holds the write end any more
                loop.remove_reader(fd)
                on_gone()

    loop.add_reader(fd, readable)
    return fd


def _ask_kernel_for_sigterm() -> None:
    """On Linux, SIGTERM this process when its parent dies (set here, after exec: a `preexec_fn`
    would run between fork and exec in a parent that has threads, which can deadlock)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
