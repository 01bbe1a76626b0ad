"""Heliograph API keys: their format, and how they are hashed (Helicone's scheme, so existing
Helicone key hashes can be imported as they are)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
KEY_PREFIX = "sk-helicone-"
PROXY_KEY_PREFIX = "sk-helicone-proxy-"  # a key standing for a stored provider key


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified key belongs to, and what it may do (`KeyPermissions`: rw, r or w)."""

    organization_id: str
    key_id: str
    permissions: str = "rw"

    @property
    def can_write(self) -> bool:
        """Whether the key may log through the gateway and send feedback."""
        return "w" in self.permissions

    @property
    def can_read(self) -> bool:
        return "r" in self.permissions


def generate_key(prefix: str = KEY_PREFIX) -> str:
    """A new key: `sk-helicone-` (or `prefix`) and four groups of seven base32 characters (140
    random bits)."""
    groups = ("".join(secrets.choice(BASE32) for _ in range(7)) for _ in range(4))
    return prefix + "-".join(groups)


def hash_key(key: str) -> str:
    """SHA-256 hex of `"Bearer " + key`, the value stored in `helicone_api_keys.api_key_hash`."""
    return hashlib.sha256(f"Bearer {key}".encode()).hexdigest()


def bearer_token(header_value: str | None) -> str | None:
    """The key in an `Authorization`-style header (`Bearer <key>`), or None."""
    if not header_value:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 256:
        return None
    return token


def display_prefix(key: str) -> str:
    """The part of a key shown in listings: enough to recognise it, useless to an attacker."""
    return key[: len(KEY_PREFIX) + 7]
