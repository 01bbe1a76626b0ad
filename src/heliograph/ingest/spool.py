"""The on-disk spool: batches the store could not take wait here, one file each, until it can.

A file is written to a temporary name and renamed, so a crash never leaves half a batch behind;
its name is the batch's deduplication token, so replaying it twice stores it once.
"""

from __future__ import annotations

import os
from pathlib import Path


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def write(self, token: str, json_rows: bytes) -> Path:
        final = self.directory / f"{token}.jsonl"
        temporary = self.directory / f".{token}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(json_rows)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(final)
        return final

    def pending(self) -> list[Path]:
        """Spooled batches, oldest first."""
        files = list(self.directory.glob("*.jsonl"))
        return sorted(files, key=lambda path: (path.stat().st_mtime, path.name))

    def size(self) -> int:
        return len(list(self.directory.glob("*.jsonl")))
