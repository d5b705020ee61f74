"""AES-256-GCM sealing of small secrets (API-key secrets) under the server master key.

Invariants:
- a sealed value is ``version (1) | key fingerprint (8) | nonce (12) | ciphertext+tag``;
  it opens only with the same master key *and* the same context bytes, so a row copied
  to another key id, or tampered with, fails loudly instead of verifying;
- nonces are 96 random bits per seal; with one key this stays far below GCM's 2**32
  random-nonce limit for any plausible number of API keys;
- the master key file is created complete or not at all (private temporary file, then
  an atomic hard link), with mode 0600; an existing one that others may read is refused.

See docs/adr/0005-api-key-secrets.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENV_VAR = "TRADEWIND_SECRET_KEY"
KEY_FILE_NAME = "secret.key"
_VERSION = b"\x01"
_FINGERPRINT_LEN = 8
_NONCE_LEN = 12
_KEY_LEN = 32


class SecretBoxError(Exception):
    """A sealed value could not be opened: wrong key, wrong context or tampering."""


class MasterKeyError(Exception):
    """The master key is missing, malformed or stored unsafely."""


def fingerprint(key: bytes) -> bytes:
    """Public identifier of a master key (lets old keys be kept for rotation)."""
    return hashlib.sha256(b"tradewind/master-key-id:" + key).digest()[:_FINGERPRINT_LEN]


class AesGcmSecretBox:
    """``SecretBox`` port: seals with the first key, opens with any key given.

    Rotation: start with ``[new, old]``, re-seal every row, then drop ``old``.
    """

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise MasterKeyError("at least one master key is needed")
        for key in keys:
            if len(key) != _KEY_LEN:
                raise MasterKeyError("a master key is 32 bytes")
        self._sealer = (fingerprint(keys[0]), AESGCM(keys[0]))
        self._openers = {fingerprint(key): AESGCM(key) for key in keys}

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        fp, aead = self._sealer
        nonce = secrets.token_bytes(_NONCE_LEN)
        return _VERSION + fp + nonce + aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        head = 1 + _FINGERPRINT_LEN + _NONCE_LEN
        if len(sealed) < head + 16 or sealed[:1] != _VERSION:
            raise SecretBoxError("not a sealed value of a known version")
        aead = self._openers.get(bytes(sealed[1 : 1 + _FINGERPRINT_LEN]))
        if aead is None:
            raise SecretBoxError("sealed with a master key this server does not have")
        nonce = bytes(sealed[1 + _FINGERPRINT_LEN : head])
        try:
            return aead.decrypt(nonce, bytes(sealed[head:]), context)
        except InvalidTag as exc:
            raise SecretBoxError("sealed value failed authentication") from exc


def encode_key(key: bytes) -> str:
    """The text form of a master key: 64 hex digits."""
    return key.hex()


def decode_key(text: str) -> bytes:
    """Parse a master key given as 64 hex digits or as URL-safe base64 of 32 bytes."""
    value = text.strip()
    try:
        key = bytes.fromhex(value) if len(value) == 2 * _KEY_LEN else _b64(value)
    except (ValueError, binascii.Error) as exc:
        raise MasterKeyError("master key is neither 64 hex digits nor base64") from exc
    if len(key) != _KEY_LEN:
        raise MasterKeyError("a master key is 32 bytes")
    return key


def _b64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def load_master_keys(
    data_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> list[bytes]:
    """The master keys, current first: from ``TRADEWIND_SECRET_KEY`` (comma-separated,
    for rotation) if set, else ``DATA_DIR/secret.key``, created on first use.

    Distributed mode must set the variable (every API replica needs the same key);
    embedded mode may rely on the file in its data dir.
    """
    env = os.environ if environ is None else environ
    text = env.get(ENV_VAR, "").strip()
    if text:
        return [decode_key(part) for part in text.split(",") if part.strip()]
    if data_dir is None:
        raise MasterKeyError(f"set {ENV_VAR} or give a data directory for {KEY_FILE_NAME}")
    return [_load_or_create_key_file(Path(data_dir) / KEY_FILE_NAME)]


def _load_or_create_key_file(path: Path) -> bytes:
    if path.exists():
        return _read_key_file(path)
    # Write a private temporary file, then hard-link it into place: the link is atomic
    # and fails if the name exists, so two first starts agree on one complete key.
    key = secrets.token_bytes(_KEY_LEN)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, (encode_key(key) + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)
    except FileExistsError:
        return _read_key_file(path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return key


def _read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MasterKeyError(
            f"{path} is accessible by group or others (mode {oct(mode & 0o777)}); chmod 600 it"
        )
    return decode_key(path.read_text(encoding="ascii"))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
