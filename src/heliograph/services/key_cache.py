"""`CachedKeyVerifier`: verifies API keys from memory, so a warm request never waits on the app DB.
A key seen once is looked up (on a thread); a background task re-checks every known key every
`REFRESH_S` and drops revoked ones, so a revocation reaches every process within seconds. The same
task writes when keys were last used, in one batch, at most once a minute per key, so a request
never writes either. No SQLAlchemy here: the gateway process looks keys up with
`appdb/lookups.py`, the API with `KeyService`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from heliograph.domain.keys import Identity, bearer_token, hash_key
from heliograph.services.periodic import Periodic

log = logging.getLogger("heliograph.keys")
NEGATIVE_TTL_S = 5.0
MAX_CACHED_KEYS = 100_000
MAX_REFUSED_KEYS = 10_000  # made-up keys; each refresh sweeps them on the event loop
REFRESH_S = 2.0  # revocation reaches every verifier within this, plus one query
CHECK_CHUNK = 500  # key hashes per query, well under every database's parameter limit
TOUCH_EVERY_S = 60.0  # `last_used_at` is written at most this often per key


class KeyDirectory(Protocol):
    """Where keys are looked up: the app DB, through `KeyService` or `AppDbLookups`."""

    def lookup(self, key: str) -> Identity | None: ...

    def active(self, key_hashes: Sequence[str]) -> dict[str, Identity]: ...

    def touch(self, used: Mapping[str, datetime]) -> None:
        """Record when keys (by id) were last used; an older time never replaces a newer one."""
        ...


NEVER = float("-inf")


@dataclass(slots=True)
class _Known:
    identity: Identity
    key_hash: str
    used_at: float  # monotonic
    written_at: float = NEVER  # when its use was last written (monotonic)
    written_use: float = NEVER  # the use that write recorded


class CachedKeyVerifier:
    """Verifies `Bearer <key>` header values from memory. A key seen once is looked up in the app
    DB (on a thread); from then on it is answered from memory, and a background task re-checks
    every known key every `refresh_s`, dropping revoked ones, and writes the last use of keys
    used since their last write, at most every `touch_every_s`. Keys unused for `ttl_s` are
    forgotten; unknown keys are refused from memory for `NEGATIVE_TTL_S`."""

    def __init__(
        self,
        keys: KeyDirectory,
        ttl_s: float,
        refresh_s: float = REFRESH_S,
        touch_every_s: float = TOUCH_EVERY_S,
    ) -> None:
        self._keys = keys
        self._ttl_s = ttl_s
        self._touch_every_s = touch_every_s
        self._known: dict[str, _Known] = {}
        self._refused: dict[str, float] = {}
        self._refresher = Periodic(
            self.refresh,
            refresh_s,
            "key-refresh",
            "cannot re-check API keys (%s); known keys stay valid",
        )
        self._checked = asyncio.Event()  # set while no re-check is under way
        self._checked.set()
        self._touch_failing = False

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
        self._refresher.start()
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

    def forget_key(self, key_id: str) -> None:
        """Stop answering for the key `key_id` at once (it was deleted through this process)."""
        for key, known in list(self._known.items()):
            if known.identity.key_id == key_id:
                del self._known[key]

    async def close(self) -> None:
        """Stop re-checking; write the last uses not yet written."""
        if await self._refresher.stop():
            await self._touch(self._due(time.monotonic(), every_s=0.0))

    async def idle(self) -> None:
        """Return once no re-check is under way (tests await the one they started)."""
        await self._checked.wait()

    async def refresh(self) -> None:
        """Drop known keys that were revoked (or unused for `ttl_s`); keep the others' identity
        up to date; write the last uses that are due."""
        self._checked.clear()
        try:
            await self._refresh()
        finally:
            self._checked.set()

    async def _refresh(self) -> None:
        now = time.monotonic()
        due = self._due(now, self._touch_every_s)  # before forgetting keys, so no use is lost
        for key, known in list(self._known.items()):
            if now - known.used_at > self._ttl_s:
                del self._known[key]
        self._refused = {key: until for key, until in self._refused.items() if until > now}
        if self._known:
            checked = list(self._known.items())
            active = await asyncio.to_thread(self._active, [k.key_hash for _, k in checked])
            for key, known in checked:
                identity = active.get(known.key_hash)
                if identity is None:
                    self._known.pop(key, None)
                else:
                    known.identity = identity
        await self._touch(due)

    def _due(self, now: float, every_s: float) -> list[_Known]:
        """Known keys used since their last write, last written at least `every_s` ago (or
        about to be forgotten)."""
        return [
            known
            for known in self._known.values()
            if known.used_at > known.written_use
            and (now - known.written_at >= every_s or now - known.used_at > self._ttl_s)
        ]

    async def _touch(self, due: list[_Known]) -> None:
        """Write the uses of `due` in one batch. A failure is logged once and never stops
        verification: those uses are written on a later refresh."""
        if not due:
            return
        now, wall = time.monotonic(), time.time()
        used: dict[str, datetime] = {}
        for known in due:
            moment = datetime.fromtimestamp(wall - (now - known.used_at), UTC)
            used[known.identity.key_id] = max(moment, used.get(known.identity.key_id, moment))
        uses = [known.used_at for known in due]
        try:
            await asyncio.to_thread(self._keys.touch, used)
        except Exception as error:
            if not self._touch_failing:
                log.warning("cannot record when API keys were last used (%s)", error)
            self._touch_failing = True
            return
        self._touch_failing = False
        for known, use in zip(due, uses, strict=True):
            known.written_at, known.written_use = now, use

    def _active(self, key_hashes: list[str]) -> dict[str, Identity]:
        found: dict[str, Identity] = {}
        for start in range(0, len(key_hashes), CHECK_CHUNK):
            found.update(self._keys.active(key_hashes[start : start + CHECK_CHUNK]))
        return found
