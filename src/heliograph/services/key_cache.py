"""`CachedKeyVerifier`: verifies API keys from memory, so a warm request never waits on the app DB.
A key seen once is looked up (on a thread); a background task re-checks every known key every
`REFRESH_S` and drops revoked ones, so a revocation reaches every process within seconds. No
SQLAlchemy here: the gateway process looks keys up with `appdb/lookups.py`, the API with
`KeyService`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from heliograph.domain.keys import Identity, bearer_token, hash_key

log = logging.getLogger("heliograph.keys")
NEGATIVE_TTL_S = 5.0
MAX_CACHED_KEYS = 100_000
MAX_REFUSED_KEYS = 10_000  # made-up keys; each refresh sweeps them on the event loop
REFRESH_S = 2.0  # revocation reaches every verifier within this, plus one query
CHECK_CHUNK = 500  # key hashes per query, well under every database's parameter limit


class KeyDirectory(Protocol):
    """Where keys are looked up: the app DB, through `KeyService` or `AppDbLookups`."""

    def lookup(self, key: str) -> Identity | None: ...

    def active(self, key_hashes: Sequence[str]) -> dict[str, Identity]: ...


@dataclass(slots=True)
class _Known:
    identity: Identity
    key_hash: str
    used_at: float


class CachedKeyVerifier:
    """Verifies `Bearer <key>` header values from memory. A key seen once is looked up in the app
    DB (on a thread); from then on it is answered from memory, and a background task re-checks
    every known key every `refresh_s`, dropping revoked ones. Keys unused for `ttl_s` are
    forgotten; unknown keys are refused from memory for `NEGATIVE_TTL_S`."""

    def __init__(self, keys: KeyDirectory, ttl_s: float, refresh_s: float = REFRESH_S) -> None:
        self._keys = keys
        self._ttl_s = ttl_s
        self._refresh_s = refresh_s
        self._known: dict[str, _Known] = {}
        self._refused: dict[str, float] = {}
        self._refresher: asyncio.Task[None] | None = None
        self._checked = asyncio.Event()  # set while no re-check is under way
        self._checked.set()

    async def verify(self, header_value: str | None) -> Identity | None:
        key = bearer_token(header_value)
        if key is None:
            return None
        now = time.monotonic()
        known = self._known.get(key)
        if known is not None:
            known.used_at = now
            return known.identity
        refused_until = self._refused.get(key)
        if refused_until is not None and refused_until > now:
            return None
        self._start_refreshing()
        return await self._look_up(key, now)

    async def _look_up(self, key: str, now: float) -> Identity | None:
        identity = await asyncio.to_thread(self._keys.lookup, key)
        # Bounded apart, so a flood of made-up keys never pushes out the keys in use.
        if len(self._refused) >= MAX_REFUSED_KEYS:
            self._refused.clear()
        if len(self._known) >= MAX_CACHED_KEYS:
            self._known.clear()
        if identity is None:
            self._refused[key] = now + NEGATIVE_TTL_S
        else:
            self._refused.pop(key, None)
            self._known[key] = _Known(identity, hash_key(key), now)
        return identity

    def forget(self) -> None:
        self._known.clear()
        self._refused.clear()

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None

    def _start_refreshing(self) -> None:
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh_forever(), name="key-refresh")

    async def _refresh_forever(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except Exception as error:
                # Keys already known keep working while the app DB is away; say so once.
                if not failing:
                    log.warning("cannot re-check API keys (%s); known keys stay valid", error)
                failing = True
            else:
                failing = False

    async def idle(self) -> None:
        """Return once no re-check is under way (tests await the one they started)."""
        await self._checked.wait()

    async def refresh(self) -> None:
        """Drop known keys that were revoked (or unused for `ttl_s`); keep the others' identity
        up to date."""
        self._checked.clear()
        try:
            await self._refresh()
        finally:
            self._checked.set()

    async def _refresh(self) -> None:
        now = time.monotonic()
        for key, known in list(self._known.items()):
            if now - known.used_at > self._ttl_s:
                del self._known[key]
        self._refused = {key: until for key, until in self._refused.items() if until > now}
        if not self._known:
            return
        checked = list(self._known.items())
        active = await asyncio.to_thread(self._active, [k.key_hash for _, k in checked])
        for key, known in checked:
            identity = active.get(known.key_hash)
            if identity is None:
                self._known.pop(key, None)
            else:
                known.identity = identity

    def _active(self, key_hashes: list[str]) -> dict[str, Identity]:
        found: dict[str, Identity] = {}
        for start in range(0, len(key_hashes), CHECK_CHUNK):
            found.update(self._keys.active(key_hashes[start : start + CHECK_CHUNK]))
        return found
