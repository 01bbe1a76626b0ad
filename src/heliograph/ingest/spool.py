"""The on-disk spool: batches the store could not take wait here, one file each, until it can.

A file is written to a temporary name, fsync'd and renamed (and the directory fsync'd), so a
crash never leaves half a batch behind and a written batch survives a power cut; its name carries
the batch's deduplication token, so replaying it twice stores it once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def write(self, token: str, json_rows: bytes) -> Path:
        stamp = time.time_ns()
        final = self.directory / f"{stamp:020d}-{token}.jsonl"
        temporary = self.directory / f".{stamp}-{token}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(json_rows)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(final)
        _fsync_directory(self.directory)  # the rename itself must reach the disk
        return final

    def pending(self) -> list[Path]:
        """Spooled batches, oldest first."""
        # Names start with a time stamp, so name order is write order.
        return sorted(self.directory.glob("*.jsonl"))

    @staticmethod
    def token(path: Path) -> str:
        return path.stem.split("-", 1)[1]

    def size(self) -> int:
        return len(list(self.directory.glob("*.jsonl")))


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
