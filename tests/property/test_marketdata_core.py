"""Market data against the real core: random streams through a ``Core`` and a
``MarketData``, checked after every command.

After every batch:
- ``MarketData.book(symbol, 0)`` equals the core's visible depth on both sides;
- the diffs of that symbol so far are contiguous (``first_id == previous last_id + 1``),
  and a replica that applies them equals the snapshot;
- a client that joins at a random moment (snapshot, then the diffs with the resync rule
  ``U <= L + 1 <= u``) converges on the same book.

At the end: candles and the 24 h ticker equal a naive recomputation from every trade,
and a service seeded from the core mid-stream agrees with the one fed from the start.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from typing import Any

import pytest

from tests.support.md_stream import SYMBOLS, Driver, random_commands, setup_commands
from tradewind.core.events import Trade
from tradewind.runtime.streamgen import generate_stream
from tradewind.services.marketdata import (
    DAY_MS,
    INTERVALS,
    MINUTE_MS,
    BookDiff,
    MarketData,
    MarketUpdate,
    Trades,
)


class Replica:
    """A client's book kept from diffs, with the documented resync procedure."""

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.last: int | None = None  # update id of the state held; None: not synced
        self.buffer: list[BookDiff] = []

    def load(
        self, update_id: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]]
    ) -> None:
        self.bids, self.asks = dict(bids), dict(asks)
        self.last = update_id
        pending, self.buffer = self.buffer, []
        for d in pending:
            self.on_diff(d)

    def on_diff(self, d: BookDiff) -> None:
        if self.last is None:
            self.buffer.append(d)
            return
        if d.last_id <= self.last:
            return  # already in the snapshot
        assert d.first_id <= self.last + 1 <= d.last_id, (d.first_id, self.last, d.last_id)
        for side, levels in ((self.bids, d.bids), (self.asks, d.asks)):
            for p, q in levels:
                if q:
                    side[p] = q
                else:
                    side.pop(p, None)
        self.last = d.last_id

    def view(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())


def _check_books(md: MarketData, core: Any) -> None:
    for sym in core.markets:
        snap = md.book(sym, 0)
        assert snap is not None
        book = core.markets[sym].book
        assert snap.bids == book.depth(True, 0), sym
        assert snap.asks == book.depth(False, 0), sym
        top = md.book(sym, 3)
        assert top is not None
        assert top.bids == book.depth(True, 3) and top.asks == book.depth(False, 3)


def run_stream(seed: int, n: int) -> None:
    rng = random.Random(seed)
    drv = Driver()
    md = MarketData(candles_kept=5000, trades_kept=50)
    got: list[MarketUpdate] = []
    md.subscribe(got.extend)
    replicas = {s: Replica() for s in SYMBOLS}
    joiners: dict[str, Replica] = {}
    last_id: dict[str, int] = defaultdict(int)
    trades: list[tuple[int, Trade]] = []
    seeded: MarketData | None = None
    commands = itertools.chain(setup_commands(), random_commands(rng, n, drv.core))
    seed_at = n // 2
    for i, cmd in enumerate(commands):
        seq, ts, events = drv.apply(cmd)
        got.clear()
        out = md.apply(seq, ts, events)
        assert out == got
        if seeded is not None:
            seeded.apply(seq, ts, events)
        for e in events:
            if isinstance(e, Trade):
                trades.append((ts, e))
        for u in out:
            if isinstance(u, BookDiff):
                assert u.first_id == last_id[u.symbol] + 1, "diffs must be contiguous"
                assert u.first_id <= u.last_id
                last_id[u.symbol] = u.last_id
                replicas[u.symbol].on_diff(u)
                if u.symbol in joiners:
                    joiners[u.symbol].on_diff(u)
        for sym, rep in replicas.items():
            if not md.has_symbol(sym):
                continue
            if rep.last is None:
                rep.load(0, [], [])
            snap = md.book(sym, 0)
            assert snap is not None
            assert rep.last == snap.update_id
            assert rep.view() == (snap.bids, snap.asks)
        _check_books(md, drv.core)
        # A client joins: subscribes (diffs start buffering now), snapshot arrives later.
        if rng.random() < 0.01:
            sym = rng.choice(SYMBOLS)
            joiners[sym] = Replica()
        for sym, j in list(joiners.items()):
            if j.last is None and rng.random() < 0.3:
                snap = md.book(sym, 0)
                assert snap is not None
                j.load(snap.update_id, snap.bids, snap.asks)
            if j.last is not None:
                snap = md.book(sym, 0)
                assert snap is not None
                assert j.view() == (snap.bids, snap.asks)
        if i == seed_at:
            seeded = MarketData()
            seeded.seed(drv.core, {s: md.book(s).update_id for s in SYMBOLS})  # type: ignore[union-attr]
            for s in SYMBOLS:
                assert _levels(seeded, s) == _levels(md, s)
    assert md.unknown_orders == 0
    assert seeded is not None and seeded.unknown_orders == 0
    for s in SYMBOLS:
        assert _levels(seeded, s) == _levels(md, s)
    _check_market_stats(md, trades, drv.core.ts)


def _levels(md: MarketData, sym: str) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
    snap = md.book(sym)
    assert snap is not None
    return snap.update_id, snap.bids, snap.asks


def _check_market_stats(md: MarketData, trades: list[tuple[int, Trade]], now: int) -> None:
    for sym in SYMBOLS:
        mine = [(ts, t) for ts, t in trades if t.symbol == sym]
        assert [(t.price, t.qty) for t in md.trades(sym, 50)] == [
            (t.price, t.qty) for _, t in mine[-50:]
        ]
        for interval, ms in INTERVALS.items():
            want: dict[int, list[int]] = {}
            for ts, t in mine:
                start = ts - ts % ms
                c = want.get(start)
                if c is None:
                    want[start] = [t.price, t.price, t.price, t.price, t.qty, t.quote, 1]
                else:
                    c[1] = max(c[1], t.price)
                    c[2] = min(c[2], t.price)
                    c[3] = t.price
                    c[4] += t.qty
                    c[5] += t.quote
                    c[6] += 1
            have = {
                c.open_ts: [c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.count]
                for c in md.candles(sym, interval, limit=10_000)
            }
            assert have == want, (sym, interval)
        ticker = md.ticker(sym)
        assert ticker is not None
        cutoff = now - now % MINUTE_MS - DAY_MS
        window = [t for ts, t in mine if ts - ts % MINUTE_MS > cutoff]
        assert ticker.last == (mine[-1][1].price if mine else None)
        assert ticker.count == len(window)
        assert ticker.volume == sum(t.qty for t in window)
        assert ticker.quote_volume == sum(t.quote for t in window)
        if window:
            assert ticker.open == window[0].price
            assert ticker.high == max(t.price for t in window)
            assert ticker.low == min(t.price for t in window)
            assert ticker.change == window[-1].price - window[0].price
        else:
            assert ticker.open is ticker.high is ticker.low is ticker.change is None


@pytest.mark.parametrize("seed", range(6))
def test_random_stream_matches_core(seed: int) -> None:
    run_stream(seed, 2500)


def test_streamgen_stream_matches_core() -> None:
    """The benchmark generator's stream (many levels, many cancels)."""
    md = MarketData()
    drv = Driver()
    n_trades = 0
    for cmd in generate_stream(3000, n_symbols=2, seed=7):
        events = drv.core.apply(cmd)
        for u in md.apply(cmd.seq, cmd.ts, events):
            if isinstance(u, Trades):
                n_trades += len(u.trades)
        _check_books(md, drv.core)
    assert n_trades > 0
    assert md.unknown_orders == 0
