"""Market data in the real Redis: a writer mirrors a ``MarketData`` fed by a real core,
and readers on other connections (API replicas) see the same books, trades, candles and
tickers, consistent snapshots and an update stream they can follow. Each test uses its
own key prefix and deletes its keys afterwards."""

from __future__ import annotations

import asyncio
import itertools
import random
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.support.md_stream import SYMBOLS, Driver, random_commands, setup_commands
from tradewind.adapters.redis.marketdata import RedisMarketDataReader, RedisMarketDataWriter
from tradewind.services.marketdata import (
    INTERVALS,
    BookDiff,
    MarketData,
    MarketDataReader,
    MarketUpdate,
)


@pytest_asyncio.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[tuple[str, str]]:
    prefix = f"twtest{secrets.token_hex(4)}"
    yield redis_url, prefix
    client = Redis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


class Feed:
    def __init__(self, md: MarketData) -> None:
        self.drv = Driver()
        self.md = md
        self.rng = random.Random(5)
        self.cmds = itertools.chain(
            setup_commands(), random_commands(self.rng, 10**9, self.drv.core)
        )

    def run(self, n: int) -> None:
        for cmd in itertools.islice(self.cmds, n):
            seq, ts, events = self.drv.apply(cmd)
            self.md.apply(seq, ts, events)


async def assert_same(reader: MarketDataReader, md: MarketData) -> None:
    assert await reader.get_symbols() == md.symbols()
    assert await reader.get_tickers() == md.tickers()
    for sym in SYMBOLS:
        assert await reader.get_book(sym) == md.book(sym)
        assert await reader.get_book(sym, 3) == md.book(sym, 3)
        assert await reader.get_trades(sym, 1000) == md.trades(sym, 1000)
        assert await reader.get_trades(sym, 5) == md.trades(sym, 5)
        assert await reader.get_ticker(sym) == md.ticker(sym)
        for interval in INTERVALS:
            assert await reader.get_candles(sym, interval, 5000) == md.candles(sym, interval, 5000)
        c = md.candles(sym, "1m", 5000)
        if len(c) > 3:
            lo, hi = c[1].open_ts, c[-2].open_ts
            assert await reader.get_candles(sym, "1m", 2, lo, hi) == md.candles(
                sym, "1m", 2, lo, hi
            )
    assert await reader.get_book("NOPE-USDT") is None
    assert await reader.get_ticker("NOPE-USDT") is None


@pytest.mark.asyncio
async def test_readers_see_what_the_writer_mirrors(redis_prefix: tuple[str, str]) -> None:
    url, prefix = redis_prefix
    wconn, r1conn, r2conn = Redis.from_url(url), Redis.from_url(url), Redis.from_url(url)
    try:
        md = MarketData(trades_kept=200)
        writer = RedisMarketDataWriter(wconn, md, prefix=prefix)
        writer.attach()
        readers = [
            RedisMarketDataReader(r1conn, prefix=prefix),
            RedisMarketDataReader(r2conn, prefix=prefix),
        ]
        feed = Feed(md)
        for step in range(12):
            feed.run(150 if step else 20)
            await writer.flush()
            for reader in readers:
                await assert_same(reader, md)
        assert writer.resyncs == 1  # only the first flush wrote everything
        # nothing queued: a flush is a no-op
        assert await writer.flush() == 0
    finally:
        for c in (wconn, r1conn, r2conn):
            await c.aclose()


