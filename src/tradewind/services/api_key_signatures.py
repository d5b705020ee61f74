"""API-key kinds beyond HMAC: Ed25519 public keys, and key expiry (issue 5 item 6).

Why Ed25519: with an HMAC key the server must hold the secret (sealed, ADR 0005) and a
compromised server process sees it; with an Ed25519 key the client keeps the private
key and the server stores only the public key, which cannot sign. The signed bytes are
the same as for HMAC (``timestamp + METHOD + path_with_query + body``, DESIGN §6), so
the receive window, the replay cache and the IP allowlist apply unchanged.

Invariants:
- a public key is accepted only if it decodes to a valid 32-byte Ed25519 key (PEM
  ``SubjectPublicKeyInfo``, or the raw key in base64 or hex); it is stored raw;
- a signature is 64 bytes, sent as 128 hex digits or standard/URL-safe base64; any
  other form is ``invalid_signature`` before any cryptography runs;
- an expiry is a time in the future, at most ``MAX_KEY_LIFETIME_MS`` ahead; a key past
  its expiry is refused like a revoked one (``api_key_expired``).
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from tradewind.services.errors import ServiceError

KEY_TYPES = ("hmac", "ed25519")
MAX_KEY_LIFETIME_MS = 2 * 365 * 24 * 3600 * 1000
_HEX = re.compile(r"[0-9a-fA-F]+")


class InvalidPublicKey(ServiceError):
    code = "invalid_public_key"
    status_hint = 400
    default_message = "public_key must be an Ed25519 public key (PEM, or 32 bytes in base64 or hex)"


class InvalidExpiry(ServiceError):
    code = "invalid_expiry"
    status_hint = 400
    default_message = "expires_at must be a future time (ms) at most two years ahead"


class ApiKeyExpired(ServiceError):
    code = "api_key_expired"
    status_hint = 401
    default_message = "the API key has expired"


def load_public_key(text: object) -> bytes:
    """The raw 32 bytes of an Ed25519 public key given as PEM, base64 or hex."""
    if not isinstance(text, str) or not 0 < len(text) <= 1024:
        raise InvalidPublicKey()
    stripped = text.strip()
    raw: bytes | None = None
    if stripped.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(stripped.encode("ascii"))
        except (ValueError, TypeError, UnicodeEncodeError):
            raise InvalidPublicKey() from None
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidPublicKey("public_key is not an Ed25519 key")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    elif len(stripped) == 64 and _HEX.fullmatch(stripped):
        raw = bytes.fromhex(stripped)
    else:
        raw = _b64(stripped)
    if raw is None or len(raw) != 32:
        raise InvalidPublicKey()
    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise InvalidPublicKey() from None
    return raw


def _b64(text: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional, nothing else tolerated."""
    try:
        padded = (text + "=" * (-len(text) % 4)).encode("ascii")
    except UnicodeEncodeError:
        return None
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def signature_bytes(text: object) -> bytes | None:
    """The 64 bytes of an Ed25519 signature sent as hex or base64, or ``None``."""
    if not isinstance(text, str) or len(text) > 200:
        return None
    if len(text) == 128 and _HEX.fullmatch(text):
        return bytes.fromhex(text)
    raw = _b64(text)
    return raw if raw is not None and len(raw) == 64 else None


def verify_ed25519(public_key: bytes, payload: bytes, signature: object) -> bool:
    raw = signature_bytes(signature)
    if raw is None:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(raw, payload)
    except (CryptoInvalidSignature, ValueError):
        return False
    return True


def sign_ed25519(private_key: Ed25519PrivateKey, payload: bytes) -> str:
    """Client side (tests, bots, SDKs): the hex signature of ``payload``."""
    return private_key.sign(payload).hex()


def check_expiry(expires_at_ms: object, now_ms: int) -> int | None:
    """Validate a requested expiry (``None``: the key does not expire)."""
    if expires_at_ms is None:
        return None
    if isinstance(expires_at_ms, bool) or not isinstance(expires_at_ms, int):
        raise InvalidExpiry()
    if not now_ms < expires_at_ms <= now_ms + MAX_KEY_LIFETIME_MS:
        raise InvalidExpiry()
    return expires_at_ms


def ensure_not_expired(expires_at_ms: int | None, now_ms: int) -> None:
    if expires_at_ms is not None and now_ms >= expires_at_ms:
        raise ApiKeyExpired()
