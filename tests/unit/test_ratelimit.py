"""Token buckets as a client meets them: a burst up to the limit, then the refill rate;
a refusal says when to come back and takes nothing; several buckets are charged all or
none; the ``rate_limits`` setting parses or names what is wrong."""

from __future__ import annotations

import pytest

from tests.fakes import FakeClock
from tradewind.services.ratelimit import (
    DEFAULT_RULES,
    MemoryBuckets,
    OrderRateGuard,
    RateLimited,
    RateLimiter,
    RatePolicy,
    Rule,
    parse_rules,
)


def limiter(clock: FakeClock, **rules: Rule) -> RateLimiter:
    return RateLimiter(MemoryBuckets(), clock, RatePolicy(rules))


@pytest.mark.asyncio
async def test_burst_up_to_the_limit_then_refused_with_retry_after() -> None:
    clock = FakeClock()
    rl = limiter(clock, ip=Rule(10, 1000))
    for i in range(10):
        decision = await rl.take(1, ip="1.2.3.4")
        assert decision is not None and decision.remaining == 9 - i
    with pytest.raises(RateLimited) as refused:
        await rl.take(1, ip="1.2.3.4")
    assert refused.value.status_hint == 429
    assert refused.value.code == "rate_limited"
    assert refused.value.decision.retry_after_ms == 100  # one token per 100 ms
    assert refused.value.retry_after_s == 1
    clock.advance(99)
    with pytest.raises(RateLimited):
        await rl.take(1, ip="1.2.3.4")
    clock.advance(1)
    assert await rl.take(1, ip="1.2.3.4") is not None


@pytest.mark.asyncio
async def test_weights_an_order_costs_more_than_a_read() -> None:
    clock = FakeClock()
    rl = limiter(clock, ip=Rule(20, 1000))
    await rl.take(10, ip="a")
    await rl.take(10, ip="a")
    with pytest.raises(RateLimited) as refused:
        await rl.take(1, ip="a")
    assert refused.value.decision.retry_after_ms == 50
    clock.advance(450)  # 9 tokens back: a read passes, an order does not
    await rl.take(1, ip="a")
    with pytest.raises(RateLimited) as again:
        await rl.take(10, ip="a")
    assert again.value.decision.retry_after_ms == 100


@pytest.mark.asyncio
async def test_refused_requests_drain_nothing() -> None:
    """A client hammering a full bucket is served as soon as it has refilled."""
    clock = FakeClock()
    rl = limiter(clock, user=Rule(2, 1000))
    await rl.take(2, user=7)
    for _ in range(100):
        with pytest.raises(RateLimited):
            await rl.take(1, user=7)
    clock.advance(500)
    assert await rl.take(1, user=7) is not None


@pytest.mark.asyncio
async def test_all_or_nothing_across_buckets() -> None:
    clock = FakeClock()
    rl = limiter(clock, ip=Rule(100, 1000), key=Rule(3, 1000))
    for _ in range(3):
        await rl.take(1, ip="a", key="k1")
    with pytest.raises(RateLimited) as refused:
        await rl.take(1, ip="a", key="k1")
    assert refused.value.decision.scope == "key"
    # the refused request did not charge the IP: 97 left, shown by a second key
    decision = await rl.take(1, ip="a", key="k2")
    assert decision is not None and decision.scope == "key" and decision.remaining == 2
    decision = await rl.take(90, ip="a")
    assert decision is not None and decision.remaining == 6


@pytest.mark.asyncio
async def test_subjects_have_separate_buckets() -> None:
    clock = FakeClock()
    rl = limiter(clock, ip=Rule(1, 60_000))
    await rl.take(1, ip="10.0.0.1")
    await rl.take(1, ip="10.0.0.2")
    with pytest.raises(RateLimited) as refused:
        await rl.take(1, ip="10.0.0.1")
    assert refused.value.retry_after_s == 60


@pytest.mark.asyncio
async def test_unconfigured_scope_and_missing_subject_are_not_limited() -> None:
    clock = FakeClock()
    rl = limiter(clock, ip=Rule(1, 1000))
    assert await rl.take(5, user=1) is None
    assert await rl.take(1, ip=None) is None


@pytest.mark.asyncio
async def test_order_rate_guard_counts_per_account() -> None:
    clock = FakeClock()
    guard = OrderRateGuard(limiter(clock, orders=Rule(2, 10_000)))
    await guard.check_order(1)
    await guard.check_order(1)
    await guard.check_order(2)
    with pytest.raises(RateLimited) as refused:
        await guard.check_order(1)
    assert refused.value.decision.scope == "orders"
    assert refused.value.retry_after_s == 5


@pytest.mark.asyncio
async def test_memory_is_bounded_and_forgetting_is_lenient() -> None:
    clock = FakeClock()
    store = MemoryBuckets(max_buckets=10)
    rl = RateLimiter(store, clock, RatePolicy({"ip": Rule(1, 60_000)}))
    for i in range(50):
        await rl.take(1, ip=f"10.0.0.{i}")
    assert len(store) == 10


def test_parse_rules() -> None:
    assert parse_rules("").rules == DEFAULT_RULES
    assert parse_rules("off").rules == {}
    policy = parse_rules("ip=1200/60s, orders=off, auth=5/1m, key=10/500ms")
    assert policy.rule("ip") == Rule(1200, 60_000)
    assert policy.rule("orders") is None
    assert policy.rule("auth") == Rule(5, 60_000)
    assert policy.rule("key") == Rule(10, 500)
    assert policy.rule("user") == DEFAULT_RULES["user"]
    with pytest.raises(ValueError, match="unknown rate-limit scope 'bogus'"):
        parse_rules("bogus=1/1")
    with pytest.raises(ValueError, match="not scope=LIMIT/WINDOW"):
        parse_rules("ip=fast")
    with pytest.raises(ValueError, match="positive"):
        parse_rules("ip=0/1s")
    with pytest.raises(ValueError, match="2\\*\\*50"):
        parse_rules("ip=999999999/9999999h")
