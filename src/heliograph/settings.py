"""Every setting, read once from `HELIOGRAPH_*` environment variables and passed down.

Each variable is parsed by its field's type (`_PARSERS`, keyed by the type itself, never by how
the annotation is spelled); a value that does not parse is an `InvalidSetting` naming the
variable. Standard library only: the gateway process reads these settings and must not load
pydantic (`tests/test_gateway_process.py`). The README's configuration table lists the same
names; `tests/test_docs.py` keeps them in step.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

PREFIX = "HELIOGRAPH_"
BASE_URL_SUFFIX = "_BASE_URL"


class InvalidSetting(ValueError):
    """A `HELIOGRAPH_*` variable holds a value its setting cannot take. (A `ValueError`, as the
    bare `int()` failure it replaces was; `settings` sits beside `domain` in the layers, so it
    cannot derive from `domain.errors`.)"""


@dataclass(frozen=True)
class Settings:  # fields that may hold a password or a secret are left out of its repr
    data_dir: Path = Path("./heliograph-data")
    host: str = "127.0.0.1"
    gateway_port: int = 8787
    api_port: int = 8585
    database_url: str = field(default="", repr=False)  # default: SQLite file in data_dir
    clickhouse_url: str = field(default="", repr=False)  # default: embedded chDB in analytics_dir
    redis_url: str = field(
        default="", repr=False
    )  # default: rate limits kept in each gateway process
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
    ingest_token: str = field(
        default="", repr=False
    )  # shared secret between gateway processes and the ingest endpoint
    gateway_worker: int = 0  # index of this gateway process (names its spool)
    # Accounts (README, "People, roles and keys").
    signup: str = "first-user"  # first-user, invite or open
    secret_key: str = field(
        default="", repr=False
    )  # encrypts provider keys; default: generated once into data_dir
    public_url: str = ""  # where people reach the API, for links (default: the API's URL)
    session_ttl_s: float = 14 * 24 * 3600.0
    invitation_ttl_s: float = 7 * 24 * 3600.0
    password_reset_ttl_s: float = 3600.0
    login_attempts_per_account: int = 10  # per `login_window_s`
    login_attempts_per_address: int = 50
    login_window_s: float = 900.0
    smtp_url: str = field(
        default="", repr=False
    )  # smtp://user:password@host:port (smtps:// for TLS); unset: no e-mail
    smtp_from: str = "heliograph@localhost"
    oidc_issuer: str = ""  # single sign-on, OpenID Connect: all three or none
    oidc_client_id: str = ""
    oidc_client_secret: str = field(default="", repr=False)
    oidc_domain_organization: str = ""  # "example.com=<organization id or name>"
    oidc_default_role: str = "member"
    # OpenTelemetry export (docs/opentelemetry-export.md): a base URL, `/v1/traces` is added.
    otlp_endpoint: str = field(default="", repr=False)  # unset: no export
    otlp_headers: str = field(
        default="", repr=False
    )  # name=value pairs, comma-separated, sent with each export; never logged
    otlp_include_bodies: bool = False  # add each body's first 4 KiB to its span
    # Webhooks and alerts (README, "Prompts, webhooks and alerts").
    allowed_webhook_origins: tuple[str, ...] = ()  # may be http:// or private
    webhook_retry_base_s: float = 10.0  # first retry after this; doubles, at most an hour
    webhook_give_up_s: float = 24 * 3600.0  # a delivery failing this long is given up
    alert_interval_s: float = 60.0  # how often alert rules are evaluated
    weekly_report: bool = False  # e-mail each organization's owners and admins a weekly report
    # The unified API (README, "One API for every model"): own providers, deployments, routing.
    config: Path | None = None  # a TOML file; unset: built-in providers only
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

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret.key"

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or self.resolved_api_url).rstrip("/")


def _flag(raw: str) -> bool:
    return raw.strip().lower() in ("1", "true", "yes", "on")  # anything else is off


def _origins(raw: str) -> tuple[str, ...]:
    return tuple(item.strip().rstrip("/") for item in raw.split(",") if item.strip())


# Type → (parser, what the parser expects, for the error message).
_PARSERS: dict[object, tuple[Callable[[str], Any], str]] = {
    str: (str, "text"),
    int: (int, "an integer"),
    float: (float, "a number"),
    bool: (_flag, "a flag"),
    Path: (Path, "a path"),
    Path | None: (Path, "a path"),
    tuple[str, ...]: (_origins, "a comma-separated list"),
}
# Every field read from one variable of its own; a field of a type without a parser fails here,
# at import, rather than on the first deployment that sets it.
_FIELD_PARSERS = {
    name: _PARSERS[kind]
    for name, kind in get_type_hints(Settings).items()
    if name != "provider_base_urls"
}


def _parse(name: str, raw: str) -> Any:
    parse, expected = _FIELD_PARSERS[name]
    try:
        return parse(raw)
    except ValueError:
        raise InvalidSetting(f"{PREFIX}{name.upper()} must be {expected}, not {raw!r}") from None


def _provider_base_urls(env: Mapping[str, str]) -> dict[str, str]:
    """`HELIOGRAPH_<NAME>_BASE_URL` variables, keyed by the lower-cased name."""
    return {
        name[len(PREFIX) : -len(BASE_URL_SUFFIX)].lower(): value
        for name, value in env.items()
        if name.startswith(PREFIX) and name.endswith(BASE_URL_SUFFIX) and value
    }


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from the environment (or only `environ`, when given), with explicit `overrides`
    (CLI flags) winning; an empty variable or a None override counts as unset."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name in _FIELD_PARSERS:
        raw = env.get(PREFIX + name.upper())
        if raw:
            values[name] = _parse(name, raw)
    values["provider_base_urls"] = _provider_base_urls(env)
    values.update({key: value for key, value in overrides.items() if value is not None})
    return Settings(**values)
