"""Margin figures on a distributed API replica (ADR 0033), on the real Redis: a core's
publisher writes the figures' inputs after each command, a replica-side reader answers
the account view, max-borrowable and max-transferable, and the config, and they equal
what the embedded service (the core in the process) answers for the same state: with
debts, after a margin call, through a liquidation, with a cross wallet short BTC. A
standby's publisher rewrites everything at its start (a user the core does not know
disappears); the change notices name the users and say when marks moved.

The market is the margin unit tests' (``tests/unit/margin_setup.py``): BTC-USDT at 5x,
liquidation price 88 of the long position, margin call at 92.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.integration.test_redis_marketdata import redis_prefix  # noqa: F401 (fixture)
from tests.unit.helpers import SYM, Exchange
from tests.unit.margin_setup import borrow, into, long_position, margin_market, mark
from tradewind.adapters.redis.margin import CHUNK, RedisMarginSink, RedisMarginSource
from tradewind.core.events import Event, LiquidationFinished
from tradewind.services.margin import MarginUnavailable
from tradewind.services.margin_mirror import MarginPublisher, MirroredMarginState
from tradewind.services.margin_state import CoreMarginState

WALLETS = [("isolated", SYM), ("cross", None)]
ASSETS = ["BTC", "USDT"]


class Published:
    """An exchange whose every command from now on also goes to a publisher (the core
    process's fan-out), with the publisher's task running."""

    def __init__(self, ex: Exchange, redis: Redis, prefix: str) -> None:
        self.ex = ex
        self.publisher = MarginPublisher(
            lambda: ex.core, RedisMarginSink(redis, prefix=prefix), seq_interval_s=0.0
        )
        self.publisher.start_at(ex.seq)
        self.task = asyncio.create_task(self.publisher.run())
        apply = ex.ok

        def ok(cmd: Any, ts: int | None = None) -> list[Event]:
            events = apply(cmd, ts)
            self.publisher.publish(ex.seq, ex.ts, events)
            return events

        ex.ok = ok  # type: ignore[method-assign]

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@pytest_asyncio.fixture
async def redis(redis_prefix: tuple[str, str]) -> AsyncIterator[tuple[Redis, str]]:  # noqa: F811
    url, prefix = redis_prefix
    client = Redis.from_url(url)
    yield client, prefix
    await client.aclose()


async def assert_same(reader: MirroredMarginState, ex: Exchange, users: list[int]) -> None:
    """The replica's answers equal the embedded service's, once it has the core's seq."""
    local = CoreMarginState(lambda: ex.core)

    async def mark_seq() -> int:
        return ex.seq

    await reader.prepare(None, mark_seq)
    assert reader.config() == local.config()
    for user in users:
        await reader.prepare(user, mark_seq)
        assert reader.wallets(user) == local.wallets(user)
        assert reader.wallet_ids(user) == sorted(local.wallet_ids(user))
        for kind, symbol in WALLETS:
            for asset in ASSETS:
                args = (user, kind, symbol, asset)
                assert reader.max_borrowable(*args) == local.max_borrowable(*args), args
                assert reader.max_transferable(*args) == local.max_transferable(*args), args


@pytest.mark.asyncio
async def test_replica_figures_equal_the_embedded_ones_through_a_liquidation(
    redis: tuple[Redis, str],
) -> None:
    client, prefix = redis
    source = RedisMarginSource(client, prefix=prefix)
    reader = MirroredMarginState(source, wait_s=5.0)
    notices: list[tuple[int, bool, list[int]]] = []

    async def listen() -> None:
        async for notice in source.changes():
            notices.append(notice)

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.05)  # subscribed
    ex = margin_market()
    core = Published(ex, client, prefix)
    try:
        # a long in user 1's isolated wallet (4,000 USDT owed, 500,000 BTC held)
        long_position(ex)
        await assert_same(reader, ex, [1, 2, 3])
        w = reader.wallets(1)[0]
        assert (w.level, w.liquidation) == (12_500, (SYM, 1, 88))

        # user 3: a cross wallet short BTC (5,000 USDT in, 400,000 BTC borrowed)
        into(ex, 3, "USDT", 5000, "cross")
        ex.ok(borrow(3, "BTC", 400_000, "cross"))
        await assert_same(reader, ex, [1, 3])
        assert reader.wallets(3)[0].liquidation == (SYM, -1, 1250)  # holds what it owes

        # a margin call at 92, then a liquidation at 88 into a bid inside the band
        mark(ex, 93)
        mark(ex, 92)
        await assert_same(reader, ex, [1, 3])
        assert reader.wallets(1)[0].called and reader.wallets(1)[0].level == 11_500
        mark(ex, 95)  # back above: the core clears the call without an event naming it
        await assert_same(reader, ex, [1, 3])
        assert not reader.wallets(1)[0].called
        ex.ok({"op": "place", "id": 70, "user": 4, "symbol": SYM, "side": "buy",
               "price": 86, "qty": 50})  # fmt: skip
        mark(ex, 90)
        events = mark(ex, 88)
        assert any(isinstance(e, LiquidationFinished) for e in events)
        await assert_same(reader, ex, [1, 3, 4])
        after = reader.wallets(1)[0]
        assert after.loans == [] and after.level is None and not after.called
        assert after.balances == {"USDT": (260, 0)}

        # user 1 starts again: into the wallet, borrow; read-your-writes by seq
        into(ex, 1, "USDT", 100)
        ex.ok(borrow(1, "USDT", 300))
        await assert_same(reader, ex, [1])
        assert reader.wallets(1)[0].loans[0].principal == 300

        await core.publisher.idle()
        await asyncio.sleep(0.05)
        users_named = {u for _, _, users in notices for u in users}
        assert {1, 3}.issubset(users_named)
        assert any(marks for _, marks, _ in notices)  # the marks moved
        assert max(seq for seq, _, _ in notices) == ex.seq
    finally:
        await core.stop()
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


