"""MarketData on hand-written scenarios: iceberg visibility, diffs, candles, the 24 h
ticker, idempotence, listeners and the reader interface."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.md_stream import Driver, setup_commands
from tradewind.services.marketdata import (
    DAY_MS,
    BookDiff,
    Candle,
    MarketData,
    MarketDataReader,
    MarketUpdate,
    SymbolInfo,
    Ticker,
    Trades,
)

SYM = "BTC-USDT"
T0 = 1_700_000_040_000  # 40 s into a minute


class Feed:
    def __init__(self, **md_args: Any) -> None:
        self.drv = Driver()
        self.md = MarketData(**md_args)
        for cmd in setup_commands():
            self.do(cmd, 0)

    def do(self, cmd: dict[str, Any], ts: int = T0) -> list[MarketUpdate]:
        seq, ts, events = self.drv.apply({**cmd, "ts": ts})
        return self.md.apply(seq, ts, events)

    def place(
        self, id: int, user: int, side: str, price: int, qty: int, ts: int = T0, **kw: Any
    ) -> list[MarketUpdate]:
        return self.do(
            {
                "op": "place",
                "id": id,
                "user": user,
                "symbol": SYM,
                "side": side,
                "type": "limit",
                "price": price,
                "qty": qty,
                **kw,
            },
            ts,
        )

    def depth(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        book = self.drv.core.markets[SYM].book
        return book.depth(True, 0), book.depth(False, 0)

    def mine(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        snap = self.md.book(SYM)
        assert snap is not None
        return snap.bids, snap.asks


def of(updates: list[MarketUpdate], kind: type) -> list[Any]:
    return [u for u in updates if isinstance(u, kind)]


def test_symbols_are_learnt_from_events() -> None:
    f = Feed()
    info = f.md.symbol(SYM)
    assert info == SymbolInfo(SYM, "BTC", "USDT", 10_000, 10_000, 8, 6, "trading")
    assert [s.symbol for s in f.md.symbols()] == ["BTC-USDT", "ETH-USDT"]
    out = f.do({"op": "halt", "symbol": SYM})
    assert of(out, SymbolInfo)[0].status == "halted"
    assert f.md.book("NOPE-USDT") is None and f.md.trades("NOPE-USDT") == []


def test_iceberg_shows_one_slice_and_refreshes() -> None:
    f = Feed()
    out = f.place(1, 1, "sell", 100, 10, display_qty=3)
    assert f.mine() == f.depth() == ([], [(100, 3)])
    diff = of(out, BookDiff)[0]
    assert (diff.first_id, diff.last_id, diff.asks, diff.bids) == (1, 1, [(100, 3)], [])
    f.place(2, 2, "sell", 100, 2)
    assert f.mine() == f.depth() == ([], [(100, 5)])
    out = f.place(3, 3, "buy", 100, 4)  # takes the slice (3), then 1 of order 2
    assert f.mine() == f.depth() == ([], [(100, 4)])  # new slice 3 + 1 of order 2
    diff = of(out, BookDiff)[0]
    assert diff.asks == [(100, 4)] and diff.first_id == 3
    f.place(4, 3, "buy", 100, 5)  # 1 of order 2, then 3 of the iceberg's slice, 1 more
    assert f.mine() == f.depth()
    f.do({"op": "amend", "id": 1, "user": 1, "symbol": SYM, "qty": 1})
    assert f.mine() == f.depth()
    f.do({"op": "cancel", "id": 1, "user": 1, "symbol": SYM})
    assert f.mine() == f.depth() == ([], [])


def test_taker_rests_after_its_trades_and_before_the_stops_it_fires() -> None:
    f = Feed()
    f.place(1, 1, "sell", 100, 2)
    # a sell stop-limit that trades with the resting remainder of order 3, and a buy
    # stop-limit that joins it: both fire (oldest first) after order 3 rests
    f.do(
        {
            "op": "place",
            "id": 2,
            "user": 2,
            "symbol": SYM,
            "side": "sell",
            "type": "stop_limit",
            "stop_price": 101,
            "price": 100,
            "qty": 1,
        },
        T0,
    )
    f.do(
        {
            "op": "place",
            "id": 9,
            "user": 4,
            "symbol": SYM,
            "side": "buy",
            "type": "stop_limit",
            "stop_price": 100,
            "price": 100,
            "qty": 1,
        },
        T0,
    )
    out = f.place(3, 3, "buy", 100, 6)  # takes 2, rests 4; stop 2 takes 1; stop 9 rests 1
    assert f.mine() == f.depth() == ([(100, 4)], [])
    diff = of(out, BookDiff)[0]
    assert diff.bids == [(100, 4)] and diff.asks == [(100, 0)]
    assert diff.last_id - diff.first_id + 1 == 4  # ask -2, bid +4, bid -1, bid +1


def test_diffs_are_contiguous_and_snapshot_consistent() -> None:
    f = Feed()
    last = 0
    for i in range(1, 30):
        out = f.place(i, 1 + i % 3, "buy" if i % 2 else "sell", 95 + i % 11, 1 + i % 4)
        for d in of(out, BookDiff):
            assert d.first_id == last + 1
            last = d.last_id
        snap = f.md.book(SYM)
        assert snap is not None and snap.update_id == last
        assert f.mine() == f.depth()
    top = f.md.book(SYM, 2)
    assert top is not None
    assert top.bids == f.depth()[0][:2] and top.asks == f.depth()[1][:2]


def test_candles_bucket_by_batch_ts() -> None:
    f = Feed()
    m0 = T0 - T0 % 60_000
    f.place(1, 1, "sell", 100, 2)
    out = f.place(2, 2, "buy", 100, 2, ts=m0 + 1_000)
    assert [t.price for t in of(out, Trades)[0].trades] == [100]
    assert {c.interval for c in of(out, Candle)} == {"1m", "5m", "15m", "1h", "4h", "1d"}
    f.place(3, 1, "sell", 104, 1, ts=m0 + 2_000)
    f.place(4, 2, "buy", 104, 1, ts=m0 + 3_000)
    f.place(5, 1, "sell", 98, 1, ts=m0 + 61_000)
    f.place(6, 2, "buy", 98, 1, ts=m0 + 61_000)
    ones = f.md.candles(SYM, "1m")
    assert [(c.open_ts, c.open, c.high, c.low, c.close, c.volume, c.count) for c in ones] == [
        (m0, 100, 104, 100, 104, 3, 2),
        (m0 + 60_000, 98, 98, 98, 98, 1, 1),
    ]
    assert ones[0].quote_volume == 100 * 2 + 104 * 1
    day = f.md.candles(SYM, "1d")
    assert len(day) == 1 and day[0].open_ts % DAY_MS == 0 and day[0].count == 3
    assert f.md.candles(SYM, "1m", limit=1) == ones[-1:]
    assert f.md.candles(SYM, "1m", end_ts=m0) == ones[:1]
    assert f.md.candles(SYM, "1m", start_ts=m0 + 1) == ones[1:]
    assert f.md.candles(SYM, "7m") == []


def test_ticker_rolls_over_24_hours() -> None:
    f = Feed()
    f.place(1, 1, "sell", 100, 10)
    f.place(2, 2, "buy", 100, 1, ts=T0)
    f.place(3, 2, "buy", 100, 1, ts=T0 + 3_600_000)
    f.place(4, 1, "sell", 90, 1, ts=T0 + 3_600_000)
    f.place(5, 2, "buy", 90, 1, ts=T0 + 3_600_000)
    t = f.md.ticker(SYM)
    assert t is not None
    assert (t.last, t.open, t.high, t.low, t.change, t.volume, t.count) == (
        90,
        100,
        100,
        90,
        -10,
        3,
        3,
    )
    # 24 h after the first trade's minute it leaves the window
    assert f.md.advance(T0 + DAY_MS - 60_000) == []
    out = f.md.advance(T0 + DAY_MS)
    t2 = of(out, Ticker)[0]
    assert (t2.open, t2.high, t2.low, t2.change, t2.volume, t2.count) == (100, 100, 90, -10, 2, 2)
    out = f.md.advance(T0 + DAY_MS + 3_600_000)
    t3 = of(out, Ticker)[0]
    assert (t3.last, t3.open, t3.high, t3.volume, t3.count) == (90, None, None, 0, 0)
    assert f.md.ticker(SYM) == t3


def test_replayed_batches_are_ignored_and_listeners_isolated() -> None:
    f = Feed()
    seen: list[list[MarketUpdate]] = []

    def boom(updates: Any) -> None:
        raise RuntimeError("listener bug")

    f.md.subscribe(boom)
    unsubscribe = f.md.subscribe(lambda u: seen.append(list(u)))
    seq, ts, events = f.drv.apply(
        {
            "op": "place",
            "id": 1,
            "user": 1,
            "symbol": SYM,
            "side": "sell",
            "type": "limit",
            "price": 100,
            "qty": 1,
            "ts": T0,
        }
    )
    first = f.md.apply(seq, ts, events)
    assert first and seen == [first]
    assert f.md.apply(seq, ts, events) == []  # the same seq again
    assert f.mine() == f.depth()
    unsubscribe()
    f.place(2, 1, "sell", 101, 1)
    assert len(seen) == 1


def test_trades_ring_buffer_keeps_the_newest() -> None:
    f = Feed(trades_kept=3)
    f.place(1, 1, "sell", 100, 100)
    for i in range(5):
        f.place(10 + i, 2, "buy", 100, 1 + i)
    got = f.md.trades(SYM)
    assert [t.qty for t in got] == [3, 4, 5]
    assert [t.qty for t in f.md.trades(SYM, 2)] == [4, 5]
    assert all(t.side == "buy" and t.quote == 100 * t.qty for t in got)


def test_load_history_and_the_reader_protocol() -> None:
    f = Feed()
    f.place(1, 1, "sell", 100, 10)
    f.place(2, 2, "buy", 100, 1)
    md2 = MarketData()
    md2.seed(f.drv.core)
    md2.load_candles([c for iv in ("1m", "1h") for c in f.md.candles(SYM, iv)])
    md2.load_trades(SYM, f.md.trades(SYM))
    assert md2.candles(SYM, "1m") == f.md.candles(SYM, "1m")
    assert md2.trades(SYM) == f.md.trades(SYM)
    t1, t2 = f.md.ticker(SYM), md2.ticker(SYM)
    assert t1 is not None and t2 is not None
    assert (t2.last, t2.open, t2.volume) == (t1.last, t1.open, t1.volume)

    reader: MarketDataReader = f.md

    async def read() -> None:
        assert await reader.get_book(SYM, 1) == f.md.book(SYM, 1)
        assert await reader.get_trades(SYM) == f.md.trades(SYM)
        assert await reader.get_candles(SYM, "1m") == f.md.candles(SYM, "1m")
        assert await reader.get_ticker(SYM) == f.md.ticker(SYM)
        assert await reader.get_tickers() == f.md.tickers()
        assert await reader.get_symbols() == f.md.symbols()

    asyncio.run(read())
