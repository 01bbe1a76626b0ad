"""A ClickHouse server or cluster over HTTP, through clickhouse-connect; same SQL as chDB."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect

from heliograph.analytics.executor import READ_SETTINGS, StoreUnavailable, decode_rows


class ServerExecutor:
    def __init__(self, url: str) -> None:
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

    def close(self) -> None:
        self._client.close()
