"""A leader keeps its lease while its event loop is busy (ADR 0010): the renewals of
:func:`tradewind.runtime.standby.hold` do not wait for the loop, so blocking work on it
(a migration, a replay) cannot hand the lease to a standby while the leader lives."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from tests.integration.test_core_lease import lease, redis_prefix  # noqa: F401 (fixture)
from tradewind.adapters.redis.lease import LeaseHolder
from tradewind.runtime import standby

TTL_MS = 300


@pytest.mark.asyncio
async def test_a_blocked_event_loop_does_not_cost_the_lease(
    redis_prefix: tuple[Redis, str],  # noqa: F811
) -> None:
    redis, prefix = redis_prefix
    leader = lease(redis, prefix, "leader", ttl_ms=TTL_MS)
    standing_by = lease(redis, prefix, "standby", ttl_ms=TTL_MS)
    assert await leader.try_acquire() is None
    lost: list[str] = []
    renewing = asyncio.create_task(standby.hold(leader, lost.append))
    await asyncio.sleep(0)
    time.sleep(4 * TTL_MS / 1000)  # the loop does blocking work for four lease times
    assert await standing_by.try_acquire() == LeaseHolder(leader.token, leader.holder)
    assert leader.held and not lost
    renewing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await renewing
    assert await leader.release()  # no renewal is in flight after the cancel
    assert await standing_by.try_acquire() is None


@pytest.mark.asyncio
async def test_a_lapsed_lease_is_reported_on_the_loop(
    redis_prefix: tuple[Redis, str],  # noqa: F811
) -> None:
    redis, prefix = redis_prefix
    leader = lease(redis, prefix, "leader", ttl_ms=TTL_MS)
    assert await leader.try_acquire() is None
    lost: list[str] = []
    renewing = asyncio.create_task(standby.hold(leader, lost.append))
    await redis.delete(leader.key)  # e.g. Redis lost its data: the renewal is refused
    await asyncio.wait_for(renewing, 5.0)
    assert lost == ["the core lease is held by another core"] and not leader.held
