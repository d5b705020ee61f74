"""Ed25519 API keys and expiry: the public key forms a client may register, signatures
that verify only for their payload and key, and expiries that must be in the future."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from tradewind.services.accounts import signature_payload
from tradewind.services.api_key_signatures import (
    MAX_KEY_LIFETIME_MS,
    ApiKeyExpired,
    InvalidExpiry,
    InvalidPublicKey,
    check_expiry,
    ensure_not_expired,
    load_public_key,
    sign_ed25519,
    verify_ed25519,
)

NOW = 1_700_000_000_000


def keypair() -> tuple[Ed25519PrivateKey, bytes]:
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return private, raw


def test_public_key_forms() -> None:
    private, raw = keypair()
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert load_public_key(pem) == raw
    assert load_public_key(raw.hex()) == raw
    assert load_public_key(base64.b64encode(raw).decode()) == raw
    assert load_public_key(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw


@pytest.mark.parametrize(
    "bad",
    ["", "not a key", "00" * 31, "zz" * 32, base64.b64encode(b"x" * 33).decode(), 42, None],
)
def test_bad_public_keys_are_refused(bad: object) -> None:
    with pytest.raises(InvalidPublicKey):
        load_public_key(bad)


def test_an_rsa_key_is_not_an_ed25519_key() -> None:
    rsa_pem = (
        generate_private_key(public_exponent=65537, key_size=1024)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(InvalidPublicKey, match="not an Ed25519 key"):
        load_public_key(rsa_pem)


def test_signatures_verify_only_for_their_payload_and_key() -> None:
    private, raw = keypair()
    _, other = keypair()
    payload = signature_payload(NOW, "POST", "/api/v1/orders", b'{"symbol":"BTC-USDT"}')
    signature = sign_ed25519(private, payload)
    assert len(signature) == 128
    assert verify_ed25519(raw, payload, signature)
    assert verify_ed25519(raw, payload, base64.b64encode(bytes.fromhex(signature)).decode())
    assert not verify_ed25519(other, payload, signature)
    tampered = signature_payload(NOW, "POST", "/api/v1/orders", b'{"symbol":"ETH-USDT"}')
    assert not verify_ed25519(raw, tampered, signature)
    for junk in ("", "00" * 64, signature[:-2], "g" * 128, 7):
        assert not verify_ed25519(raw, payload, junk)


def test_expiry_must_be_future_and_bounded() -> None:
    assert check_expiry(None, NOW) is None
    assert check_expiry(NOW + 1, NOW) == NOW + 1
    assert check_expiry(NOW + MAX_KEY_LIFETIME_MS, NOW) == NOW + MAX_KEY_LIFETIME_MS
    for bad in (NOW, NOW - 1, NOW + MAX_KEY_LIFETIME_MS + 1, True, "1", 1.5):
        with pytest.raises(InvalidExpiry):
            check_expiry(bad, NOW)
    ensure_not_expired(None, NOW)
    ensure_not_expired(NOW + 1, NOW)
    with pytest.raises(ApiKeyExpired) as expired:
        ensure_not_expired(NOW, NOW)
    assert expired.value.status_hint == 401 and expired.value.code == "api_key_expired"
