"""An API replica's book mirror on the real Redis: a WebSocket ``book`` subscriber gets a
snapshot first, then diffs whose ids follow it without a hole, and snapshot + diffs give
the writer's book; a replica that starts mid-stream, or loses updates, reloads the book
and goes on."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest
from redis.asyncio import Redis

from tests.integration.test_redis_marketdata import Feed, redis_prefix  # noqa: F401 (fixture)
from tradewind.adapters.redis.bookmirror import BookMirror
from tradewind.adapters.redis.marketdata import RedisMarketDataReader, RedisMarketDataWriter
from tradewind.gateways.ws.hub import Hub
from tradewind.services.marketdata import BookDiff, MarketData

SYMBOL = "BTC-USDT"


class Replica:
    """What ApiReplica._follow_market does, with a hub."""

    def __init__(self, reader: RedisMarketDataReader) -> None:
        self.reader = reader
        self.mirror = BookMirror(reader)
        self.hub = Hub(book_snapshot=self.mirror.snapshot)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        start = await self.reader.stream_tail_id()
        await self.mirror.load_all()

        async def follow() -> None:
            async for updates in self.reader.follow(start=start, block_ms=50):
                self.hub.publish_market(await self.mirror.apply(updates))

        self.task = asyncio.create_task(follow())

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()


async def settle(md: MarketData, replica: Replica) -> None:
    for _ in range(300):
        want = md.book(SYMBOL)
        if want is not None and replica.mirror.snapshot(SYMBOL) == want:
            return
        await asyncio.sleep(0.01)
    assert replica.mirror.snapshot(SYMBOL) == md.book(SYMBOL)


@pytest.mark.asyncio
async def test_a_book_subscriber_gets_a_snapshot_then_diffs_that_follow_it(
    redis_prefix: tuple[str, str],  # noqa: F811
) -> None:
    url, prefix = redis_prefix
    wconn, rconn = Redis.from_url(url), Redis.from_url(url)
    try:
        md = MarketData()
        writer = RedisMarketDataWriter(wconn, md, prefix=prefix)
        writer.start()
        feed = Feed(md)
        feed.run(300)  # the replica starts mid-stream
        await asyncio.sleep(0.05)
        replica = Replica(RedisMarketDataReader(rconn, prefix=prefix))
        await replica.start()
        feed.run(200)
        await settle(md, replica)

        client = replica.hub.connect()
        assert replica.hub.subscribe(client, "book", SYMBOL)
        for _ in range(10):
            feed.run(100)
            await asyncio.sleep(0.02)
        await settle(md, replica)
        await writer.stop()

        messages = [json.loads(m) for m in await client.next_batch(10_000)]
        assert messages[0]["op"] == "subscribed"
        snapshot, diffs = messages[1], messages[2:]
        assert snapshot["type"] == "snapshot" and diffs
        book = {"bids": dict(snapshot["bids"]), "asks": dict(snapshot["asks"])}
        last = snapshot["u"]
        for d in diffs:
            assert d["type"] == "diff" and d["U"] == last + 1, (last, d["U"], d["u"])
            for side in ("bids", "asks"):
                for price, qty in d[side]:
                    if qty:
                        book[side][price] = qty
                    else:
                        book[side].pop(price, None)
            last = d["u"]
        final = md.book(SYMBOL)
        assert final is not None and last == final.update_id
        assert sorted(book["bids"].items(), reverse=True) == final.bids
        assert sorted(book["asks"].items()) == final.asks
        await replica.stop()
    finally:
        await wconn.aclose()
        await rconn.aclose()


@pytest.mark.asyncio
async def test_a_gap_reloads_the_book(redis_prefix: tuple[str, str]) -> None:  # noqa: F811
    url, prefix = redis_prefix
    conn = Redis.from_url(url)
    try:
        md = MarketData()
        writer = RedisMarketDataWriter(conn, md, prefix=prefix)
        writer.attach()
        feed = Feed(md)
        feed.run(200)
        await writer.flush()
        mirror = BookMirror(RedisMarketDataReader(conn, prefix=prefix))
        assert await mirror.load_all() == len(md.symbols())
        have = mirror.snapshot(SYMBOL)
        assert have is not None
        feed.run(300)
        await writer.flush()
        far = BookDiff(SYMBOL, have.update_id + 50, have.update_id + 60, 0, 0, [], [])
        assert await mirror.apply([far]) == []  # not published: a hole before it
        assert mirror.gaps == 1 and mirror.snapshot(SYMBOL) == md.book(SYMBOL)
        stale = BookDiff(SYMBOL, 1, 1, 0, 0, [(1, 1)], [])
        assert await mirror.apply([stale]) == []  # in the snapshot already
        assert mirror.snapshot(SYMBOL) == md.book(SYMBOL)
    finally:
        await conn.aclose()


@pytest.mark.asyncio
async def test_a_new_market_is_mirrored_before_its_first_order(
    redis_prefix: tuple[str, str],  # noqa: F811
) -> None:
    url, prefix = redis_prefix
    wconn, rconn = Redis.from_url(url), Redis.from_url(url)
    try:
        md = MarketData()
        writer = RedisMarketDataWriter(wconn, md, prefix=prefix)
        writer.start()
        replica = Replica(RedisMarketDataReader(rconn, prefix=prefix))
        await replica.start()  # nothing in Redis yet
        feed = Feed(md)
        feed.run(5)  # assets and symbols, no order yet
        for _ in range(300):
            if replica.mirror.snapshot(SYMBOL) is not None:
                break
            await asyncio.sleep(0.01)
        client = replica.hub.connect()
        assert replica.hub.subscribe(client, "book", SYMBOL)
        feed.run(300)
        await settle(md, replica)
        await writer.stop()
        messages = [json.loads(m) for m in await client.next_batch(10_000)]
        assert messages[1]["type"] == "snapshot" and messages[1]["u"] == 0
        ids = [(m["U"], m["u"]) for m in messages[2:]]
        assert ids and ids[0][0] == 1
        assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ids))
        await replica.stop()
    finally:
        await wconn.aclose()
        await rconn.aclose()
