"""The small shared state of API replicas in the real Redis: the signature replay cache
(atomic across replicas, expiring), users' write marks (only growing, shared), and the
market catalog the core publishes (replicas' copies never go back)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.support.cleanup import delete_redis_prefix
from tradewind.adapters.redis.catalog import RedisCatalog, RedisCatalogWriter
from tradewind.adapters.redis.state import RedisReplayCache, RedisWriteMarks
from tradewind.core.events import SymbolHalted, Trade
from tradewind.services.catalog import AssetInfo, MarketInfo


@pytest_asyncio.fixture
async def two_clients(redis_url: str) -> AsyncIterator[tuple[Redis, Redis, str]]:
    prefix = f"twtest{secrets.token_hex(4)}"
    a, b = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        yield a, b, prefix
    finally:
        await a.aclose()
        await b.aclose()
        await delete_redis_prefix(redis_url, prefix)


@pytest.mark.asyncio
async def test_a_signature_is_accepted_once_across_replicas(
    two_clients: tuple[Redis, Redis, str],
) -> None:
    a, b, prefix = two_clients
    caches = [RedisReplayCache(a, prefix=prefix), RedisReplayCache(b, prefix=prefix)]
    results = await asyncio.gather(
        *(caches[i % 2].remember("sig:k:abc", 0, 10_000) for i in range(50))
    )
    assert results.count(True) == 1
    assert await caches[0].remember("sig:k:short", 0, 50)
    assert not await caches[1].remember("sig:k:short", 0, 50)
    await asyncio.sleep(0.1)
    assert await caches[1].remember("sig:k:short", 0, 50)  # expired: Redis keeps the time
    with pytest.raises(ValueError):
        await caches[0].remember("x", 0, 0)


@pytest.mark.asyncio
async def test_write_marks_only_grow_and_are_shared(
    two_clients: tuple[Redis, Redis, str],
) -> None:
    a, b, prefix = two_clients
    one, two = RedisWriteMarks(a, prefix=prefix), RedisWriteMarks(b, prefix=prefix)
    assert await two.last(7) == 0
    await one.note(7, 40)
    assert await two.last(7) == 40
    await two.note(7, 30)  # a late, older acknowledgement does not move it back
    assert await one.last(7) == 40
    await asyncio.gather(*(m.note(7, s) for s in range(41, 90) for m in (one, two)))
    assert await one.last(7) == await two.last(7) == 89
    assert await one.last(8) == 0


def market(symbol: str, last: int | None = None, halted: bool = False) -> MarketInfo:
    base, quote = symbol.split("-")
    return MarketInfo(
        symbol, base, quote, 8, 6, 10_000, 10_000, None, None, 1_000_000, None, 500, halted, last
    )


@pytest.mark.asyncio
async def test_catalog_copies_follow_the_core(two_clients: tuple[Redis, Redis, str]) -> None:
    a, b, prefix = two_clients
    writer = RedisCatalogWriter(a, prefix=prefix)
    catalog = RedisCatalog(b, prefix=prefix, refresh_s=0.05)
    assert not await catalog.refresh() and catalog.markets() == []
    assets = [AssetInfo("BTC", 8), AssetInfo("USDT", 6)]
    await writer.write(10, assets, [market("BTC-USDT", 100)])
    assert await catalog.refresh()
    assert catalog.market("BTC-USDT") == market("BTC-USDT", 100)
    assert catalog.asset("USDT") == AssetInfo("USDT", 6) and catalog.asset("ETH") is None

    # a trade on the stream moves the last price at once; an older snapshot does not undo it
    catalog.on_events(12, 0, [Trade("BTC-USDT", 105, 1, 1, 105, 3, 4, 1, 2, "buy", 0, 0, 0, 0)])
    assert catalog.market("BTC-USDT").last_price == 105  # type: ignore[union-attr]
    await writer.write(11, assets, [market("BTC-USDT", 101)])
    await catalog.refresh()
    assert catalog.market("BTC-USDT").last_price == 105  # type: ignore[union-attr]
    await writer.write(9, assets, [])  # older than the copy: ignored
    await catalog.refresh()
    assert catalog.market("BTC-USDT") is not None

    # a catalog event on the stream makes the background copy reload at once
    catalog.start()
    try:
        await writer.write(13, assets, [market("BTC-USDT", 106, halted=True)])
        catalog.on_events(13, 0, [SymbolHalted("BTC-USDT")])
        for _ in range(100):
            m = catalog.market("BTC-USDT")
            if m is not None and m.halted:
                break
            await asyncio.sleep(0.01)
        assert catalog.market("BTC-USDT") == market("BTC-USDT", 106, halted=True)
    finally:
        await catalog.stop()
