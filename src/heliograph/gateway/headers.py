"""Which headers cross the proxy, and what the `Helicone-*` request headers ask for: each value
read once into a typed option (`HeliconeOptions`), a refused one kept to be answered after the
key is verified.

Every value read from a header into the log is cleaned here (`clean_text`): aiohttp decodes
header bytes as UTF-8 with `surrogateescape`, so a byte that was not UTF-8 arrives as a lone
surrogate, which no log serializer accepts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from heliograph.domain.cache import CacheSettings, InvalidCacheSettings, cache_settings
from heliograph.domain.errors import InvalidInput
from heliograph.domain.keys import PROXY_KEY_PREFIX
from heliograph.domain.record import MAX_PROPERTIES, MAX_PROPERTY_NAME_CHARS, Attribution
from heliograph.domain.text import clean_text
from heliograph.gateway.retry import RetryPolicy, parse_retry

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


class InvalidOptions(InvalidInput):
    """A `Helicone-*` header breaks an input cap; answered once the key is verified."""

    code = "invalid_options"


@dataclass(slots=True)
class HeliconeOptions:
    """What the caller asked of the gateway through `Helicone-*` headers, each read once."""

    auth: str | None = None
    request_id: str | None = None
    attribution: Attribution = field(default_factory=Attribution)
    target_url: str | None = None
    openai_api_base: str | None = None  # Helicone's Azure style: the resource's origin
    fallbacks: str = ""
    rate_limit_policy: str = ""
    retry: RetryPolicy | None = None
    cache: CacheSettings | None = None
    moderation: bool = False
    # A header refused (the 400), answered once the key is verified; the cache's after planning.
    refused: InvalidOptions | None = None
    cache_refused: InvalidCacheSettings | None = None


def split_headers(
    items: Iterable[tuple[str, str]],
) -> tuple[list[tuple[str, str]], HeliconeOptions]:
    """Headers to forward upstream, and the Helicone options read from the rest, in one pass."""
    forward: list[tuple[str, str]] = []
    raw: dict[str, str] = {}  # the last value of each `Helicone-*` option
    properties: dict[str, str] = {}  # in the order they came
    refused: InvalidOptions | None = None
    cache_control: str | None = None  # the first, as `request.headers.get` gives it
    custom = 0
    for name, value in items:
        lower = name.lower()
        if lower.startswith("helicone-"):
            if lower.startswith(PROPERTY_PREFIX):
                custom += 1
                refusal = _add_property(properties, custom, lower[len(PROPERTY_PREFIX) :], value)
                refused = refusal or refused
            else:
                raw[lower] = value
                if lower in SESSION_PROPERTIES:
                    properties[SESSION_PROPERTIES[lower]] = clean_text(value)
        elif lower not in HOP_BY_HOP:
            forward.append((name, value))
            if lower == "cache-control" and cache_control is None:
                cache_control = value
    return forward, _options(raw, properties, refused, cache_control or "")


# Session headers are columns of their own and, as in Helicone, properties too.
SESSION_PROPERTIES = {
    "helicone-session-id": "Helicone-Session-Id",
    "helicone-session-path": "Helicone-Session-Path",
    "helicone-session-name": "Helicone-Session-Name",
}


def _add_property(
    properties: dict[str, str], count: int, key: str, value: str
) -> InvalidOptions | None:
    """Keep one custom property, or say why it is refused."""
    if count > MAX_PROPERTIES:
        return InvalidOptions(f"at most {MAX_PROPERTIES} Helicone-Property-* headers are accepted")
    if not key or len(key) > MAX_PROPERTY_NAME_CHARS:
        return InvalidOptions(
            f"a Helicone-Property-* name must have 1 to {MAX_PROPERTY_NAME_CHARS} characters"
        )
    # Helicone lower-cases custom property keys; kept so migrated queries still match.
    properties[clean_text(key)] = clean_text(value)
    return None


def _options(
    raw: dict[str, str],
    properties: dict[str, str],
    refused: InvalidOptions | None,
    cache_control: str,
) -> HeliconeOptions:
    """Each option typed from its header's last value, cleaned (the omit flags read as sent)."""
    text = {name: clean_text(value) for name, value in raw.items()}
    get = text.get
    request_id = raw.get("helicone-request-id")
    attribution = Attribution(
        user_id=get("helicone-user-id", ""),
        properties=properties,
        session_id=get("helicone-session-id", ""),
        session_path=get("helicone-session-path", ""),
        session_name=get("helicone-session-name", ""),
        omit_request="helicone-omit-request" in raw and _is_true(raw["helicone-omit-request"]),
        omit_response="helicone-omit-response" in raw and _is_true(raw["helicone-omit-response"]),
        model_override=get("helicone-model-override", ""),
    )
    caching = (
        "helicone-cache-enabled" in raw
        or "helicone-cache-read" in raw
        or "helicone-cache-save" in raw
    )
    cache, cache_refused = _cache(text, cache_control) if caching else (None, None)
    return HeliconeOptions(
        auth=get("helicone-auth"),
        request_id=None if request_id is None else valid_uuid(request_id),
        attribution=attribution,
        target_url=get("helicone-target-url"),
        openai_api_base=get("helicone-openai-api-base"),
        fallbacks=get("helicone-fallbacks", ""),
        rate_limit_policy=get("helicone-ratelimit-policy", ""),
        retry=_retry(text) if "helicone-retry-enabled" in raw else None,
        cache=cache,
        moderation=(
            "helicone-moderations-enabled" in text
            and _is_true(text["helicone-moderations-enabled"])
        ),
        refused=refused,
        cache_refused=cache_refused,
    )


