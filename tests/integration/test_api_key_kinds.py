"""Ed25519 API keys and expiry: the SQL repository keeps the key type, the raw public
key (no secret) and the expiry on SQLite and PostgreSQL; over REST a key registered
with a public key signs orders with the private key, refuses replays whatever the
encoding, other keys' signatures and HMAC signatures, and stops at its expiry."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from tests.support.mail import verify_email
from tradewind.adapters.sql import Database, SqlApiKeyRepository, SqlUserRepository, upgrade_async
from tradewind.runtime.bootstrap import build_embedded
from tradewind.runtime.config import load_settings
from tradewind.runtime.keycache import CachedApiKeyRepository
from tradewind.services.accounts import sign_request, signature_payload
from tradewind.services.api_key_signatures import sign_ed25519

T0 = 1_700_000_000_000
PASSWORD = "correct horse battery staple"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_migrated_url"
    return str(request.getfixturevalue(fixture))


@pytest.mark.asyncio
async def test_ed25519_and_expiring_keys_round_trip(url: str) -> None:
    await upgrade_async(url)
    db = Database.from_url(url)
    try:
        user = await SqlUserRepository(db).add(
            email=f"k{os.getpid()}@example.com", password_hash="h", created_at_ms=T0
        )
        assert user is not None
        repo = CachedApiKeyRepository(SqlApiKeyRepository(db))
        public = bytes(range(32))
        await repo.add(
            key_id="ed" * 16,
            user_id=user.id,
            label="signer",
            permissions=frozenset({"trade"}),
            ip_allowlist=None,
            secret_sealed=b"",
            created_at_ms=T0,
            expires_at_ms=T0 + 86_400_000,
            key_type="ed25519",
            public_key=public,
        )
        await repo.add(
            key_id="hm" * 16,
            user_id=user.id,
            label="plain",
            permissions=frozenset({"read"}),
            ip_allowlist=("10.0.0.0/8",),
            secret_sealed=b"sealed",
            created_at_ms=T0,
        )
        ed = await repo.get("ed" * 16)
        assert ed is not None
        assert (ed.key_type, ed.public_key, ed.expires_at_ms) == (
            "ed25519",
            public,
            T0 + 86_400_000,
        )
        plain = await repo.get("hm" * 16)
        assert plain is not None
        assert (plain.key_type, plain.public_key, plain.expires_at_ms) == (
            "hmac",
            None,
            None,
        )
    finally:
        await db.dispose()


class ShiftClock:
    """The wall clock, which the test can move forward."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


def test_ed25519_keys_and_expiry_over_rest(tmp_path: Path) -> None:
    clock = ShiftClock()
    settings = load_settings(
        None,
        environ={},
        overrides={"data_dir": tmp_path, "demo": True, "demo_bot": False, "rate_limits": "off"},
    )
    exchange = build_embedded(settings, clock=clock)
    with TestClient(exchange.app) as client:
        email = "signer@example.com"
        body = {"email": email, "password": PASSWORD}
        assert client.post("/api/v1/auth/register", json=body).status_code == 201
        verify_email(client, email)
        token = client.post("/api/v1/auth/login", json=body).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        r = client.post(
            "/api/v1/demo/faucet", json={"asset": "USDT", "amount": "500"}, headers=bearer
        )
        assert r.status_code == 200, r.text

        private = Ed25519PrivateKey.generate()
        pem = (
            private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        expires = clock.now_ms() + 3_600_000
        r = client.post(
            "/api/v1/api-keys",
            json={
                "label": "ed",
                "permissions": ["trade"],
                "public_key": pem,
                "expires_at": expires,
            },
            headers=bearer,
        )
        assert r.status_code == 201, r.text
        key = r.json()
        assert key["key_type"] == "ed25519" and key["expires_at"] == expires
        assert "secret" not in key  # nothing to leak: the client holds the private key
        listed = client.get("/api/v1/api-keys", headers=bearer).json()
        assert listed[0]["key_type"] == "ed25519"

        order = json.dumps(
            {"symbol": "BTC-USDT", "side": "buy", "price": "100", "quantity": "0.1"}
        ).encode()

        def send(signature: str, ts: int) -> Any:
            return client.post(
                "/api/v1/orders",
                content=order,
                headers={
                    "TW-KEY": key["key_id"],
                    "TW-TIMESTAMP": str(ts),
                    "TW-SIGNATURE": signature,
                    "Content-Type": "application/json",
                },
            )

        ts = clock.now_ms()
        payload = signature_payload(ts, "POST", "/api/v1/orders", order)
        signature = sign_ed25519(private, payload)
        assert send(signature, ts).status_code == 201
        # the same signature again, as hex or as base64: one replay
        r = send(signature, ts)
        assert (r.status_code, r.json()["code"]) == (401, "replayed_signature")
        r = send(base64.b64encode(bytes.fromhex(signature)).decode(), ts)
        assert (r.status_code, r.json()["code"]) == (401, "replayed_signature")
        # signed by another private key, or as if it were an HMAC key
        ts = clock.now_ms()
        payload = signature_payload(ts, "POST", "/api/v1/orders", order)
        r = send(sign_ed25519(Ed25519PrivateKey.generate(), payload), ts)
        assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
        r = send(sign_request("0" * 64, ts, "POST", "/api/v1/orders", order), ts)
        assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")

        r = client.post(
            "/api/v1/api-keys",
            json={"label": "x", "permissions": ["read"], "public_key": "not a key"},
            headers=bearer,
        )
        assert (r.status_code, r.json()["code"]) == (400, "invalid_public_key")
        r = client.post(
            "/api/v1/api-keys",
            json={"label": "x", "permissions": ["read"], "expires_at": clock.now_ms() - 1},
            headers=bearer,
        )
        assert (r.status_code, r.json()["code"]) == (400, "invalid_expiry")

        clock.offset_ms += 3_600_001  # past the key's expiry
        ts = clock.now_ms()
        payload = signature_payload(ts, "POST", "/api/v1/orders", order)
        r = send(sign_ed25519(private, payload), ts)
        assert (r.status_code, r.json()["code"]) == (401, "api_key_expired")
