"""The gateway's read of an organization's own provider keys (bring your own key): its newest
live key for a provider, in plain SQL over `AppDbLookups` (no SQLAlchemy, so the gateway process
stays lean). A deleted key (`deleted_at` set) is never returned."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from heliograph.appdb.lookups import AppDbLookups


@dataclass(frozen=True, slots=True)
class ProviderKeyRow:
    """A sealed provider secret. Each seal draws a fresh nonce, so a replaced secret (or one
    re-sealed under a new master key) is a row that compares unequal."""

    id: str
    organization_id: str
    provider_name: str
    ciphertext: bytes
    nonce: bytes
    secret_key_id: str


_SELECT = (
    "SELECT id, organization_id, provider_name, ciphertext, nonce, secret_key_id FROM provider_keys"
)
# Newest first; the id breaks a tie in created_at the same way on every process.
_NEWEST_FIRST = "created_at DESC, id DESC"


class ProviderKeyLookups:
    def __init__(self, lookups: AppDbLookups) -> None:
        self._lookups = lookups

    def newest(self, organization_id: str, provider_name: str) -> ProviderKeyRow | None:
        """The organization's newest live key for `provider_name` (as stored: "OPENAI")."""
        mark = self._lookups.mark
        rows = self._lookups.query(
            f"{_SELECT} WHERE organization_id = {mark} AND provider_name = {mark}"
            f" AND deleted_at IS NULL ORDER BY {_NEWEST_FIRST} LIMIT 1",
            [organization_id, provider_name],
        )
        return _row(rows[0]) if rows else None

    def rows(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], ProviderKeyRow]:
        """The newest live key of each (organization id, provider name) in `pairs` that has
        one, in one query: an organization holds few keys, so its others are skipped here."""
        if not pairs:
            return {}
        wanted = set(pairs)
        organizations = sorted({organization_id for organization_id, _ in wanted})
        providers = sorted({provider_name for _, provider_name in wanted})
        mark = self._lookups.mark
        found = self._lookups.query(
            f"{_SELECT} WHERE organization_id IN ({', '.join([mark] * len(organizations))})"
            f" AND provider_name IN ({', '.join([mark] * len(providers))})"
            " AND deleted_at IS NULL"
            f" ORDER BY organization_id, provider_name, {_NEWEST_FIRST}",
            [*organizations, *providers],
        )
        newest: dict[tuple[str, str], ProviderKeyRow] = {}
        for found_row in found:
            pair = (found_row[1], found_row[2])
            if pair in wanted and pair not in newest:  # the first of each pair is its newest
                newest[pair] = _row(found_row)
        return newest


def _row(row: tuple[Any, ...]) -> ProviderKeyRow:
    return ProviderKeyRow(
        id=row[0],
        organization_id=row[1],
        provider_name=row[2],
        ciphertext=bytes(row[3]),
        nonce=bytes(row[4]),
        secret_key_id=row[5],
    )