@pytest.mark.asyncio
async def test_follow_the_stream_and_resync_a_book(redis_prefix: tuple[str, str]) -> None:
    url, prefix = redis_prefix
    wconn, rconn = Redis.from_url(url), Redis.from_url(url)
    try:
        md = MarketData()
        emitted: list[MarketUpdate] = []
        md.subscribe(emitted.extend)
        writer = RedisMarketDataWriter(wconn, md, prefix=prefix)
        writer.start()  # background flushing
        reader = RedisMarketDataReader(rconn, prefix=prefix)
        received: list[MarketUpdate] = []

        async def follow() -> None:
            async for batch in reader.follow(start="0", block_ms=100):
                received.extend(batch)

        task = asyncio.create_task(follow())
        feed = Feed(md)
        snapshot_taken = False
        book: dict[int, int] = {}
        for _ in range(30):
            feed.run(40)
            await asyncio.sleep(0.01)
            if not snapshot_taken and md.has_symbol("BTC-USDT"):
                snap = await reader.get_book("BTC-USDT")
                if snap is None:
                    continue  # the background writer has not flushed the symbol yet
                snapshot_taken, last_u = True, snap.update_id
                book = dict(snap.bids)
        assert snapshot_taken
        await writer.stop()
        for _ in range(200):
            if len(received) >= len(emitted):
                break
            await asyncio.sleep(0.01)
        task.cancel()
        assert received == emitted
        # a client that took a Redis snapshot mid-stream and applies the followed diffs
        for u in received:
            if isinstance(u, BookDiff) and u.symbol == "BTC-USDT" and u.last_id > last_u:
                assert u.first_id <= last_u + 1 <= u.last_id
                for p, q in u.bids:
                    if q:
                        book[p] = q
                    else:
                        book.pop(p, None)
                last_u = u.last_id
        final = md.book("BTC-USDT")
        assert final is not None and last_u == final.update_id
        assert sorted(book.items(), reverse=True) == final.bids
        await assert_same(reader, md)
    finally:
        await wconn.aclose()
        await rconn.aclose()


@pytest.mark.asyncio
async def test_overflow_rewrites_everything_and_restart_moves_ids_on(
    redis_prefix: tuple[str, str],
) -> None:
    url, prefix = redis_prefix
    wconn, rconn = Redis.from_url(url), Redis.from_url(url)
    try:
        md = MarketData()
        writer = RedisMarketDataWriter(wconn, md, prefix=prefix, max_pending=50)
        writer.attach()
        reader = RedisMarketDataReader(rconn, prefix=prefix)
        feed = Feed(md)
        feed.run(100)
        await writer.flush()
        feed.run(400)  # far more than 50 updates queued: dropped, full rewrite
        assert writer.pending < 50
        await writer.flush()
        assert writer.resyncs == 2
        await assert_same(reader, md)

        # a restart: a new MarketData seeded from the core, above the stored ids
        stored = await writer.stored_update_ids()
        assert stored == {s: md.book(s).update_id for s in SYMBOLS}  # type: ignore[union-attr]
        md2 = MarketData()
        md2.seed(feed.drv.core, {s: i + 1 for s, i in stored.items()})
        writer2 = RedisMarketDataWriter(wconn, md2, prefix=prefix)
        writer2.attach()
        await writer2.flush()
        for sym in SYMBOLS:
            snap = await reader.get_book(sym)
            old = md.book(sym)
            assert snap is not None and old is not None
            assert snap.update_id == stored[sym] + 1
            assert (snap.bids, snap.asks) == (old.bids, old.asks)
    finally:
        await wconn.aclose()
        await rconn.aclose()


def test_reader_satisfies_the_protocol() -> None:
    def needs(reader: MarketDataReader) -> Any:
        return reader

    needs(RedisMarketDataReader(Redis(), prefix="x"))
    needs(MarketData())


@pytest.mark.asyncio
async def test_the_writer_flushes_at_most_once_per_interval(
    redis_prefix: tuple[str, str],
) -> None:
    """Updates that arrive within the writer's interval go out in one Redis transaction
    and one stream entry (a follower's one ``XREAD``), all of them, in order."""
    url, prefix = redis_prefix
    wconn, rconn = Redis.from_url(url), Redis.from_url(url)
    try:
        md = MarketData()
        emitted: list[MarketUpdate] = []
        md.subscribe(emitted.extend)
        writer = RedisMarketDataWriter(wconn, md, prefix=prefix, min_interval_s=0.3)
        writer.start()
        feed = Feed(md)
        for _ in range(10):
            feed.run(20)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.6)
        # the first flush (the whole state and the first batch) went at the first await;
        # the nine batches after it waited for the interval and went out together
        assert writer.flushes == 2
        assert len(await rconn.xrange(f"{prefix}:md:stream") or []) == 2
        reader = RedisMarketDataReader(rconn, prefix=prefix)
        received: list[MarketUpdate] = []
        async for batch in reader.follow(start="0", block_ms=50):
            received.extend(batch)
            if len(received) >= len(emitted):
                break
        assert received == emitted
        await writer.stop()
    finally:
        for c in (wconn, rconn):
            await c.aclose()
