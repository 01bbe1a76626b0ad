"""Links to a prompt version's body that need no key for an hour: Heliograph's answer to the
presigned bucket URL (`s3_url`) Helicone hands out with every version, which its SDK fetches
without credentials."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable

from heliograph.services.vault import Sealed, Vault, VaultError

LINK_TTL_S = 3600  # as long as one of Helicone's presigned bucket URLs lives
LINK_ROW = "prompt-body-link"  # what a link's sealed text is bound to
NONCE_BYTES = 12


class PromptBodyLinks:
    """Links to a version's body that need no key for an hour, where Helicone hands out a
    presigned bucket URL (`s3_url`, which its SDK fetches without credentials). The
    organization, version and expiry are sealed by the vault, so a link can be neither forged
    nor pointed elsewhere; a deleted version's link answers 404."""

    def __init__(
        self,
        vault: Vault,
        base_url: str,
        ttl_s: float = LINK_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._vault = vault
        self._base_url = base_url.rstrip("/")
        self._ttl_s = ttl_s
        self._clock = clock

    def url(self, organization_id: str, version_id: str) -> str:
        expires = int(self._clock() + self._ttl_s)
        sealed = self._vault.seal(f"{organization_id} {version_id} {expires}", "", LINK_ROW)
        token = base64.urlsafe_b64encode(sealed.nonce + sealed.ciphertext).decode().rstrip("=")
        return f"{self._base_url}/v1/prompt-2025/shared-body/{sealed.key_id}.{token}"

    def opened(self, link_token: str) -> tuple[str, str] | None:
        """(organization id, version id) of a link's token while it is valid, else None."""
        key_id, _, token = link_token.partition(".")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            sealed = Sealed(raw[NONCE_BYTES:], raw[:NONCE_BYTES], key_id)
            organization_id, version_id, expires = self._vault.open(sealed, "", LINK_ROW).split()
        except (binascii.Error, ValueError, VaultError):
            return None
        if int(expires) < self._clock():
            return None
        return organization_id, version_id
