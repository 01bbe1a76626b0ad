"""Every setting, read once from `HELIOGRAPH_*` environment variables and passed down.

The README's configuration table lists the same names; `tests/test_docs.py` keeps them in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

PREFIX = "HELIOGRAPH_"
BASE_URL_SUFFIX = "_BASE_URL"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./heliograph-data")
    host: str = "127.0.0.1"
    gateway_port: int = 8787
    api_port: int = 8585
    database_url: str = ""  # default: SQLite file in data_dir
    clickhouse_url: str = ""  # default: embedded chDB in analytics_dir
    redis_url: str = ""  # default: rate limits kept in each gateway process
    analytics_dir: Path | None = None  # default: data_dir / "analytics"
    flush_rows: int = 20_000
    flush_interval_ms: int = 1000
    queue_max: int = 100_000
    max_request_bytes: int = 32 * 1024 * 1024
    max_stored_body_bytes: int = 8 * 1024 * 1024
    cache_max_bytes: int = 1024 * 1024 * 1024  # the in-process response cache, on disk
    upstream_timeout_s: float = 600.0
    upstream_connect_timeout_s: float = 10.0
    header_timeout_s: float = 10.0  # to send a whole request head (also the idle keep-alive)
    body_timeout_s: float = 30.0  # longest pause inside a request body
    max_headers: int = 100  # header fields per request, on both ports
    max_header_bytes: int = 8190  # longest request line or header field
    key_cache_ttl_s: float = 60.0
    stall_after_s: float = 30.0  # /healthz says stalled when a non-empty queue has not moved
    allowed_target_origins: tuple[str, ...] = ()
    log_level: str = "info"
    gateway_workers: int = 1  # gateway processes `serve` starts; 0 runs the gateway in-process
    api_url: str = ""  # where a gateway process reaches the API (default: this host's)
    ingest_url: str = ""  # where a gateway process ships logs (default: the API's)
    ingest_token: str = ""  # shared secret between gateway processes and the ingest endpoint
    gateway_worker: int = 0  # index of this gateway process (names its spool)
    provider_base_urls: Mapping[str, str] = field(default_factory=dict)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'app.db'}"

    @property
    def resolved_analytics_dir(self) -> Path:
        return self.analytics_dir or self.data_dir / "analytics"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def gateway_spool_dir(self) -> Path:
        return self.data_dir / "gateway-spool" / str(self.gateway_worker)

    @property
    def resolved_api_url(self) -> str:
        return (self.api_url or f"http://{self.host}:{self.api_port}").rstrip("/")

    @property
    def resolved_ingest_url(self) -> str:
        return self.ingest_url or f"{self.resolved_api_url}/v1/log/batch"

    @property
    def body_dir(self) -> Path:
        return self.data_dir / "bodies"


def _convert(kind: Any, raw: str) -> Any:
    if kind in (int, "int"):
        return int(raw)
    if kind in (float, "float"):
        return float(raw)
    if kind in (bool, "bool"):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind in (Path, "Path", "Path | None"):
        return Path(raw)
    if kind == "tuple[str, ...]":
        return tuple(item.strip().rstrip("/") for item in raw.split(",") if item.strip())
    return raw


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, with explicit `overrides` (CLI flags) winning."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for spec in fields(Settings):
        if spec.name == "provider_base_urls":
            continue
        raw = env.get(PREFIX + spec.name.upper())
        if raw is not None and raw != "":
            values[spec.name] = _convert(spec.type, raw)
    values["provider_base_urls"] = {
        name[len(PREFIX) : -len(BASE_URL_SUFFIX)].lower(): value
        for name, value in env.items()
        if name.startswith(PREFIX) and name.endswith(BASE_URL_SUFFIX) and value
    }
    values.update({key: value for key, value in overrides.items() if value is not None})
    return Settings(**values)
