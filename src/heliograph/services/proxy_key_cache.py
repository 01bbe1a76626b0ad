"""`ProxyKeyCache`: resolves proxy keys to the provider key they stand for, from memory. A key
seen once is looked up and its provider key decrypted (on a thread); a background task re-checks
every known key every `REFRESH_S`, so a revoked proxy key or a deleted provider key stops
working on every process within seconds. No SQLAlchemy: the gateway process uses it too."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from heliograph.appdb.proxy_lookups import ProxyKeyRow
from heliograph.domain.keys import PROXY_KEY_PREFIX, Identity, hash_key
from heliograph.services.key_cache import (
    CHECK_CHUNK,
    MAX_CACHED_KEYS,
    MAX_REFUSED_KEYS,
    NEGATIVE_TTL_S,
)
from heliograph.services.periodic import Periodic
from heliograph.services.vault import Sealed, Vault, VaultError

log = logging.getLogger("heliograph.proxy_keys")
MAX_KEY_CHARS = 256
REFRESH_S = 2.0


class ProxyKeyDirectory(Protocol):
    """Where proxy keys are looked up: `appdb/proxy_lookups.py`."""

    def lookup(self, key_hash: str) -> ProxyKeyRow | None: ...

    def active(self, key_hashes: Sequence[str]) -> dict[str, ProxyKeyRow]: ...


@dataclass(frozen=True, slots=True)
class Grant:
    """A proxy key's identity, provider and limits, and the provider's secret (never printed)."""

    identity: Identity
    provider_name: str
    provider_secret: str = field(repr=False)
    spend_limit_usd: float | None = None
    spend_period: str | None = None
    request_limit: int | None = None
    request_window_s: int | None = None


@dataclass(slots=True)
class _Known:
    grant: Grant
    row: ProxyKeyRow
    used_at: float


class ProxyKeyCache:
    def __init__(
        self, directory: ProxyKeyDirectory, vault: Vault, ttl_s: float, refresh_s: float = REFRESH_S
    ) -> None:
        self._directory = directory
        self._vault = vault
        self._ttl_s = ttl_s
        self._known: dict[str, _Known] = {}  # by key hash: the key itself is never kept
        self._refused: dict[str, float] = {}
        self._refresher = Periodic(
            self.refresh,
            refresh_s,
            "proxy-refresh",
            "cannot re-check proxy keys (%s); known keys stay valid",
        )

    async def resolve(self, key: str) -> Grant | None:
        if not key.startswith(PROXY_KEY_PREFIX) or len(key) > MAX_KEY_CHARS:
            return None
        key_hash = hash_key(key)
        now = time.monotonic()
        known = self._known.get(key_hash)
        if known is not None:
            known.used_at = now
            return known.grant
        refused_until = self._refused.get(key_hash)
        if refused_until is not None and refused_until > now:
            return None
        self._refresher.start()
        return await self._look_up(key_hash, now)

    async def _look_up(self, key_hash: str, now: float) -> Grant | None:
        known = await asyncio.to_thread(self._fetch, key_hash, now)
        if len(self._refused) >= MAX_REFUSED_KEYS:
            self._refused.clear()
        if len(self._known) >= MAX_CACHED_KEYS:
            self._known.clear()
        if known is None:
            self._refused[key_hash] = now + NEGATIVE_TTL_S
            return None
        self._refused.pop(key_hash, None)
        self._known[key_hash] = known
        return known.grant

    def _fetch(self, key_hash: str, now: float) -> _Known | None:
        row = self._directory.lookup(key_hash)
        if row is None:
            return None
        grant = self._open(row)
        return None if grant is None else _Known(grant, row, now)

    def _open(self, row: ProxyKeyRow) -> Grant | None:
        sealed = Sealed(row.ciphertext, row.nonce, row.secret_key_id)
        try:
            secret = self._vault.open(sealed, row.organization_id, row.provider_key_id)
        except VaultError as error:
            log.error("proxy key %s refused: %s", row.proxy_key_id, error)
            return None
        return Grant(
            Identity(row.organization_id, row.proxy_key_id, "w"),
            row.provider_name,
            secret,
            row.spend_limit_usd,
            row.spend_period,
            row.request_limit,
            row.request_window_s,
        )

    def forget(self) -> None:
        self._known.clear()
        self._refused.clear()

    async def close(self) -> None:
        await self._refresher.stop()

    async def refresh(self) -> None:
        """Drop known keys revoked (or whose provider key was deleted, or unused for `ttl_s`);
        take up a changed provider key or limit."""
        now = time.monotonic()
        for key_hash, known in list(self._known.items()):
            if now - known.used_at > self._ttl_s:
                del self._known[key_hash]
        self._refused = {key: until for key, until in self._refused.items() if until > now}
        if not self._known:
            return
        checked = list(self._known.items())
        current = await asyncio.to_thread(self._recheck, checked)
        for key_hash, _ in checked:
            now_known = current.get(key_hash)
            if now_known is None:
                self._known.pop(key_hash, None)
            elif key_hash in self._known:
                self._known[key_hash] = now_known

    def _recheck(self, checked: list[tuple[str, _Known]]) -> dict[str, _Known]:
        hashes = [key_hash for key_hash, _ in checked]
        rows: dict[str, ProxyKeyRow] = {}
        for start in range(0, len(hashes), CHECK_CHUNK):
            rows.update(self._directory.active(hashes[start : start + CHECK_CHUNK]))
        current: dict[str, _Known] = {}
        for key_hash, known in checked:
            row = rows.get(key_hash)
            if row is None:
                continue
            if row == known.row:
                current[key_hash] = known
                continue
            grant = self._open(row)  # re-sealed (rotation), replaced, or new limits
            if grant is not None:
                current[key_hash] = _Known(grant, row, known.used_at)
        return current
