"""ADR 0045 on a real PostgreSQL: two API replicas' auth caches, each on its own
database connection and ``LISTEN`` connection; a revocation or a freeze written through
one replica's SQL adapter reaches the other's cache by ``NOTIFY`` at commit."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import make_url

from tradewind.adapters.sql import Database, SqlApiKeyRepository, SqlUserRepository
from tradewind.adapters.sql.admin import SqlAdminStore
from tradewind.adapters.sql.auth_notify import AUTH_CHANNEL
from tradewind.runtime.authcache import AuthInvalidations, ListenedApiKeyRepository

T0 = 1_700_000_000_000


@dataclass
class Replica:
    db: Database
    auth: AuthInvalidations
    keys: ListenedApiKeyRepository
    admin: SqlAdminStore
    heard: asyncio.Event


@asynccontextmanager
async def replica(url: str) -> AsyncIterator[Replica]:
    import asyncpg  # type: ignore[import-untyped]

    db = Database.from_url(url)
    auth = AuthInvalidations()
    heard = asyncio.Event()

    def on_notify(_c: object, _p: object, _ch: object, payload: object) -> None:
        auth.notified(payload if isinstance(payload, str) else None)
        heard.set()

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.add_listener(AUTH_CHANNEL, on_notify)
        auth.listening = True
        yield Replica(
            db,
            auth,
            ListenedApiKeyRepository(SqlApiKeyRepository(db), auth.keys),
            SqlAdminStore(db),
            heard,
        )
    finally:
        auth.listening = False
        await conn.close()
        await db.dispose()


@pytest.mark.asyncio
async def test_a_revocation_on_one_replica_reaches_the_other(pg_migrated_url: str) -> None:
    async with replica(pg_migrated_url) as a, replica(pg_migrated_url) as b:
        user = await SqlUserRepository(a.db).add(
            email=f"n{os.getpid()}@example.com", password_hash="h", created_at_ms=T0
        )
        assert user is not None
        await a.keys.add(
            key_id="kk" * 16,
            user_id=user.id,
            label="bot",
            permissions=frozenset({"trade"}),
            ip_allowlist=None,
            secret_sealed=b"sealed",
            created_at_ms=T0,
        )
        # B reads the key once, then serves it from memory
        first = await b.keys.get("kk" * 16)
        assert first is not None and first.revoked_at_ms is None
        assert len(b.auth.keys) == 1

        assert await a.keys.revoke(user.id, "kk" * 16, T0 + 1)
        await asyncio.wait_for(b.heard.wait(), 5.0)
        assert len(b.auth.keys) == 0
        after = await b.keys.get("kk" * 16)
        assert after is not None and after.revoked_at_ms == T0 + 1  # refused by the service

        # frozen flags: a freeze and an unfreeze through A's store reach B's cache
        store_b = b.admin

        async def frozen_on_b() -> bool:
            return await b.auth.frozen.get(user.id, lambda: store_b.is_frozen(user.id))

        assert await frozen_on_b() is False
        assert len(b.auth.frozen) == 1
        b.heard.clear()
        assert await a.admin.freeze(user.id, reason="test", by=None, at_ms=T0)
        await asyncio.wait_for(b.heard.wait(), 5.0)
        assert await frozen_on_b() is True
        b.heard.clear()
        assert await a.admin.unfreeze(user.id)
        await asyncio.wait_for(b.heard.wait(), 5.0)
        assert await frozen_on_b() is False


@pytest.mark.asyncio
async def test_a_rolled_back_revocation_sends_nothing(pg_migrated_url: str) -> None:
    async with replica(pg_migrated_url) as a, replica(pg_migrated_url) as b:
        user = await SqlUserRepository(a.db).add(
            email=f"r{os.getpid()}@example.com", password_hash="h", created_at_ms=T0
        )
        assert user is not None
        await a.keys.add(
            key_id="rb" * 16,
            user_id=user.id,
            label="bot",
            permissions=frozenset({"trade"}),
            ip_allowlist=None,
            secret_sealed=b"sealed",
            created_at_ms=T0,
        )
        await b.keys.get("rb" * 16)
        with pytest.raises(RuntimeError):
            async with a.db.one_transaction():
                assert await SqlApiKeyRepository(a.db).revoke(user.id, "rb" * 16, T0 + 1)
                raise RuntimeError("roll back")
        await asyncio.sleep(0.2)
        assert not b.heard.is_set() and len(b.auth.keys) == 1
        # and a second revocation of a revoked key changes nothing: no notification
        assert await SqlApiKeyRepository(a.db).revoke(user.id, "rb" * 16, T0 + 2)
        await asyncio.wait_for(b.heard.wait(), 5.0)
        b.heard.clear()
        assert not await SqlApiKeyRepository(a.db).revoke(user.id, "rb" * 16, T0 + 3)
        await asyncio.sleep(0.2)
        assert not b.heard.is_set()
