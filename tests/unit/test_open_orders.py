"""The open-order index answers like the history would, and lets cancels and amends go
without the history."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from tests.support.core_bus import apply_stamped
from tradewind.core.commands import (
    AddAsset,
    AddSymbol,
    Amend,
    AnyCommand,
    Cancel,
    Deposit,
    Place,
)
from tradewind.core.engine import Core
from tradewind.core.events import Event
from tradewind.runtime.sequencer import Applied
from tradewind.runtime.streamgen import generate_stream
from tradewind.services.history import OPEN_STATUSES, InMemoryHistory, OrderView
from tradewind.services.open_orders import FollowedOrderIndex, OpenOrderIndex
from tradewind.services.trading import (
    LocalWriteMarks,
    OrderNotFound,
    OrderNotOpen,
    TradingService,
)


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
        applied = apply_stamped(self.core, cmd)
        self.index.apply(applied.seq, applied.ts, applied.events)
        return applied


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


# -- an API replica's index (ADR 0049) ---------------------------------------------------

SETUP: tuple[AnyCommand, ...] = (
    AddAsset(asset="BTC", decimals=8),
    AddAsset(asset="USDT", decimals=6),
    AddSymbol(symbol="BTC-USDT", base="BTC", quote="USDT", tick_size=10**4, lot_size=10**4),
    Deposit(user=1, asset="USDT", amount=10**9),
    Deposit(user=2, asset="BTC", amount=10**9),
)


def _batches(cmds: list[AnyCommand]) -> list[tuple[int, int, list[Event]]]:
    core = Core()
    out = []
    for seq, cmd in enumerate(cmds, start=1):
        if isinstance(cmd, Place) and cmd.id == 0:
            cmd = msgspec.structs.replace(cmd, id=seq)
        out.append((seq, seq, core.apply(msgspec.structs.replace(cmd, seq=seq, ts=seq))))
    return out


def _buy(qty: int = 5) -> Place:
    return Place(id=0, user=1, symbol="BTC-USDT", side="buy", price=100, qty=qty)


def test_followed_index_forgets_every_order_at_a_gap_and_knows_those_after_it() -> None:
    batches = _batches([*SETUP, _buy(), _buy(), _buy(), _buy()])  # orders 6, 7, 8, 9
    index = FollowedOrderIndex()
    for seq, ts, events in batches[:6]:  # up to order 6
        index.apply(seq, ts, events)
    assert index.find(1, 6) is not None
    for seq, ts, events in batches[7:]:  # order 7's batch lost
        index.apply(seq, ts, events)
    assert (index.find(1, 6), index.find(1, 7)) == (None, None)
    assert [index.find(1, i) is not None for i in (8, 9)] == [True, True]
    assert (index.restarts, index.applied_seq) == (1, 9)


def test_followed_index_started_late_skips_orders_accepted_before_it() -> None:
    sell = Place(id=0, user=2, symbol="BTC-USDT", side="sell", price=100, qty=2)
    batches = _batches([*SETUP, _buy(), sell])  # order 7 fills 2 of order 6
    index = FollowedOrderIndex()
    index.apply(*batches[-1])  # the replica's first batch: order 6's trade, not its acceptance
    assert index.find(1, 6) is None  # a view missing its acceptance would be wrong
    assert index.restarts == 0


class FollowedBus:
    """A real core answering at once; its events reach the replica's index only when
    ``deliver`` is called (the follower lags the replies), and the history at once."""

    def __init__(self, index: FollowedOrderIndex, history: InMemoryHistory) -> None:
        self.core = Core()
        self.index = index
        self.history = history
        self.undelivered: list[tuple[int, int, list[Event]]] = []

    @property
    def available(self) -> bool:
        return True

    async def submit(self, cmd: AnyCommand) -> Applied:
        applied = apply_stamped(self.core, cmd)
        self.history.apply(applied.seq, applied.ts, applied.events)
        self.undelivered.append((applied.seq, applied.ts, applied.events))
        return applied

    def deliver(self) -> None:
        for batch in self.undelivered:
            self.index.apply(*batch)
        self.undelivered.clear()


class SpyHistory(InMemoryHistory):
    """Counts the reads that reach the history."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get_order(self, user: int, order_id: int) -> OrderView | None:
        self.reads += 1
        return await super().get_order(user, order_id)


