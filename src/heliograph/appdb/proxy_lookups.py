"""The gateway's read of proxy keys: each active proxy key by hash, with its organization, its
limits and the sealed provider key it stands for, in plain SQL over `AppDbLookups` (no
SQLAlchemy, so the gateway process stays lean). A revoked proxy key or a deleted provider key
is not returned."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from heliograph.appdb.lookups import AppDbLookups


@dataclass(frozen=True, slots=True)
class ProxyKeyRow:
    proxy_key_hash: str
    proxy_key_id: str
    organization_id: str
    provider_key_id: str
    provider_name: str
    ciphertext: bytes
    nonce: bytes
    secret_key_id: str
    spend_limit_usd: float | None
    spend_period: str | None
    request_limit: int | None
    request_window_s: int | None


_COLUMNS = (
    "p.proxy_key_hash, p.id, p.organization_id, k.id, k.provider_name, k.ciphertext, k.nonce,"
    " k.secret_key_id, p.spend_limit_usd, p.spend_period, p.request_limit, p.request_window_s"
)


class ProxyKeyLookups:
    def __init__(self, lookups: AppDbLookups) -> None:
        self._lookups = lookups

    def lookup(self, key_hash: str) -> ProxyKeyRow | None:
        return self.active([key_hash]).get(key_hash)

    def active(self, key_hashes: Sequence[str]) -> dict[str, ProxyKeyRow]:
        """The rows behind those of `key_hashes` still usable, by hash."""
        if not key_hashes:
            return {}
        marks = ", ".join([self._lookups.mark] * len(key_hashes))
        rows = self._lookups.query(
            f"SELECT {_COLUMNS} FROM helicone_proxy_keys p JOIN provider_keys k"
            " ON k.id = p.provider_key_id AND k.organization_id = p.organization_id"
            f" WHERE p.proxy_key_hash IN ({marks})"
            " AND p.revoked_at IS NULL AND k.deleted_at IS NULL",
            list(key_hashes),
        )
        return {row[0]: _row(row) for row in rows}


def _row(row: tuple[Any, ...]) -> ProxyKeyRow:
    return ProxyKeyRow(
        proxy_key_hash=row[0],
        proxy_key_id=row[1],
        organization_id=row[2],
        provider_key_id=row[3],
        provider_name=row[4],
        ciphertext=bytes(row[5]),
        nonce=bytes(row[6]),
        secret_key_id=row[7],
        spend_limit_usd=None if row[8] is None else float(row[8]),
        spend_period=row[9],
        request_limit=None if row[10] is None else int(row[10]),
        request_window_s=None if row[11] is None else int(row[11]),
    )
