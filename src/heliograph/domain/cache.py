"""Response caching as Helicone does it: which headers turn it on, how long entries live, and how
the cache key is built (seed, URL, body without ignored keys, cache and auth headers, bucket)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from heliograph.domain.errors import InvalidInput

DEFAULT_TTL_S = 7 * 24 * 3600
MAX_TTL_S = 365 * 24 * 3600
MAX_BUCKETS = 20
# Headers that make two requests different for the cache: cache settings and every credential,
# so entries are per organization key and per provider key; the encoding the client accepts.
KEY_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key", "accept-encoding")
# Unlike Helicone, the mode headers stay out of the key, so that a save-only request fills the
# entries that read-only and enabled requests read.
MODE_HEADERS = ("helicone-cache-enabled", "helicone-cache-save", "helicone-cache-read")
MAX_AGE = re.compile(r"(?:^|,)\s*(s-maxage|max-age)\s*=\s*(\d+)", re.IGNORECASE)


MAX_IGNORE_KEYS = 64


@dataclass(frozen=True, slots=True)
class CacheSettings:
    read: bool
    save: bool
    ttl_s: int = DEFAULT_TTL_S
    bucket_max_size: int = 1
    seed: str = ""
    ignore_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CachedResponse:
    status: int
    headers: list[tuple[str, str]]
    chunks: list[bytes]
    latency_ms: int
    request_id: str

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "status": self.status,
                "headers": self.headers,
                "chunks": [base64.b64encode(chunk).decode() for chunk in self.chunks],
                "latency_ms": self.latency_ms,
                "request_id": self.request_id,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> CachedResponse:
        document = orjson.loads(data)
        return cls(
            status=int(document["status"]),
            headers=[(str(name), str(value)) for name, value in document["headers"]],
            chunks=[base64.b64decode(chunk) for chunk in document["chunks"]],
            latency_ms=int(document["latency_ms"]),
            request_id=str(document["request_id"]),
        )


class InvalidCacheSettings(InvalidInput):
    """A `Helicone-Cache-*` header is out of range; the message says which."""

    code = "invalid_cache_settings"


def cache_settings(
    read: bool, save: bool, bucket_max_size: str, seed: str, ignore_keys: str, cache_control: str
) -> CacheSettings | None:
    """Settings from the request headers (`read` and `save` already include
    `Helicone-Cache-Enabled`), or None when caching is off for this request. Raises
    `InvalidCacheSettings`."""
    if not read and not save:
        return None
    return CacheSettings(
        read=read,
        save=save,
        ttl_s=_ttl(cache_control),
        bucket_max_size=_bucket_size(bucket_max_size),
        seed=seed,
        ignore_keys=_ignore_keys(ignore_keys),
    )


def _ttl(cache_control: str) -> int:
    ages = {name.lower(): int(value) for name, value in MAX_AGE.findall(cache_control)}
    ttl = ages.get("s-maxage", ages.get("max-age", DEFAULT_TTL_S))
    return max(1, min(ttl, MAX_TTL_S))


def _bucket_size(text: str) -> int:
    if not text.strip():
        return 1
    try:
        size = int(text)
    except ValueError:
        raise InvalidCacheSettings("Helicone-Cache-Bucket-Max-Size must be a number") from None
    if not 1 <= size <= MAX_BUCKETS:
        raise InvalidCacheSettings(
            f"Helicone-Cache-Bucket-Max-Size must be between 1 and {MAX_BUCKETS}, got {size}"
        )
    return size


def _ignore_keys(text: str) -> tuple[str, ...]:
    """Accepts the documented `a, b` form and Helicone's quoted `"a","b"` / JSON array form."""
    keys = _listed_keys(text)
    if len(keys) > MAX_IGNORE_KEYS:
        raise InvalidCacheSettings(
            f"Helicone-Cache-Ignore-Keys may list at most {MAX_IGNORE_KEYS} keys"
        )
    return keys


def _listed_keys(text: str) -> tuple[str, ...]:
    text = text.strip()
    if not text:
        return ()
    if text.startswith("["):
        try:
            keys = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise InvalidCacheSettings("Helicone-Cache-Ignore-Keys is not a valid list") from None
        return tuple(str(key) for key in keys) if isinstance(keys, list) else ()
    return tuple(part.strip().strip('"') for part in text.split(",") if part.strip())


def cache_keys(
    settings: CacheSettings, url: str, body: bytes, headers: Iterable[tuple[str, str]]
) -> list[str]:
    """One key per bucket slot."""
    digest = hashlib.sha256()
    digest.update(settings.seed.encode())
    digest.update(url.encode())
    digest.update(_body_for_key(body, settings.ignore_keys))
    keyed = sorted((name.lower(), value) for name, value in headers if _is_key_header(name))
    digest.update(orjson.dumps(keyed))
    base = digest.hexdigest()
    return [base if index == 0 else f"{base}:{index}" for index in range(settings.bucket_max_size)]


def _is_key_header(name: str) -> bool:
    lower = name.lower()
    if lower in MODE_HEADERS:
        return False
    return lower in KEY_HEADERS or lower.startswith("helicone-cache") or lower == "helicone-auth"


def _body_for_key(body: bytes, ignore_keys: tuple[str, ...]) -> bytes:
    if not ignore_keys:
        return body
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(document, dict):
        return body
    kept = {key: value for key, value in document.items() if key not in ignore_keys}
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)