async def a_replica(
    index_wait_s: float = 0.5, marks: LocalWriteMarks | None = None
) -> tuple[FollowedBus, SpyHistory, TradingService]:
    """A replica's trading service over a real core, markets set up, nothing delivered
    to its index that the set-up did not bring."""
    index, history = FollowedOrderIndex(), SpyHistory()
    bus = FollowedBus(index, history)
    trading = TradingService(
        bus, history, open_orders=index, index_wait_s=index_wait_s, marks=marks
    )
    for cmd in SETUP:
        await bus.submit(cmd)
    return bus, history, trading


def test_a_replica_answers_cancels_from_its_index_once_the_follower_caught_up() -> None:
    async def go() -> None:
        bus, history, trading = await a_replica(index_wait_s=5.0)
        placed = await trading.place(1, "BTC-USDT", "buy", price=100, qty=5)
        bus.deliver()
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, bus.deliver)  # the cancel's batch comes after its reply
        cancelled = await trading.cancel(1, placed.id)
        assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "user")
        assert history.reads == 0
        # a read after the user's own write waits for the follower to fold it
        amended_elsewhere = await trading.place(1, "BTC-USDT", "buy", price=100, qty=5)
        await bus.submit(Amend(id=amended_elsewhere.id, user=1, symbol="BTC-USDT", qty=3))
        await trading.marks.note(1, bus.core.seq)  # as the replica that took it does
        loop.call_later(0.02, bus.deliver)
        seen = await trading.get_order(1, amended_elsewhere.id)
        assert seen is not None and seen.qty == 3
        assert history.reads == 0

    asyncio.run(go())


def test_a_replica_whose_follower_stalls_answers_from_the_history() -> None:
    async def go() -> None:
        bus, history, trading = await a_replica(index_wait_s=0.01)
        placed = await trading.place(1, "BTC-USDT", "buy", price=100, qty=5)
        bus.deliver()
        await bus.submit(Amend(id=placed.id, user=1, symbol="BTC-USDT", qty=3))
        await trading.marks.note(1, bus.core.seq)  # never delivered: the follower stalled
        seen = await trading.get_order(1, placed.id)
        assert seen is not None and seen.qty == 3  # the history's, not the index's qty 5
        cancelled = await trading.cancel(1, placed.id)
        assert cancelled.status == "cancelled"
        assert history.reads >= 2

    asyncio.run(go())


class CountingMarks(LocalWriteMarks):
    """Counts the reads of write marks (a Redis round trip on a replica)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def last(self, user: int) -> int:
        self.reads += 1
        return await super().last(user)


def test_a_replica_cancels_an_order_its_index_holds_without_reading_the_write_mark() -> None:
    async def go() -> None:
        marks = CountingMarks()
        bus, history, trading = await a_replica(marks=marks)
        first = await trading.place(1, "BTC-USDT", "buy", price=100, qty=5)
        second = await trading.place(1, "BTC-USDT", "buy", price=100, qty=5)
        bus.deliver()
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, bus.deliver)  # the cancel's batch comes after its reply
        cancelled = await trading.cancel(1, first.id)
        assert cancelled.status == "cancelled"
        assert (marks.reads, history.reads) == (0, 0)
        # the second is cancelled through another replica, which this one has not seen:
        # its index shows the order open, the core refuses, as for a race with a fill
        await bus.submit(Cancel(id=second.id, user=1, symbol="BTC-USDT"))
        seq = bus.core.seq
        with pytest.raises(OrderNotOpen):
            await trading.cancel(1, second.id)
        assert bus.core.seq == seq + 1  # asked the core
        bus.deliver()
        with pytest.raises(OrderNotOpen):  # closed in the index now: refused here
            await trading.cancel(1, second.id)
        assert bus.core.seq == seq + 1

    asyncio.run(go())
