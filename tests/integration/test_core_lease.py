"""The core lease in the real Redis and the fences of the hot standby (ADR 0010): one
holder at a time, tokens that only grow, a lapsed holder that can neither renew nor
release the new holder's lease, and a journal that a leader past its lease cannot
commit to."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.support.cleanup import delete_redis_prefix
from tradewind.adapters.redis.lease import LeaseHolder, RedisLease
from tradewind.core.commands import AddAsset, Deposit
from tradewind.journal.journal import read_journal
from tradewind.journal.recovery import JournaledCore
from tradewind.runtime import standby


@pytest_asyncio.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[tuple[Redis, str]]:
    prefix = f"twlease{secrets.token_hex(4)}"
    redis = Redis.from_url(redis_url)
    try:
        yield redis, prefix
    finally:
        await redis.aclose()
        await delete_redis_prefix(redis_url, prefix)


def lease(redis: Redis, prefix: str, holder: str, ttl_ms: int = 300) -> RedisLease:
    return RedisLease(redis, prefix=prefix, holder=holder, ttl_ms=ttl_ms, margin_ms=20)


@pytest.mark.asyncio
async def test_one_holder_at_a_time_and_tokens_grow(redis_prefix: tuple[Redis, str]) -> None:
    redis, prefix = redis_prefix
    candidates = [lease(redis, prefix, f"core{i}") for i in range(8)]
    results = await asyncio.gather(*(c.try_acquire() for c in candidates))
    winners = [c for c, r in zip(candidates, results, strict=True) if r is None]
    assert len(winners) == 1
    first = winners[0]
    assert first.held and first.token >= 1
    assert {r.holder for r in results if r is not None} == {first.holder}

    assert await first.renew()
    other = next(c for c in candidates if c is not first)
    assert await other.try_acquire() is not None  # still held
    assert not await other.release()  # never held: cannot delete it

    await asyncio.sleep(0.4)  # the holder stops renewing: the lease lapses
    assert not first.held  # locally, before Redis even says so
    assert await other.try_acquire() is None
    assert other.token > first.token
    assert not await first.renew()  # the old holder cannot take it back...
    assert not await first.release()  # ...nor delete the new holder's lease
    current = await other.current()
    assert current == LeaseHolder(other.token, other.holder)

    assert await other.release()  # a clean stop hands over at once
    assert await first.try_acquire() is None and first.token > other.token


@pytest.mark.asyncio
async def test_tokens_never_go_back_when_redis_forgets(redis_prefix: tuple[Redis, str]) -> None:
    redis, prefix = redis_prefix
    a = lease(redis, prefix, "a")
    assert await a.try_acquire() is None
    await redis.delete(a.key, a.fence_key)  # Redis lost its data
    b = lease(redis, prefix, "b")
    assert await b.try_acquire(floor=41) is None
    assert b.token == 42


@pytest.mark.asyncio
async def test_a_leader_past_its_lease_cannot_commit(
    redis_prefix: tuple[Redis, str], tmp_path: Path
) -> None:
    redis, prefix = redis_prefix
    mine = lease(redis, prefix, "old", ttl_ms=200)
    token = await standby.acquire(mine, tmp_path, poll_s=0.01)
    assert standby.read_fence(tmp_path) == token
    jcore = await standby.open_fenced_core(mine, tmp_path, snapshot_every=1000)
    jcore.submit(AddAsset(asset="BTC", decimals=8, ts=1))
    assert jcore.flush() == 1

    await asyncio.sleep(0.25)  # paused past the lease
    jcore.submit(Deposit(user=1, asset="BTC", amount=5, ts=2))
    with pytest.raises(standby.LeaseLost):
        jcore.flush()
    jcore.abandon()
    assert [seq for _, seq, _ in read_journal(tmp_path / "journal.twj")] == [1]


@pytest.mark.asyncio
async def test_the_new_leader_waits_for_the_old_one_to_release_the_journal(
    redis_prefix: tuple[Redis, str], tmp_path: Path
) -> None:
    redis, prefix = redis_prefix
    old = JournaledCore(tmp_path)  # holds the journal's lock, as a paused leader would
    old.submit(AddAsset(asset="BTC", decimals=8, ts=1))
    old.flush()
    assert standby.journal_locked(tmp_path)
    new = lease(redis, prefix, "new", ttl_ms=2000)
    assert await new.try_acquire() is None
    opening = asyncio.create_task(standby.open_fenced_core(new, tmp_path, snapshot_every=1000))
    renewing = asyncio.create_task(standby.hold(new, lambda why: None))
    await asyncio.sleep(0.3)
    assert not opening.done()
    old.submit(Deposit(user=1, asset="BTC", amount=5, ts=2))
    old.flush()  # the old leader's last durable record...
    old.close()
    jcore = await asyncio.wait_for(opening, 5.0)
    renewing.cancel()
    assert jcore.last_seq == 2  # ...is in the new leader's state
    assert standby.journal_locked(tmp_path)  # now the new leader's
    jcore.close()


@pytest.mark.asyncio
async def test_hold_reports_a_lease_taken_by_another(redis_prefix: tuple[Redis, str]) -> None:
    redis, prefix = redis_prefix
    mine = lease(redis, prefix, "a", ttl_ms=150)
    assert await mine.try_acquire() is None
    lost: list[str] = []
    task = asyncio.create_task(standby.hold(mine, lost.append))
    await asyncio.sleep(0.3)
    assert not lost and mine.held  # renewed while alive
    await redis.set(mine.key, "999:thief", px=5000)
    await asyncio.wait_for(task, 2.0)
    assert lost == ["the core lease is held by another core"]
