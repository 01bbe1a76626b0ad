"""The provider-key vault: AES-256-GCM under one master key, from `HELIOGRAPH_SECRET_KEY` or a
file generated once into the data directory (mode 0600). Each ciphertext names the key it was
sealed under and is bound to its organization and row, so it decrypts nowhere else. No
SQLAlchemy here: the gateway process opens the vault too."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from heliograph.domain.errors import HeliographError
from heliograph.settings import Settings

log = logging.getLogger("heliograph.vault")
KEY_BYTES = 32
NONCE_BYTES = 12
MIN_PASSPHRASE_CHARS = 32
HKDF_SALT = b"heliograph provider-key vault"
HKDF_INFO = b"aes-256-gcm master key"


class VaultError(HeliographError):
    """The vault cannot seal or open a secret: no usable master key, or the wrong one."""


@dataclass(frozen=True, slots=True)
class Sealed:
    ciphertext: bytes
    nonce: bytes
    key_id: str


def key_id_of(key: bytes) -> str:
    """What a row stores to name its master key: the first 16 hex of the key's SHA-256."""
    return hashlib.sha256(key).hexdigest()[:16]


def key_from_text(text: str) -> bytes:
    """A master key from its text: url-safe base64 of 32 bytes, or a passphrase of at least 32
    characters stretched with HKDF-SHA256."""
    text = text.strip()
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) == KEY_BYTES:
        return decoded
    if len(text) < MIN_PASSPHRASE_CHARS:
        raise VaultError(
            "HELIOGRAPH_SECRET_KEY must be url-safe base64 of 32 bytes or a passphrase of at "
            f"least {MIN_PASSPHRASE_CHARS} characters"
        )
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), KEY_BYTES, HKDF_SALT, HKDF_INFO).derive(text.encode())


def new_key_text() -> str:
    """A fresh master key, as url-safe base64 of 32 random bytes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def create_key_file(path: Path) -> bool:
    """Write a new master key to `path` (mode 0600) unless one is there; whether it wrote one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as file:
        file.write(new_key_text() + "\n")
        file.flush()
        os.fsync(file.fileno())
    return True


def stage_key_file(path: Path, text: str) -> Path:
    """`text` in a new file (mode 0600) beside `path`, to be renamed over it with `os.replace`
    once what it is for has committed."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")
        file.flush()
        os.fsync(file.fileno())
    return temporary


class Vault:
    """Seals and opens provider secrets. With the key in a file, the file is read again when a
    row names a key this vault does not hold (after `heliograph secrets rotate`), and before
    each seal, so a rotation reaches running processes without a restart."""

    def __init__(self, secret_key: str, key_file: Path) -> None:
        self._secret_key = secret_key.strip()  # parsed on first use: other commands need no key
        self._from_environment = bool(self._secret_key)
        self._key_file = key_file
        self._keys: dict[str, bytes] = {}  # by key id: the current one and any read before
        self._current = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        return cls(settings.secret_key, settings.secret_key_file)

    @property
    def from_environment(self) -> bool:
        return self._from_environment

    @property
    def key_file(self) -> Path:
        return self._key_file

    def ensure_key(self) -> None:
        """At start: the master key exists (generated into the data directory when neither the
        environment nor the file has one, and said so in one line)."""
        if self._from_environment:
            self._load()
            return
        if create_key_file(self._key_file):
            log.warning(
                "HELIOGRAPH_SECRET_KEY is not set: generated the provider-key secret key into %s"
                " (mode 0600); back it up with the app DB",
                self._key_file,
            )
        self._read_file()

    @property
    def key_id(self) -> str:
        self._load()
        return self._current

    def seal(self, plaintext: str, organization_id: str, row_id: str) -> Sealed:
        key_id = self.key_id
        return seal_with(self._keys[key_id], plaintext, organization_id, row_id)

    def open(self, sealed: Sealed, organization_id: str, row_id: str) -> str:
        if self._from_environment:
            self._load()
        key = self._keys.get(sealed.key_id)
        if key is None and not self._from_environment:
            self._read_file()
            key = self._keys.get(sealed.key_id)
        if key is None:
            raise VaultError(
                f"provider key {row_id} was encrypted under secret key {sealed.key_id}, but this"
                f" process holds {self._current or 'none'}: set HELIOGRAPH_SECRET_KEY to the key"
                " it was encrypted with (or restore secret.key)"
            )
        return open_with(key, sealed, organization_id, row_id)

    def _load(self) -> None:
        """The environment's key (once), or the file's as it is now."""
        if not self._from_environment:
            self._read_file()
        elif not self._keys:
            self._hold(key_from_text(self._secret_key))

    def _read_file(self) -> None:
        try:
            text = self._key_file.read_text()
        except FileNotFoundError:
            raise VaultError(
                f"no secret key: set HELIOGRAPH_SECRET_KEY or start the server once to create"
                f" {self._key_file}"
            ) from None
        self._hold(key_from_text(text))

    def _hold(self, key: bytes) -> None:
        self._current = key_id_of(key)
        self._keys[self._current] = key


def _aad(organization_id: str, row_id: str) -> bytes:
    return f"{organization_id}/{row_id}".encode()


def seal_with(key: bytes, plaintext: str, organization_id: str, row_id: str) -> Sealed:
    """Encrypt under `key` with a fresh 12-byte nonce, bound to the organization and row."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext.encode(), _aad(organization_id, row_id))
    return Sealed(ciphertext, nonce, key_id_of(key))


def open_with(key: bytes, sealed: Sealed, organization_id: str, row_id: str) -> str:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if sealed.key_id != key_id_of(key):
        raise VaultError(
            f"provider key {row_id} is not encrypted under secret key {key_id_of(key)}"
        )
    try:
        plain = AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, _aad(organization_id, row_id))
    except InvalidTag:
        raise VaultError(
            f"provider key {row_id} does not decrypt: it was altered or belongs to another row"
        ) from None
    return plain.decode()
