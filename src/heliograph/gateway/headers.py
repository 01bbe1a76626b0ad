"""Which headers cross the proxy, and what the `Helicone-*` request headers ask for.

Every value read from a header into the log is cleaned here (`clean_text`): aiohttp decodes
header bytes as UTF-8 with `surrogateescape`, so a byte that was not UTF-8 arrives as a lone
surrogate, which no log serializer accepts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from heliograph.domain.text import clean_text

# RFC 9110 §7.6.1 hop-by-hop headers, plus the ones the HTTP client sets itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
PROPERTY_PREFIX = "helicone-property-"
MAX_PROPERTIES = 64
MAX_PROPERTY_NAME_CHARS = 256


@dataclass(slots=True)
class HeliconeOptions:
    """What the caller asked of the gateway through `Helicone-*` headers."""

    auth: str | None = None
    request_id: str | None = None
    user_id: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    session_id: str = ""
    session_path: str = ""
    session_name: str = ""
    omit_request: bool = False
    omit_response: bool = False
    model_override: str = ""
    target_url: str | None = None
    rate_limit_policy: str = ""
    retry_enabled: str = ""
    retry_num: str = ""
    retry_factor: str = ""
    retry_min_timeout: str = ""
    retry_max_timeout: str = ""
    fallbacks: str = ""
    cache_enabled: str = ""
    cache_save: str = ""
    cache_read: str = ""
    cache_bucket_max_size: str = ""
    cache_seed: str = ""
    cache_ignore_keys: str = ""
    moderations_enabled: str = ""
    custom_properties: int = 0
    # The first input cap a header broke (the 400's message); checked once the key is verified.
    refused: str = ""


def split_headers(
    items: Iterable[tuple[str, str]],
) -> tuple[list[tuple[str, str]], HeliconeOptions]:
    """Headers to forward upstream, and the Helicone options read from the rest, in one pass."""
    forward: list[tuple[str, str]] = []
    options = HeliconeOptions()
    for name, value in items:
        lower = name.lower()
        if lower.startswith("helicone-"):
            _read_option(options, lower, value)
        elif lower not in HOP_BY_HOP:
            forward.append((name, value))
    return forward, options


TEXT_OPTIONS = {
    "helicone-auth": "auth",
    "helicone-user-id": "user_id",
    "helicone-model-override": "model_override",
    "helicone-target-url": "target_url",
    "helicone-ratelimit-policy": "rate_limit_policy",
    "helicone-retry-enabled": "retry_enabled",
    "helicone-retry-num": "retry_num",
    "helicone-retry-factor": "retry_factor",
    "helicone-retry-min-timeout": "retry_min_timeout",
    "helicone-retry-max-timeout": "retry_max_timeout",
    "helicone-fallbacks": "fallbacks",
    "helicone-cache-enabled": "cache_enabled",
    "helicone-cache-save": "cache_save",
    "helicone-cache-read": "cache_read",
    "helicone-cache-bucket-max-size": "cache_bucket_max_size",
    "helicone-cache-seed": "cache_seed",
    "helicone-cache-ignore-keys": "cache_ignore_keys",
    "helicone-moderations-enabled": "moderations_enabled",
}
FLAG_OPTIONS = {"helicone-omit-request": "omit_request", "helicone-omit-response": "omit_response"}
# Session headers are columns of their own and, as in Helicone, properties too.
SESSION_OPTIONS = {
    "helicone-session-id": ("session_id", "Helicone-Session-Id"),
    "helicone-session-path": ("session_path", "Helicone-Session-Path"),
    "helicone-session-name": ("session_name", "Helicone-Session-Name"),
}


def _read_option(options: HeliconeOptions, name: str, value: str) -> None:
    if name.startswith(PROPERTY_PREFIX):
        _read_property(options, name[len(PROPERTY_PREFIX) :], value)
    elif name in TEXT_OPTIONS:
        setattr(options, TEXT_OPTIONS[name], clean_text(value))
    elif name in FLAG_OPTIONS:
        setattr(options, FLAG_OPTIONS[name], value.strip().lower() == "true")
    elif name in SESSION_OPTIONS:
        attribute, property_name = SESSION_OPTIONS[name]
        value = clean_text(value)
        setattr(options, attribute, value)
        options.properties[property_name] = value
    elif name == "helicone-request-id":
        options.request_id = valid_uuid(value)


def _read_property(options: HeliconeOptions, key: str, value: str) -> None:
    # Helicone lower-cases custom property keys; kept so migrated queries still match.
    options.custom_properties += 1
    if options.custom_properties > MAX_PROPERTIES:
        options.refused = f"at most {MAX_PROPERTIES} Helicone-Property-* headers are accepted"
    elif not key or len(key) > MAX_PROPERTY_NAME_CHARS:
        options.refused = (
            f"a Helicone-Property-* name must have 1 to {MAX_PROPERTY_NAME_CHARS} characters"
        )
    else:
        options.properties[clean_text(key)] = clean_text(value)


def without_key(headers: list[tuple[str, str]], auth: str) -> list[tuple[str, str]]:
    """`headers` less any that carries the caller's Heliograph key (Helicone's manual-logger
    clients send it as `Authorization`): it must never reach a provider."""
    key = auth.strip()
    if key[:7].lower() == "bearer ":
        key = key[7:].strip()
    if not key:
        return headers
    return [(name, value) for name, value in headers if key not in value]


def valid_uuid(value: str) -> str | None:
    """The canonical form of a caller-chosen request id, or None when it is not a UUID."""
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


def response_headers(items: Iterable[tuple[str, str]], body_changed: bool) -> list[tuple[str, str]]:
    """Upstream response headers to pass on; the length goes when the gateway edits the body."""
    dropped = HOP_BY_HOP if body_changed else HOP_BY_HOP - {"content-length"}
    return [(name, value) for name, value in items if name.lower() not in dropped]
