"""The embedded API-key cache: served from memory, never stale after a revocation."""

from __future__ import annotations

import asyncio

import argon2
import pytest

from tests.fakes import (
    FakeApiKey,
    FakeClock,
    MemoryApiKeyRepository,
    MemorySessionRepository,
)
from tests.identity_fakes import (
    MemoryIdentityUsers,
    MemoryLoginThrottleRepository,
    MemoryOutbox,
    MemoryTokenRepository,
)
from tradewind.adapters.local import InMemoryReplayCache
from tradewind.adapters.secretbox import AesGcmSecretBox
from tradewind.runtime.keycache import CachedApiKeyRepository
from tradewind.services import errors
from tradewind.services.accounts import AccountsService, sign_request


class CountingRepository(MemoryApiKeyRepository):
    """Counts lookups; a lookup can be held at ``gate`` after reading its row."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.gate: asyncio.Event | None = None

    async def get(self, key_id: str) -> FakeApiKey | None:
        self.gets += 1
        row = await super().get(key_id)
        if self.gate is not None:
            await self.gate.wait()
        return row


async def _add(repo: CachedApiKeyRepository, key_id: str, user_id: int = 1) -> None:
    await repo.add(
        key_id=key_id,
        user_id=user_id,
        label="k",
        permissions=frozenset({"read"}),
        ip_allowlist=None,
        secret_sealed=b"sealed",
        created_at_ms=1,
    )


@pytest.mark.asyncio
async def test_a_key_read_once_is_served_from_memory() -> None:
    inner = CountingRepository()
    repo = CachedApiKeyRepository(inner)
    await _add(repo, "k1")
    first = await repo.get("k1")
    assert first is not None and await repo.get("k1") is first
    assert inner.gets == 1


@pytest.mark.asyncio
async def test_unknown_ids_are_not_cached() -> None:
    inner = CountingRepository()
    repo = CachedApiKeyRepository(inner)
    assert await repo.get("nope") is None
    assert await repo.get("nope") is None
    assert inner.gets == 2
    await _add(repo, "nope")  # a key created after a miss is found
    assert await repo.get("nope") is not None


@pytest.mark.asyncio
async def test_a_revoked_key_is_read_again() -> None:
    inner = CountingRepository()
    repo = CachedApiKeyRepository(inner)
    await _add(repo, "k1")
    assert (await repo.get("k1")) is not None
    assert await repo.revoke(1, "k1", 5)
    after = await repo.get("k1")
    assert after is not None and after.revoked_at_ms == 5
    assert not await repo.revoke(1, "k1", 6)


@pytest.mark.asyncio
async def test_a_lookup_racing_a_revocation_does_not_store_the_old_row() -> None:
    inner = CountingRepository()
    repo = CachedApiKeyRepository(inner)
    await _add(repo, "k1")
    inner.gate = asyncio.Event()
    lookup = asyncio.create_task(repo.get("k1"))
    await asyncio.sleep(0)  # the lookup has read the unrevoked row and waits
    assert await repo.revoke(1, "k1", 5)
    inner.gate.set()
    stale = await lookup
    assert stale is not None and stale.revoked_at_ms is None  # as without a cache
    inner.gate = None
    fresh = await repo.get("k1")
    assert fresh is not None and fresh.revoked_at_ms == 5


@pytest.mark.asyncio
async def test_the_cache_is_bounded() -> None:
    inner = CountingRepository()
    repo = CachedApiKeyRepository(inner, max_entries=2)
    for k in ("a", "b", "c"):
        await _add(repo, k)
        await repo.get(k)
    assert inner.gets == 3
    await repo.get("c")
    await repo.get("b")
    assert inner.gets == 3
    await repo.get("a")  # evicted first
    assert inner.gets == 4


@pytest.mark.asyncio
async def test_signed_requests_stop_at_once_when_the_key_is_revoked() -> None:
    clock = FakeClock()
    users = MemoryIdentityUsers()
    service = AccountsService(
        users=users,
        sessions=MemorySessionRepository(),
        api_keys=CachedApiKeyRepository(MemoryApiKeyRepository()),
        replay_cache=InMemoryReplayCache(),
        secret_box=AesGcmSecretBox([bytes(range(32))]),
        clock=clock,
        hasher=argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST),
        identity=users,
        tokens=MemoryTokenRepository(),
        throttle=MemoryLoginThrottleRepository(),
        outbox=MemoryOutbox(),
    )
    user = await users.add(email="bot@example.com", password_hash="x", created_at_ms=0)
    assert user is not None
    await users.mark_email_verified(user.id, user.email, 0)
    new = await service.create_api_key(user.id, "bot", ["read", "trade"], None)
    key_id = new.info.key_id

    async def verify(ts: int) -> None:
        signature = sign_request(new.secret, ts, "GET", "/api/v1/balances", b"")
        await service.verify_signature(
            key_id, ts, "GET", "/api/v1/balances", b"", signature, clock.now_ms()
        )

    await verify(clock.now_ms())
    await verify(clock.now_ms() - 1)  # cached now
    await service.revoke_api_key(user.id, key_id)
    with pytest.raises(errors.InvalidApiKey):
        await verify(clock.now_ms() - 2)
