"""The quarantine: what the writer cannot store (a record it cannot build or serialize, a row the
store refuses, a spooled line it cannot read) is set aside here, never retried and never dropped,
so it cannot stop the records around it. One JSON line per item in `quarantine/YYYY-MM-DD.jsonl`:
when, what kind, why, and the raw bytes in base64."""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import Counter

from heliograph.domain.text import clean_text

log = logging.getLogger("heliograph.ingest")
MAX_REASON_CHARS = 500


class Quarantine:
    def __init__(self, directory: Path, counter: Counter) -> None:
        self.directory = directory
        self._counter = counter
        self._lock = threading.Lock()  # the writer's threads may quarantine at the same time

    def add(self, kind: str, reason: object, data: bytes) -> None:
        """Keep `data` with the reason it could not be stored; one warning line in the log."""
        why = clean_text(str(reason))[:MAX_REASON_CHARS]
        entry = {
            "at": datetime.now(UTC).isoformat(),
            "kind": kind,
            "reason": why,
            "data_base64": base64.b64encode(data).decode(),
        }
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(self.directory / f"{_today()}.jsonl", "ab") as handle:
                handle.write(orjson.dumps(entry) + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
        self._counter.labels(kind).inc()
        log.warning("quarantined a %s of %d bytes: %s", kind, len(data), why[:200])

    def entries(self) -> list[dict[str, Any]]:
        """Everything quarantined so far, oldest first (for operators and tests)."""
        found: list[dict[str, Any]] = []
        for path in sorted(self.directory.glob("*.jsonl")):
            found += [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
        return found


def portable(value: Any) -> Any:
    """`value` (a record, a row) as JSON-ready data that keeps every byte: bytes and strings
    that are not valid UTF-8 become `{"base64": ...}`, times their ISO form."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            spec.name: portable(getattr(value, spec.name)) for spec in dataclasses.fields(value)
        }
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogatepass")
            return {"base64": base64.b64encode(raw).decode()}
        return value
    if isinstance(value, dict):
        return [[portable(key), portable(item)] for key, item in value.items()]
    if isinstance(value, list | tuple):
        return [portable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        return str(value)  # beyond what JSON numbers keep exactly
    if value is None or isinstance(value, bool | int | float):
        return value
    return repr(value)


def portable_bytes(value: Any) -> bytes:
    return orjson.dumps(portable(value))


def _today() -> str:
    return datetime.now(UTC).date().isoformat()
