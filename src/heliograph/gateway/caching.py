"""Response caching on the hot path: look a request up in its bucket of slots, replay a hit as
the same bytes (streams included), and save a fresh 200 into the first empty slot afterwards.

A slot holds one response; with `Helicone-Cache-Bucket-Max-Size: N` the first N identical
requests go upstream and fill the slots, later ones get a random slot (Helicone's semantics).
Cache failures never fail a request: they count as a miss.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass

from heliograph.domain.cache import CachedResponse, CacheSettings, cache_keys
from heliograph.gateway.ports import ResponseCache

# A generator of our own: the global one belongs to the application (and to tests' generators).
SPREAD = random.Random()  # noqa: S311 - spreads work, guards nothing

log = logging.getLogger("heliograph.cache")


@dataclass(slots=True)
class CacheSlot:
    """The cache's answer for one request: a hit, or where to save the response."""

    settings: CacheSettings
    keys: list[str]
    hit: CachedResponse | None = None
    hit_index: int = 0
    free_index: int | None = None


class ResponseCacher:
    def __init__(self, store: ResponseCache, max_entry_bytes: int) -> None:
        self._store = store
        self._max_entry_bytes = max_entry_bytes

    async def lookup(
        self, settings: CacheSettings, url: str, body: bytes, headers: Iterable[tuple[str, str]]
    ) -> CacheSlot:
        try:
            keys = cache_keys(settings, url, body, headers)
        except (TypeError, UnicodeEncodeError):
            # A credential header holding bytes that were not UTF-8 has no exact text form, and a
            # lossy one could share another key's entries: such a request skips the cache.
            return CacheSlot(settings, [])
        slot = CacheSlot(settings, keys)
        try:
            values = await self._store.get_many(slot.keys)
        except Exception as error:
            log.warning("cache unavailable, treating as a miss: %s", error)
            return slot
        empty = [index for index, value in enumerate(values) if value is None]
        slot.free_index = empty[0] if empty else None
        if settings.read and not empty:
            slot.hit_index = SPREAD.randrange(len(values))
            value = values[slot.hit_index]
            assert value is not None
            slot.hit = CachedResponse.decode(value)
        return slot

    async def save(self, slot: CacheSlot, entry: CachedResponse) -> None:
        if (
            slot.free_index is None
            or sum(len(chunk) for chunk in entry.chunks) > self._max_entry_bytes
        ):
            return
        try:
            await self._store.set(slot.keys[slot.free_index], entry.encode(), slot.settings.ttl_s)
        except Exception as error:
            log.warning("could not save a response to the cache: %s", error)
