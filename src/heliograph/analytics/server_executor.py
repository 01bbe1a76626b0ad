"""A ClickHouse server or cluster over HTTP, through clickhouse-connect; same SQL as chDB.

SQL console queries run as a second, read-only user (`heliograph_console`, created by the
server-only migration 0008) whose password is derived from the main one, so no extra secret has
to be configured and no one without the main password can log in as it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlparse

import clickhouse_connect

from heliograph.analytics.executor import READ_SETTINGS, StoreUnavailable, decode_rows

CONSOLE_USER = "heliograph_console"


class ServerExecutor:
    def __init__(self, url: str) -> None:
        self._url = url
        self._console: ServerExecutor | None = None
        parts = urlparse(url)
        try:
            self._client = clickhouse_connect.get_client(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or (8443 if parts.scheme == "https" else 8123),
                username=parts.username or "default",
                password=parts.password or "",
                database=parts.path.lstrip("/") or "default",
                secure=parts.scheme == "https",
            )
        except Exception as error:
            raise StoreUnavailable(f"cannot reach ClickHouse: {error}") from error

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
        try:
            result = self._client.raw_query(
                sql,
                parameters=dict(params),
                settings={**READ_SETTINGS, **(settings or {})},
                fmt=fmt,
            )
        except Exception as error:
            raise StoreUnavailable(str(error)) from error
        return bytes(result)

    def command(self, sql: str) -> None:
        try:
            self._client.command(sql)
        except Exception as error:
            raise StoreUnavailable(str(error)) from error

    def insert(self, table: str, json_rows: bytes, dedup_token: str) -> None:
        try:
            self._client.raw_insert(
                table,
                insert_block=json_rows,
                fmt="JSONEachRow",
                settings={"insert_deduplication_token": dedup_token},
            )
        except Exception as error:
            raise StoreUnavailable(str(error)) from error

    @property
    def console_password(self) -> str:
        main = urlparse(self._url).password or ""
        return hmac.new(main.encode(), b"heliograph-console", hashlib.sha256).hexdigest()

    def migration_values(self) -> dict[str, str]:
        digest = hashlib.sha256(self.console_password.encode()).hexdigest()
        return {"console_password_sha256": digest}

    def for_console(self) -> ServerExecutor:
        """The same server, logged in as the console user (opened on first use)."""
        if self._console is None:
            parts = urlparse(self._url)
            netloc = f"{CONSOLE_USER}:{quote(self.console_password)}@{parts.hostname}"
            if parts.port:
                netloc += f":{parts.port}"
            self._console = ServerExecutor(parts._replace(netloc=netloc).geturl())
        return self._console

    def close(self) -> None:
        if self._console is not None:
            self._console.close()
        self._client.close()
