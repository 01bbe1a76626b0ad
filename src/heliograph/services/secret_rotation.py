"""Moving every secret the vault sealed (provider keys, webhook signing keys, alert channels)
under a new secret key in one transaction, audited per organization: the work behind
`heliograph secrets rotate`."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb.models import Alert, ProviderKey, Webhook
from heliograph.services.audit import Actor, AuditLog
from heliograph.services.vault import Sealed, Vault, key_id_of, seal_with


@dataclass(frozen=True)
class SealedColumns:
    """Where one table keeps its sealed secret; the organization and row id are the associated
    data of every seal, and `secret_key_id` names the key, in each of them."""

    kind: str  # the count's name in the audit line and the command's output
    model: type[Any]
    ciphertext: str
    nonce: str


SEALED = (
    SealedColumns("provider_keys", ProviderKey, "ciphertext", "nonce"),
    SealedColumns("webhooks", Webhook, "hmac_ciphertext", "hmac_nonce"),
    SealedColumns("alerts", Alert, "channels_ciphertext", "channels_nonce"),
)


def reseal_all(
    sessions: sessionmaker[Session], vault: Vault, audit: AuditLog, new_key: bytes, actor: Actor
) -> Counter[str]:
    """Every sealed secret (deleted provider keys too) opened with the vault's keys and sealed
    under `new_key`, in one transaction: either all move or none. The numbers moved, by kind."""
    new_id = key_id_of(new_key)
    moved: dict[str, Counter[str]] = defaultdict(Counter)
    with sessions.begin() as session:
        for columns in SEALED:
            for row in session.scalars(select(columns.model).with_for_update()):
                if row.secret_key_id != new_id:
                    _reseal(row, columns, vault, new_key)
                    moved[row.organization_id][columns.kind] += 1
        for organization_id, counts in moved.items():
            details = {"secret_key_id": new_id, **counts}
            audit.record(actor, "secrets.rotate", organization_id, details=details, session=session)
    return sum(moved.values(), Counter())


def _reseal(row: Any, columns: SealedColumns, vault: Vault, new_key: bytes) -> None:
    ciphertext, nonce = getattr(row, columns.ciphertext), getattr(row, columns.nonce)
    sealed = Sealed(ciphertext, nonce, row.secret_key_id)
    secret = vault.open(sealed, row.organization_id, row.id)
    resealed = seal_with(new_key, secret, row.organization_id, row.id)
    setattr(row, columns.ciphertext, resealed.ciphertext)
    setattr(row, columns.nonce, resealed.nonce)
    row.secret_key_id = resealed.key_id
