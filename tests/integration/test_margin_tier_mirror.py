"""Leverage caps per fee tier on a replica (``margin_mirror``): the published globals
carry the caps and the capped wallets' tiers, so a replica's figures (max leverage,
initial level, max-borrowable, max-transferable) equal the embedded ones as caps are
set and cleared and users change tier.
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from tests.integration.test_margin_mirror import Published, assert_same
from tests.integration.test_margin_mirror import redis as redis  # the fixture
from tests.integration.test_redis_marketdata import redis_prefix  # noqa: F401 (fixture)
from tests.unit.helpers import SYM
from tests.unit.margin_setup import borrow, into, margin_market
from tradewind.adapters.redis.margin import RedisMarginSource
from tradewind.services.margin_mirror import MirroredMarginState


@pytest.mark.asyncio
async def test_replica_figures_follow_the_tier_caps(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    reader = MirroredMarginState(RedisMarginSource(client, prefix=prefix), wait_s=5.0)
    ex = margin_market()  # isolated 5x, cross 3x
    core = Published(ex, client, prefix)
    try:
        ex.ok({"op": "fees", "tier": 1, "maker_bps": 5, "taker_bps": 8})
        ex.ok({"op": "tier", "user": 1, "tier": 1})
        ex.ok({"op": "margin_tier", "tier": 1, "max_leverage": 2})  # initial level 20000
        into(ex, 1, "USDT", 1000)
        ex.ok(borrow(1, "USDT", 500))
        into(ex, 3, "USDT", 1000)
        await assert_same(reader, ex, [1, 3])
        assert reader.config().tier_caps == {1: 2}
        w = reader.wallets(1)[0]
        assert (w.max_leverage, w.initial_level) == (2, 20_000)
        # 10000 * (1500 + x) >= 20000 * (500 + x)  ->  x <= 500
        assert reader.max_borrowable(1, "isolated", SYM, "USDT") == 500
        assert reader.max_borrowable(3, "isolated", SYM, "USDT") == 4000  # 5x

        ex.ok({"op": "tier", "user": 3, "tier": 1})  # user 3's wallet is capped too
        await assert_same(reader, ex, [1, 3])
        assert reader.max_borrowable(3, "isolated", SYM, "USDT") == 1000

        ex.ok({"op": "margin_tier_clear", "tier": 1})
        await assert_same(reader, ex, [1, 3])
        assert reader.config().tier_caps == {}
        assert reader.wallets(1)[0].max_leverage == 5
    finally:
        await core.stop()
