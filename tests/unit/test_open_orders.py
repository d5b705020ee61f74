"""The open-order index answers like the history would, and lets cancels and amends go
without the history."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from tradewind.core.commands import AddAsset, AddSymbol, AnyCommand, Deposit, Place
from tradewind.core.engine import Core
from tradewind.runtime.sequencer import Applied
from tradewind.runtime.streamgen import generate_stream
from tradewind.services.history import OPEN_STATUSES, InMemoryHistory
from tradewind.services.open_orders import OpenOrderIndex
from tradewind.services.trading import OrderNotFound, OrderNotOpen, TradingService


def test_index_holds_exactly_the_open_orders_with_the_historys_views() -> None:
    core = Core()
    index = OpenOrderIndex(keep_closed=100)
    history = InMemoryHistory()
    for cmd in generate_stream(5_000, n_accounts=50, seed=3):
        events = core.apply(cmd)
        index.apply(cmd.seq, cmd.ts, events)
        history.apply(cmd.seq, cmd.ts, events)

    async def views() -> None:
        open_ids = set()
        for state in history._orders.values():
            view = await history.get_order(state.user, state.id)
            assert view is not None
            found = index.find(state.user, state.id)
            if view.status in OPEN_STATUSES:
                open_ids.add(state.id)
                assert found == view
                assert index.find(state.user + 1, state.id) is None  # someone else's
            elif found is not None:  # a recently closed one
                assert found == view
        assert len(index) == len(open_ids) > 0

    asyncio.run(views())


def test_closed_orders_are_kept_up_to_the_limit_oldest_dropped_first() -> None:
    core = Core()
    index = OpenOrderIndex(keep_closed=2)
    setup: list[AnyCommand] = [
        AddAsset(asset="BTC", decimals=8),
        AddAsset(asset="USDT", decimals=6),
        AddSymbol(symbol="BTC-USDT", base="BTC", quote="USDT", tick_size=10**4, lot_size=10**4),
        Deposit(user=1, asset="USDT", amount=10**9),
    ]
    seq = 0
    for cmd in setup:
        seq += 1
        index.apply(seq, seq, core.apply(msgspec.structs.replace(cmd, seq=seq, ts=seq)))
    for _ in range(3):  # three IOC orders that find nothing: each closes at once
        seq += 1
        place = Place(id=seq, user=1, symbol="BTC-USDT", side="buy", price=100, qty=1, tif="IOC")
        index.apply(seq, seq, core.apply(msgspec.structs.replace(place, seq=seq, ts=seq)))
    assert len(index) == 0
    assert index.find(1, 5) is None  # dropped
    closed = [index.find(1, 6), index.find(1, 7)]
    assert [v.status if v else None for v in closed] == ["cancelled", "cancelled"]


class IndexedBus:
    """A real core that feeds the index (as the runner's publisher does) but never the
    history: a cancel or amend must not need the history."""

    def __init__(self, index: OpenOrderIndex) -> None:
        self.core = Core()
        self.index = index

    @property
    def available(self) -> bool:
        return True

    async def submit(self, cmd: AnyCommand) -> Applied:
        seq = self.core.seq + 1
        if isinstance(cmd, Place) and cmd.id == 0:
            cmd = msgspec.structs.replace(cmd, id=seq)
        cmd = msgspec.structs.replace(cmd, seq=seq, ts=seq)
        events = self.core.apply(cmd)
        self.index.apply(seq, seq, events)
        return Applied(seq, seq, cmd, events)


def test_cancel_and_amend_are_answered_from_the_index() -> None:
    async def go() -> None:
        index = OpenOrderIndex()
        bus = IndexedBus(index)
        history = InMemoryHistory()  # never fed: would answer "no such order"
        trading = TradingService(bus, history, open_orders=index, read_wait_s=0.01)
        for cmd in (
            AddAsset(asset="BTC", decimals=8),
            AddAsset(asset="USDT", decimals=6),
            AddSymbol(symbol="BTC-USDT", base="BTC", quote="USDT", tick_size=10**4, lot_size=10**4),
            Deposit(user=1, asset="USDT", amount=10**9),
        ):
            await bus.submit(cmd)
        placed = await trading.place(1, "BTC-USDT", "buy", price=100, qty=5)
        assert (await trading.get_order(1, placed.id)) == placed
        amended = await trading.amend(1, placed.id, qty=3)
        assert (amended.qty, amended.status) == (3, "new")
        with pytest.raises(OrderNotFound):
            await trading.cancel(2, placed.id)  # not user 2's order
        cancelled = await trading.cancel(1, placed.id)
        assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "user")
        with pytest.raises(OrderNotOpen):
            await trading.cancel(1, placed.id)
        assert len(index) == 0

    asyncio.run(go())
