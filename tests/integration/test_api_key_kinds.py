"""The SQL API-key repository keeps what Ed25519 keys and expiring keys need, on SQLite
and PostgreSQL: the key type, the raw public key (no secret) and the expiry."""

from __future__ import annotations

import os

import pytest

from tradewind.adapters.sql import Database, SqlApiKeyRepository, SqlUserRepository, upgrade_async
from tradewind.runtime.keycache import CachedApiKeyRepository

T0 = 1_700_000_000_000


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
