"""`ProviderKeySource`: an organization's own stored secret for a provider (bring your own key),
from memory. A pair (organization, provider) asked for once is looked up and its newest key
decrypted (on a thread), and so is the absence of a key; a background task re-checks every pair
held every `REFRESH_S`, so a deleted, replaced or added key takes effect on every process within
seconds. No SQLAlchemy: the gateway process uses it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from heliograph.appdb.provider_key_lookups import ProviderKeyRow
from heliograph.services.key_cache import CHECK_CHUNK, MAX_CACHED_KEYS, NEGATIVE_TTL_S
from heliograph.services.periodic import Periodic
from heliograph.services.vault import Sealed, Vault, VaultError

log = logging.getLogger("heliograph.provider_keys")
REFRESH_S = 2.0
MAX_NAME_CHARS = 64  # no stored organization id or provider name is longer
FOREVER = float("inf")

Pair = tuple[str, str]  # (organization id, upper-case provider name)


class ProviderKeyDirectory(Protocol):
    """Where provider keys are looked up: `appdb/provider_key_lookups.py`."""

    def newest(self, organization_id: str, provider_name: str) -> ProviderKeyRow | None: ...

    def rows(self, pairs: Sequence[Pair]) -> dict[Pair, ProviderKeyRow]: ...


@dataclass(slots=True)
class _Held:
    """What a pair has: its key and secret, no key (`row` None), or a key that does not open
    (`secret` None), which is looked up again after `expires_at`."""

    row: ProviderKeyRow | None
    secret: str | None = field(repr=False)
    used_at: float
    expires_at: float = FOREVER


class ProviderKeySource:
    def __init__(
        self,
        directory: ProviderKeyDirectory,
        vault: Vault,
        ttl_s: float,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self._directory = directory
        self._vault = vault
        self._ttl_s = ttl_s
        self._held: dict[Pair, _Held] = {}
        # One lookup per cold pair, however many requests ask for it at once.
        self._pending: dict[Pair, asyncio.Task[str | None]] = {}
        self._refresher = Periodic(
            self.refresh,
            refresh_s,
            "provider-key-refresh",
            "cannot re-check provider keys (%s); the keys held stay in use",
        )

    async def secret(self, organization_id: str, provider_name: str) -> str | None:
        """The organization's newest stored secret for the provider ("OPENAI", any case), or
        None when it has none (or it does not decrypt). Raises what the app DB raises when a
        pair not yet held cannot be looked up."""
        pair = (organization_id, provider_name.upper())
        if not all(0 < len(part) <= MAX_NAME_CHARS for part in pair):
            return None
        now = time.monotonic()
        held = self._held.get(pair)
        if held is not None and held.expires_at > now:
            held.used_at = now
            return held.secret
        self._refresher.start()
        task = self._pending.get(pair)
        if task is None:
            task = asyncio.create_task(self._look_up(pair), name="provider-key-lookup")
            self._pending[pair] = task
            task.add_done_callback(lambda _: self._pending.pop(pair, None))
        # Shielded: one caller going away does not cancel the lookup the others await.
        return await asyncio.shield(task)

    async def _look_up(self, pair: Pair) -> str | None:
        row, secret = await asyncio.to_thread(self._fetch, pair)
        now = time.monotonic()
        if len(self._held) >= MAX_CACHED_KEYS and pair not in self._held:
            self._held.clear()
        self._held[pair] = _Held(row, secret, now, _expiry(row, secret, now))
        return secret

    def _fetch(self, pair: Pair) -> tuple[ProviderKeyRow | None, str | None]:
        row = self._directory.newest(*pair)
        return row, None if row is None else self._open(row)

    def _open(self, row: ProviderKeyRow) -> str | None:
        sealed = Sealed(row.ciphertext, row.nonce, row.secret_key_id)
        try:
            return self._vault.open(sealed, row.organization_id, row.id)
        except VaultError as error:  # its message names the row and keys, never the secret
            log.error(
                "provider key %s (%s) of organization %s is treated as absent: %s",
                row.id,
                row.provider_name,
                row.organization_id,
                error,
            )
            return None

    def forget(self) -> None:
        self._held.clear()

    async def close(self) -> None:
        await self._refresher.stop()
        for task in list(self._pending.values()):
            task.cancel()

    async def refresh(self) -> None:
        """Forget pairs unused for `ttl_s` (and keys that did not open, once they expire); take
        up each other pair's current newest key: deleted, replaced, re-sealed or added."""
        now = time.monotonic()
        self._held = {
            pair: held
            for pair, held in self._held.items()
            if now - held.used_at <= self._ttl_s and held.expires_at > now
        }
        if not self._held:
            return
        checked = dict(self._held)
        changed = await asyncio.to_thread(
            self._recheck, [(pair, held.row) for pair, held in checked.items()]
        )
        now = time.monotonic()
        for pair, (row, secret) in changed.items():
            held = checked[pair]
            if self._held.get(pair) is held:  # not looked up again meanwhile, nor forgotten
                held.row, held.secret = row, secret
                held.expires_at = _expiry(row, secret, now)

    def _recheck(
        self, checked: list[tuple[Pair, ProviderKeyRow | None]]
    ) -> dict[Pair, tuple[ProviderKeyRow | None, str | None]]:
        """The pairs whose newest key is no longer the one held, with the new key and secret."""
        pairs = [pair for pair, _ in checked]
        current: dict[Pair, ProviderKeyRow] = {}
        for start in range(0, len(pairs), CHECK_CHUNK):
            current.update(self._directory.rows(pairs[start : start + CHECK_CHUNK]))
        changed: dict[Pair, tuple[ProviderKeyRow | None, str | None]] = {}
        for pair, row in checked:
            now_row = current.get(pair)
            if now_row != row:
                changed[pair] = (now_row, None if now_row is None else self._open(now_row))
        return changed


def _expiry(row: ProviderKeyRow | None, secret: str | None, now: float) -> float:
    """A key that does not open is looked up again soon (a fixed master key is taken up, and it
    is logged at most once per `NEGATIVE_TTL_S`); anything else is kept up to date by `refresh`."""
    return now + NEGATIVE_TTL_S if row is not None and secret is None else FOREVER