@pytest.mark.asyncio
async def test_a_standby_rewrites_everything_at_its_start(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    reader = MirroredMarginState(RedisMarginSource(client, prefix=prefix), wait_s=5.0)

    async def zero() -> int:
        return 0

    with pytest.raises(MarginUnavailable):  # nothing published yet: 503
        await reader.prepare(1, zero)
    ex = margin_market()
    long_position(ex)
    # what an earlier core wrote: a wallet of a group that never became durable, ahead
    await client.hset(f"{prefix}:margin:u:7", mapping={"-150": b"\x90"})
    await client.hset(f"{prefix}:margin:state", mapping={"seq": 10**6})
    standby = Published(ex, client, prefix)
    try:
        await standby.publisher.idle()
        assert not await client.exists(f"{prefix}:margin:u:7")
        assert int(await client.hget(f"{prefix}:margin:state", "seq")) == ex.seq  # type: ignore[arg-type]
        await assert_same(reader, ex, [1, 7])
        assert reader.wallets(7) == []
    finally:
        await standby.stop()


class LookBeforeEachTransaction:
    """The sink's Redis client, which reads what a replica would see before each
    transaction it runs (that is, between the rewrite's steps)."""

    def __init__(self, real: Redis, look: Callable[[], Awaitable[None]]) -> None:
        self._real, self._look = real, look

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        pipe = self._real.pipeline(*args, **kwargs)
        execute = pipe.execute

        async def looked(*a: Any, **kw: Any) -> Any:
            await self._look()
            return await execute(*a, **kw)

        pipe.execute = looked  # type: ignore[method-assign]
        return pipe


@pytest.mark.asyncio
async def test_a_reader_never_sees_the_new_seq_before_its_user_is_rewritten(
    redis: tuple[Redis, str],
) -> None:
    """A rewrite takes several transactions; a replica reading between them finds no
    state (so it waits, or answers "not published yet"), never the new seq (nor the old
    one) beside a user hash not rewritten yet (CI once saw a replica answer no wallets
    that way)."""
    client, prefix = redis
    source = RedisMarginSource(client, prefix=prefix)
    await client.hset(f"{prefix}:margin:state", mapping={"seq": 10**6, "globals": b"old"})
    users = list(range(1, 3 * CHUNK + 2))
    rows = {u: {-u: b"row %d" % u} for u in users}
    last = users[-1]  # in the rewrite's last transaction of users
    seen: list[tuple[int, bytes | None, dict[int, bytes]]] = []

    async def look() -> None:
        seen.append(await source.read(last))

    sink = RedisMarginSink(LookBeforeEachTransaction(client, look), prefix=prefix)  # type: ignore[arg-type]
    await sink.rewrite(7, b"new", rows)
    assert len(seen) >= 4  # before each of the user transactions and the last one
    assert all((seq, glob) == (0, None) for seq, glob, _ in seen)
    assert await source.read(last) == (7, b"new", rows[last])
