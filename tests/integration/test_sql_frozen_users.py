"""``SqlAdminStore.frozen_users`` (ADR 0031: the start-up sync of freezes into the core)
pages through the frozen accounts by id, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tradewind.adapters.sql import Database, SqlUserRepository
from tradewind.adapters.sql.admin import SqlAdminStore


@pytest.mark.asyncio
async def test_frozen_users_are_listed_by_id_in_pages(db: Database) -> None:
    users, admin = SqlUserRepository(db), SqlAdminStore(db)
    ids = []
    for n in range(5):
        user = await users.add(
            email=f"f{n}@example.com", password_hash="$argon2id$x", created_at_ms=1
        )
        assert user is not None
        ids.append(user.id)
    for uid in (ids[3], ids[0], ids[4]):
        assert await admin.freeze(uid, reason="review", by=None, at_ms=2)
    assert await admin.frozen_users(after_id=0, limit=10) == [ids[0], ids[3], ids[4]]
    assert await admin.frozen_users(after_id=0, limit=2) == [ids[0], ids[3]]
    assert await admin.frozen_users(after_id=ids[3], limit=2) == [ids[4]]
    await admin.unfreeze(ids[3])
    assert await admin.frozen_users(after_id=0, limit=10) == [ids[0], ids[4]]
