"""The API replica's auth caches (ADR 0045): served only while listening, dropped by a
notification, a racing lookup never stores a stale row, entries expire."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes import FakeApiKey, MemoryApiKeyRepository
from tradewind.runtime.authcache import AuthInvalidations, ListenedApiKeyRepository, ListenedCache


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


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def _setup(
    listening: bool = True,
) -> tuple[CountingRepository, ListenedApiKeyRepository, AuthInvalidations, Clock]:
    clock = Clock()
    auth = AuthInvalidations(ttl_s=30.0, now=clock)
    auth.listening = listening
    inner = CountingRepository()
    repo = ListenedApiKeyRepository(inner, auth.keys)
    await repo.add(
        key_id="k1",
        user_id=7,
        label="k",
        permissions=frozenset({"read"}),
        ip_allowlist=None,
        secret_sealed=b"sealed",
        created_at_ms=1,
    )
    return inner, repo, auth, clock


@pytest.mark.asyncio
async def test_served_from_memory_while_listening() -> None:
    inner, repo, _, _ = await _setup()
    assert await repo.get("k1") is not None
    assert await repo.get("k1") is not None
    assert inner.gets == 1


@pytest.mark.asyncio
async def test_nothing_served_nor_stored_while_not_listening() -> None:
    inner, repo, auth, _ = await _setup(listening=False)
    for _ in range(3):
        assert await repo.get("k1") is not None
    assert inner.gets == 3
    assert len(auth.keys) == 0


@pytest.mark.asyncio
async def test_losing_the_connection_forgets_everything() -> None:
    inner, repo, auth, _ = await _setup()
    await repo.get("k1")
    auth.listening = False
    await repo.get("k1")
    assert inner.gets == 2
    auth.listening = True  # back: starts empty (changes meanwhile were not heard)
    await repo.get("k1")
    await repo.get("k1")
    assert inner.gets == 3


@pytest.mark.asyncio
async def test_a_revocation_elsewhere_is_seen_after_its_notification() -> None:
    inner, repo, auth, _ = await _setup()
    assert await repo.get("k1") is not None
    await inner.revoke(7, "k1", 5)  # another replica's write, not through this cache
    auth.notified("key:k1")
    record = await repo.get("k1")
    assert record is not None and record.revoked_at_ms == 5
    assert inner.gets == 2


@pytest.mark.asyncio
async def test_a_revocation_here_is_seen_at_once() -> None:
    _, repo, _, _ = await _setup()
    await repo.get("k1")
    assert await repo.revoke(7, "k1", 5)
    record = await repo.get("k1")
    assert record is not None and record.revoked_at_ms == 5


@pytest.mark.asyncio
async def test_a_lookup_racing_a_notification_does_not_store_its_row() -> None:
    inner, repo, auth, _ = await _setup()
    inner.gate = asyncio.Event()
    racing = asyncio.create_task(repo.get("k1"))
    await asyncio.sleep(0)
    assert inner.gets == 1  # read the unrevoked row, held before returning
    await inner.revoke(7, "k1", 5)
    auth.notified("key:k1")
    inner.gate.set()
    stale = await racing
    assert stale is not None and stale.revoked_at_ms is None  # in flight: as read
    inner.gate = None
    fresh = await repo.get("k1")
    assert fresh is not None and fresh.revoked_at_ms == 5


@pytest.mark.asyncio
async def test_a_lookup_racing_the_connection_loss_does_not_store_its_row() -> None:
    inner, repo, auth, _ = await _setup()
    inner.gate = asyncio.Event()
    racing = asyncio.create_task(repo.get("k1"))
    await asyncio.sleep(0)
    auth.listening = False
    auth.listening = True
    inner.gate.set()
    await racing
    assert len(auth.keys) == 0


@pytest.mark.asyncio
async def test_entries_expire_after_the_ttl() -> None:
    inner, repo, _, clock = await _setup()
    await repo.get("k1")
    clock.t += 29.9
    await repo.get("k1")
    assert inner.gets == 1
    clock.t += 0.2
    await repo.get("k1")
    assert inner.gets == 2


@pytest.mark.asyncio
async def test_unknown_keys_are_not_cached() -> None:
    inner, repo, auth, _ = await _setup()
    assert await repo.get("nope") is None
    assert await repo.get("nope") is None
    assert inner.gets == 2 and len(auth.keys) == 0


@pytest.mark.asyncio
async def test_frozen_flags_follow_user_notifications() -> None:
    auth = AuthInvalidations()
    auth.listening = True
    frozen = {3: False}
    reads = 0

    async def load() -> bool:
        nonlocal reads
        reads += 1
        return frozen[3]

    assert await auth.frozen.get(3, load) is False
    assert await auth.frozen.get(3, load) is False
    assert reads == 1
    frozen[3] = True
    auth.notified("key:3")  # another kind: not this entry
    assert await auth.frozen.get(3, load) is False
    auth.notified("user:3")
    assert await auth.frozen.get(3, load) is True
    assert reads == 2


@pytest.mark.asyncio
async def test_an_unreadable_payload_forgets_everything() -> None:
    _, repo, auth, _ = await _setup()
    await repo.get("k1")

    async def load() -> bool:
        return False

    await auth.frozen.get(1, load)
    auth.notified("user:x")
    assert len(auth.keys) == 0 and len(auth.frozen) == 0
    await repo.get("k1")
    auth.notified(None)
    assert len(auth.keys) == 0


@pytest.mark.asyncio
async def test_least_recently_used_goes_first() -> None:
    cache: ListenedCache[str, int] = ListenedCache(max_entries=2)
    cache.listening = True
    calls: list[str] = []

    def loader(key: str) -> object:
        async def load() -> int:
            calls.append(key)
            return 1

        return load

    for key in ("a", "b", "a", "c", "a", "b"):
        await cache.get(key, loader(key))  # type: ignore[arg-type]
    assert calls == ["a", "b", "c", "b"]