def _retry(text: dict[str, str]) -> RetryPolicy | None:
    get = text.get
    return parse_retry(
        _is_true(get("helicone-retry-enabled", "")),
        get("helicone-retry-num", ""),
        get("helicone-retry-factor", ""),
        get("helicone-retry-min-timeout", ""),
        get("helicone-retry-max-timeout", ""),
    )


def _cache(
    text: dict[str, str], cache_control: str
) -> tuple[CacheSettings | None, InvalidCacheSettings | None]:
    get = text.get
    enabled = _is_true(get("helicone-cache-enabled", ""))
    read = enabled or _is_true(get("helicone-cache-read", ""))
    save = enabled or _is_true(get("helicone-cache-save", ""))
    try:
        settings = cache_settings(
            read,
            save,
            get("helicone-cache-bucket-max-size", ""),
            get("helicone-cache-seed", ""),
            get("helicone-cache-ignore-keys", ""),
            cache_control,
        )
    except InvalidCacheSettings as refused:
        return None, refused
    return settings, None


def _is_true(value: str) -> bool:
    return value.strip().lower() == "true"


def without_key(headers: list[tuple[str, str]], auth: str) -> list[tuple[str, str]]:
    """`headers` less any that carries the caller's Heliograph key (Helicone's manual-logger
    clients send it as `Authorization`): it must never reach a provider."""
    key = auth.strip()
    if key[:7].lower() == "bearer ":
        key = key[7:].strip()
    if not key:
        return headers
    return [(name, value) for name, value in headers if key not in value]


# Where providers take their key: OpenAI-style APIs `Authorization: Bearer`, these their own.
PROVIDER_KEY_HEADERS = {"ANTHROPIC": "x-api-key", "GOOGLE": "x-goog-api-key", "AZURE": "api-key"}
_KEY_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key"})


def proxy_key_in(headers: list[tuple[str, str]]) -> str | None:
    """The proxy key a caller without `Helicone-Auth` sent in a provider's own key header
    (`Authorization: Bearer`, `x-api-key`, `x-goog-api-key` or Azure's `api-key`), or None."""
    for name, value in headers:
        if name.lower() in _KEY_HEADERS:
            token = value.strip()
            if token[:7].lower() == "bearer ":
                token = token[7:].strip()
            if token.startswith(PROXY_KEY_PREFIX):
                return token
    return None


def with_provider_key(
    headers: list[tuple[str, str]], provider_name: str, secret: str
) -> list[tuple[str, str]]:
    """`headers` with every key header replaced by the provider's key, in its own header."""
    kept = [(name, value) for name, value in headers if name.lower() not in _KEY_HEADERS]
    header = PROVIDER_KEY_HEADERS.get(provider_name)
    kept.append((header, secret) if header else ("Authorization", f"Bearer {secret}"))
    return kept


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
