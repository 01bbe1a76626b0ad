"""Password hashing with Argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile). At
most `MAX_CONCURRENT_HASHES` hashes run at once, so a flood of sign-ins costs waiting, not
memory: each takes 64 MiB."""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from heliograph.domain.errors import InvalidInput

MIN_LENGTH = 8
MAX_LENGTH = 256
MAX_CONCURRENT_HASHES = 2

_hasher = PasswordHasher()
_slots = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)
# Verified against when the e-mail is unknown, so a miss takes as long as a wrong password.
_UNKNOWN = _hasher.hash("an unknown account's password")


class WeakPassword(InvalidInput):
    pass


def check_strength(password: str) -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise WeakPassword(f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_strength(password)
    with _slots:
        return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored` (None: no such account, or one without a password)."""
    if len(password) > MAX_LENGTH:
        return False
    with _slots:
        try:
            return _hasher.verify(stored or _UNKNOWN, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
