"""Token buckets in the real Redis, as API replicas share them: the limit holds across
replicas under concurrency (one Lua script), refusals take nothing, several buckets are
charged all or none, and idle buckets expire."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.fakes import FakeClock
from tests.support.cleanup import delete_redis_prefix
from tradewind.adapters.redis.ratelimit import RedisBuckets
from tradewind.services.ratelimit import RateLimited, RateLimiter, RatePolicy, Rule


@pytest_asyncio.fixture
async def replicas(redis_url: str) -> AsyncIterator[tuple[Redis, Redis, str]]:
    prefix = f"twtest{secrets.token_hex(4)}"
    a, b = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        yield a, b, prefix
    finally:
        await a.aclose()
        await b.aclose()
        await delete_redis_prefix(redis_url, prefix)


def limiter(redis: Redis, prefix: str, **rules: Rule) -> RateLimiter:
    return RateLimiter(RedisBuckets(redis, prefix=prefix), FakeClock(), RatePolicy(rules))


@pytest.mark.asyncio
async def test_the_limit_holds_across_replicas(replicas: tuple[Redis, Redis, str]) -> None:
    a, b, prefix = replicas
    rule = Rule(20, 3_600_000)  # an hour: nothing refills during the test
    limiters = [limiter(a, prefix, user=rule), limiter(b, prefix, user=rule)]

    async def one(i: int) -> bool:
        try:
            await limiters[i % 2].take(1, user=42)
        except RateLimited:
            return False
        return True

    results = await asyncio.gather(*(one(i) for i in range(60)))
    assert sum(results) == 20


@pytest.mark.asyncio
async def test_refusal_says_when_and_takes_nothing(replicas: tuple[Redis, Redis, str]) -> None:
    a, _, prefix = replicas
    rl = limiter(a, prefix, ip=Rule(10, 3_600_000))
    first = await rl.take(4, ip="1.2.3.4")
    assert first is not None and first.limit == 10 and first.remaining == 6
    with pytest.raises(RateLimited) as refused:
        await rl.take(7, ip="1.2.3.4")
    decision = refused.value.decision
    assert decision.scope == "ip"
    # one token comes back every 360 s; 1 is missing (a few ms may have refilled)
    assert 0 < decision.retry_after_ms <= 360_000
    assert refused.value.retry_after_s >= 1
    after = await rl.take(6, ip="1.2.3.4")  # the refused 7 took nothing
    assert after is not None and after.remaining == 0


@pytest.mark.asyncio
async def test_all_or_nothing_across_buckets(replicas: tuple[Redis, Redis, str]) -> None:
    a, _, prefix = replicas
    rl = limiter(a, prefix, ip=Rule(100, 3_600_000), key=Rule(2, 3_600_000))
    await rl.take(2, ip="9.9.9.9", key="k1")
    with pytest.raises(RateLimited) as refused:
        await rl.take(1, ip="9.9.9.9", key="k1")
    assert refused.value.decision.scope == "key"
    decision = await rl.take(98, ip="9.9.9.9")
    assert decision is not None and decision.remaining == 0


@pytest.mark.asyncio
async def test_buckets_expire_when_they_would_be_full(
    replicas: tuple[Redis, Redis, str],
) -> None:
    a, _, prefix = replicas
    rl = limiter(a, prefix, ip=Rule(5, 60_000))
    await rl.take(1, ip="8.8.8.8")
    ttl = await a.pttl(f"{prefix}:rl:ip:8.8.8.8")
    assert 0 < ttl <= 12_000 + 1_000  # 1 token back in 12 s, plus a second's slack
