"""The embedded engine: chDB in this process, one connection per concurrent call.

chDB allows one data path per process, so executors are shared per path and reference-counted;
embedded mode therefore means a single server process (several processes need a server). One chDB
connection runs one statement at a time, but several connections to the same path run in
parallel (measured on chDB 4.4), so each call borrows an idle connection or opens another: reads
never wait on each other, and the writer never waits on a read. `embedded_store_in_use` tells
whether another process (a running `serve`) holds a data path.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import chdb

from heliograph.analytics.executor import (
    READ_SETTINGS,
    StoreUnavailable,
    decode_rows,
    escape_param,
    settings_clause,
)

_lock = threading.Lock()
_open: dict[str, tuple[ChdbExecutor, int]] = {}


class ChdbExecutor:
    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = str(path.resolve())
        self._pool_lock = threading.Lock()
        self._idle: list[Any] = [chdb.connect(self.path)]  # type: ignore[no-untyped-call]
        self._all: list[Any] = list(self._idle)
        self._closed = False

    def query(
        self, sql: str, params: Mapping[str, Any], settings: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return decode_rows(self.query_bytes(sql, params, "JSONEachRow", settings))

    def query_bytes(
        self,
        sql: str,
        params: Mapping[str, Any],
        fmt: str,
        settings: Mapping[str, Any] | None = None,
    ) -> bytes:
        statement = f"{sql}\n{settings_clause({**READ_SETTINGS, **(settings or {})})}"
        bound = {name: escape_param(value) for name, value in params.items()}
        result = self._run(statement, fmt, bound)
        return bytes(result.bytes()) if result is not None else b""

    def command(self, sql: str) -> None:
        self._run(sql, "CSV", {})

    def insert(self, table: str, json_rows: bytes, dedup_token: str) -> None:
        # The rows are JSON written by orjson, so they cannot escape the FORMAT clause.
        statement = (
            f"INSERT INTO {table} SETTINGS insert_deduplication_token='{dedup_token}' "
            f"FORMAT JSONEachRow\n{json_rows.decode('utf-8')}"
        )
        self._run(statement, "CSV", {})

    def _run(self, sql: str, fmt: str, params: Mapping[str, str]) -> Any:
        with self._connection() as connection:
            try:
                return connection.query(sql, fmt, params=dict(params))
            except Exception as error:  # chDB raises plain RuntimeError/ChdbError subclasses
                raise StoreUnavailable(str(error)) from error

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """An idle connection, or a new one: there are as many as calls ever ran at once, which
        the callers' thread pools bound."""
        with self._pool_lock:
            if self._closed:
                raise StoreUnavailable("the analytics store is closed")
            if self._idle:
                connection = self._idle.pop()
            else:
                connection = chdb.connect(self.path)  # type: ignore[no-untyped-call]
                self._all.append(connection)
        try:
            yield connection
        finally:
            with self._pool_lock:
                if self._closed:  # closed while this call ran
                    connection.close()
                else:
                    self._idle.append(connection)

    @property
    def connections(self) -> int:
        return len(self._all)

    def close(self) -> None:
        release_chdb(self)

    def _really_close(self) -> None:
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def open_chdb(path: Path) -> ChdbExecutor:
    """The process's executor for `path`; a second, different path is a clear error."""
    key = str(path.resolve())
    with _lock:
        if key in _open:
            executor, count = _open[key]
            _open[key] = (executor, count + 1)
            return executor
        if _open:
            other = next(iter(_open))
            raise StoreUnavailable(
                f"chDB is already open at {other}; one process can use one embedded store path"
            )
        executor = ChdbExecutor(path)
        _open[key] = (executor, 1)
        return executor


def release_chdb(executor: ChdbExecutor) -> None:
    with _lock:
        entry = _open.get(executor.path)
        if entry is None:
            return
        if entry[1] > 1:
            _open[executor.path] = (executor, entry[1] - 1)
            return
        del _open[executor.path]
    executor._really_close()


def embedded_store_in_use(analytics_dir: Path) -> bool:
    """Whether another process (a running `serve`) holds the embedded store at `analytics_dir`:
    chDB locks its `status` file while open, and a second process cannot open the path."""
    status = analytics_dir / "status"
    try:
        import fcntl
    except ImportError:  # not on this platform: opening the store will say so instead
        return False
    try:
        handle = status.open("rb")
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        with contextlib.suppress(OSError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return False
