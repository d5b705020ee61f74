"""The in-memory market-data service: public books, trades, candles and tickers built
from the core's event batches.

:meth:`MarketData.apply` sits on the publish path (the core runner calls it after every
group commit, once per command), so it is synchronous, allocation-light and never raises
on an event it cannot place.

Invariants kept here:
- after ``apply`` returns, :meth:`MarketData.book` equals the core's visible depth for
  every symbol (``core.markets[s].book.depth(buy, 0)``): per open order the service
  tracks its side, price, open quantity, display size and *visible* quantity, exactly as
  the matcher does (an iceberg shows ``min(display, left)`` after each slice);
- an order that takes liquidity is held as *pending* while its own trades follow and joins
  the book (if its time in force lets it rest) at the first event that is not part of its
  run, which is where the core adds it (before any stop its trades fire);
- per symbol the book update id grows by one for each change of a level's visible
  quantity, so the diffs of consecutive batches have contiguous ``first_id .. last_id``
  ranges and a snapshot taken between two ``apply`` calls is consistent with them;
- candles and the 24-hour window are bucketed by the batch ``ts``; time never goes back
  (a smaller ``ts`` is taken as the newest one seen); a batch whose ``seq`` is not above
  the last one applied is ignored, so a replayed batch is not counted twice;
- integers only: ticks, lots and minor units.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import msgspec

from tradewind.core.events import (
    AssetAdded,
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderTriggered,
    SymbolAdded,
    SymbolHalted,
    SymbolResumed,
    Trade,
)
from tradewind.services.marketdata.ports import MarketListener
from tradewind.services.marketdata.types import (
    DAY_MS,
    INTERVALS,
    MINUTE_MS,
    BookDiff,
    BookSnapshot,
    Candle,
    Level,
    MarketUpdate,
    PublicTrade,
    SymbolInfo,
    Ticker,
    Trades,
)

if TYPE_CHECKING:
    from tradewind.core.engine import Core

log = logging.getLogger(__name__)

_INTERVAL_ITEMS = tuple(INTERVALS.items())
_LIMIT_STOPS = frozenset({"stop_limit", "take_profit_limit"})


class _Symbol:
    """One market's public state plus the scratch of the batch being applied."""

    __slots__ = (
        "ask_keys",
        "asks",
        "bid_keys",
        "bids",
        "book_seq",
        "book_ts",
        "candles",
        "dirty",
        "first_id",
        "info",
        "last",
        "new_trades",
        "ticker_ts",
        "touched_asks",
        "touched_bids",
        "trades",
        "update_id",
        "win_count",
        "win_high",
        "win_low",
        "win_quote",
        "win_volume",
        "window",
    )

    def __init__(self, info: SymbolInfo, trades_kept: int, candles_kept: int) -> None:
        self.info = info
        self.bids: dict[int, int] = {}  # price -> visible qty
        self.asks: dict[int, int] = {}
        self.bid_keys: list[int] = []  # ascending: best bid last
        self.ask_keys: list[int] = []  # ascending: best ask first
        self.update_id = 0
        self.book_seq = 0
        self.book_ts = 0
        self.trades: deque[PublicTrade] = deque(maxlen=trades_kept)
        self.candles: dict[str, deque[_Bucket]] = {
            name: deque(maxlen=candles_kept) for name in INTERVALS
        }
        # 1-minute buckets of the rolling 24 h window and their running totals.
        self.window: deque[_Bucket] = deque()
        self.win_volume = 0
        self.win_quote = 0
        self.win_count = 0
        self.win_high: int | None = None
        self.win_low: int | None = None
        self.last: int | None = None
        self.ticker_ts = 0  # when the ticker last changed
        # batch scratch
        self.dirty = False
        self.first_id = 0
        self.touched_bids: set[int] = set()
        self.touched_asks: set[int] = set()
        self.new_trades: list[PublicTrade] = []


class _Order:
    """A resting (or pending) order's public footprint."""

    __slots__ = ("buy", "display", "id", "price", "qty", "rests", "sym", "visible")

    def __init__(
        self,
        id: int,
        sym: _Symbol,
        buy: bool,
        price: int,
        qty: int,
        display: int | None,
        rests: bool,
    ) -> None:
        self.id = id
        self.sym = sym
        self.buy = buy
        self.price = price
        self.qty = qty
        self.display = display
        self.rests = rests  # pending only: whether what is left joins the book
        self.visible = 0


class _Stop:
    """An untriggered stop: what it becomes when it fires."""

    __slots__ = ("buy", "limit", "qty", "rests", "sym")

    def __init__(self, sym: _Symbol, buy: bool, limit: int, qty: int, rests: bool) -> None:
        self.sym = sym
        self.buy = buy
        self.limit = limit
        self.qty = qty
        self.rests = rests


class _Bucket:
    """A mutable candle."""

    __slots__ = ("close", "count", "high", "low", "open", "open_ts", "quote_volume", "volume")

    def __init__(
        self,
        open_ts: int,
        open: int,
        high: int,
        low: int,
        close: int,
        volume: int,
        quote_volume: int,
        count: int,
    ) -> None:
        self.open_ts = open_ts
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.quote_volume = quote_volume
        self.count = count

    def frozen(self, symbol: str, interval: str) -> Candle:
        return Candle(
            symbol,
            interval,
            self.open_ts,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.quote_volume,
            self.count,
        )


class MarketData:
    """Public market data of every symbol, fed with ``apply(seq, ts, events)``.

    Also a :class:`~tradewind.services.marketdata.ports.MarketDataReader` (the ``get_*``
    coroutines); the synchronous accessors (:meth:`book`, :meth:`trades`, ...) answer the
    same from the caller's thread of control, with no ``await`` between batches.
    """

    def __init__(self, *, trades_kept: int = 1000, candles_kept: int = 1500) -> None:
        if trades_kept < 1 or candles_kept < 1:
            raise ValueError("trades_kept and candles_kept must be positive")
        self.trades_kept = trades_kept
        self.candles_kept = candles_kept
        self.seq = 0
        self.ts = 0
        self.unknown_orders = 0
        """Fills or amends of orders this service never saw (a seeding problem); counted,
        not raised, so the publish path never fails."""
        self._listeners: list[MarketListener] = []
        self._reset()

    def _reset(self) -> None:
        self._symbols: dict[str, _Symbol] = {}
        self._assets: dict[str, int] = {}
        self._orders: dict[int, _Order] = {}
        self._stops: dict[int, _Stop] = {}
        self._pend: _Order | None = None
        self._dirty: list[_Symbol] = []
        self._minute = 0

    # ------------------------------------------------------------------ listeners

    def subscribe(self, listener: MarketListener) -> Callable[[], None]:
        """Call ``listener(updates)`` after every batch that produced updates; returns a
        function that unsubscribes it. A listener that raises is logged and kept."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _emit(self, updates: list[MarketUpdate]) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(updates)
            except Exception:
                log.exception("market-data listener %r failed", listener)

    # ------------------------------------------------------------------ seeding

    def seed(self, core: Core, update_ids: Mapping[str, int] | None = None) -> None:
        """Start from the state of ``core`` (after recovery) instead of from nothing.

        Books, stops, symbols and last prices come from the core; trades, candles and
        tickers start empty (see :meth:`load_candles`, :meth:`load_trades`). Book update
        ids start at ``update_ids[symbol]`` (default 0): give a number above any id
        clients may have seen (the Redis writer's ``next_update_ids``), so a client
        following the old ids sees a gap and resyncs."""
        self._reset()
        self.seq, self.ts = core.seq, core.ts
        self._minute = core.ts - core.ts % MINUTE_MS
        self._assets = dict(core.assets)
        ids = update_ids or {}
        for name in sorted(core.markets):
            mk = core.markets[name]
            s = self._add_symbol(
                SymbolInfo(
                    name,
                    mk.base,
                    mk.quote,
                    mk.tick_size,
                    mk.lot_size,
                    self._assets.get(mk.base),
                    self._assets.get(mk.quote),
                    "halted" if mk.halted else "trading",
                )
            )
            s.last = mk.last_price
            s.update_id = ids.get(name, 0)
            s.book_seq, s.book_ts = core.seq, core.ts
            s.ticker_ts = core.ts
            for buy in (True, False):
                levels, keys = (s.bids, s.bid_keys) if buy else (s.asks, s.ask_keys)
                for price, orders in mk.book.side_levels(buy):
                    total = 0
                    for o in orders:
                        mine = _Order(o.id, s, buy, price, o.qty, o.display, True)
                        mine.visible = o.visible
                        self._orders[o.id] = mine
                        total += o.visible
                    if total:
                        levels[price] = total
                        insort(keys, price)
        for sid, st in core.stops.items():
            sym = self._symbols.get(st.symbol)
            if sym is not None:
                rests = st.type in _LIMIT_STOPS and st.tif == "GTC"
                self._stops[sid] = _Stop(sym, st.buy, st.limit, st.qty, rests)

    def load_trades(self, symbol: str, trades: Iterable[PublicTrade]) -> None:
        """Put known trades (oldest first) in a symbol's ring buffer, e.g. from SQL at
        start-up; sets the last price if none is known."""
        s = self._symbols.get(symbol)
        if s is None:
            return
        for t in trades:
            s.trades.append(t)
            s.last = t.price

    def load_candles(self, candles: Iterable[Candle]) -> None:
        """Put known candles (each interval oldest first) back, e.g. from SQL at start-up;
        1-minute candles within 24 h of the newest ``ts`` feed the ticker window."""
        for c in candles:
            s = self._symbols.get(c.symbol)
            if s is None or c.interval not in INTERVALS:
                continue
            b = _Bucket(
                c.open_ts, c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.count
            )
            dq = s.candles[c.interval]
            if dq and dq[-1].open_ts >= c.open_ts:
                continue
            dq.append(b)
            if c.interval == "1m":
                self._window_add(s, b, b.volume, b.quote_volume, b.count, b.high, b.low)
                if s.last is None:
                    s.last = b.close
        for s in self._symbols.values():
            self._roll(s, self._minute)
            s.ticker_ts = self.ts

    # ------------------------------------------------------------------ the publish path

    def apply(self, seq: int, ts: int, events: Sequence[Event]) -> list[MarketUpdate]:
        """Fold one batch of core events in; return (and give the listeners) what changed."""
        if seq and seq <= self.seq:
            return []
        if seq > self.seq:
            self.seq = seq
        if ts < self.ts:
            ts = self.ts
        self.ts = ts
        out: list[MarketUpdate] = []
        minute = ts - ts % MINUTE_MS
        rolled: list[_Symbol] = []
        if minute > self._minute:
            self._minute = minute
            rolled = [x for x in self._symbols.values() if x.window and self._roll(x, minute)]
            for x in rolled:
                x.ticker_ts = ts
        symbols, orders, level = self._symbols, self._orders, self._level
        for idx, e in enumerate(events):
            if isinstance(e, Trade):
                pend = self._pend
                if pend is not None and pend.id != e.taker_id:
                    self._flush()
                    pend = None
                s = symbols.get(e.symbol)
                if s is None:
                    continue
                m = orders.get(e.maker_id)
                if m is None:
                    self.unknown_orders += 1
                else:
                    left = e.maker_left
                    old = m.visible
                    if not left:
                        del orders[e.maker_id]
                        new = 0
                    else:
                        m.qty = left
                        if m.display is None:
                            new = left
                        else:
                            new = old - e.qty
                            if new <= 0:  # a slice is used up: the next one shows
                                new = m.display if m.display < left else left
                        m.visible = new
                    level(s, m.buy, m.price, new - old)
                if pend is not None:
                    pend.qty = e.taker_left
                s.new_trades.append(
                    PublicTrade(seq, idx, ts, e.price, e.qty, e.quote, e.taker_side)
                )
                if not s.dirty:
                    s.dirty = True
                    self._dirty.append(s)
            elif isinstance(e, OrderCancelled):
                # Within a taker's run this is its own end or a maker that self-trade
                # prevention removed: neither ends the run early.
                pend = self._pend
                if pend is not None and pend.id == e.id:
                    self._pend = None
                    continue
                o = orders.pop(e.id, None)
                if o is not None:
                    level(o.sym, o.buy, o.price, -o.visible)
                else:
                    self._stops.pop(e.id, None)
            else:
                if self._pend is not None:
                    self._flush()
                if isinstance(e, OrderAccepted):
                    s = symbols.get(e.symbol)
                    if s is None or e.price is None or e.qty is None:
                        continue  # unknown symbol, or a market order: never rests
                    buy = e.side == "buy"
                    if e.status == "untriggered":
                        rests = e.type in _LIMIT_STOPS and e.tif == "GTC"
                        self._stops[e.id] = _Stop(s, buy, e.price, e.qty, rests)
                    elif e.type == "limit":
                        rests = e.tif == "GTC" or e.tif == "GTD"
                        self._pend = _Order(e.id, s, buy, e.price, e.qty, e.display_qty, rests)
                elif isinstance(e, OrderAmended):
                    o = orders.get(e.id)
                    if o is None:
                        self.unknown_orders += 1
                        continue
                    if e.kept_priority:
                        new = o.visible if o.visible < e.qty else e.qty
                        o.qty = e.qty
                        level(o.sym, o.buy, o.price, new - o.visible)
                        o.visible = new
                    else:  # leaves its place and comes back as a taker at the new terms
                        del orders[e.id]
                        level(o.sym, o.buy, o.price, -o.visible)
                        self._pend = _Order(e.id, o.sym, o.buy, e.price, e.qty, o.display, True)
                elif isinstance(e, OrderTriggered):
                    st = self._stops.pop(e.id, None)
                    if st is not None and st.rests:
                        self._pend = _Order(e.id, st.sym, st.buy, st.limit, st.qty, None, True)
                elif isinstance(e, SymbolAdded):
                    if e.symbol not in symbols:
                        info = SymbolInfo(
                            e.symbol,
                            e.base,
                            e.quote,
                            e.tick_size,
                            e.lot_size,
                            self._assets.get(e.base),
                            self._assets.get(e.quote),
                        )
                        self._add_symbol(info)
                        out.append(info)
                elif isinstance(e, AssetAdded):
                    self._assets[e.asset] = e.decimals
                elif isinstance(e, SymbolHalted | SymbolResumed):
                    s = symbols.get(e.symbol)
                    if s is not None:
                        status = "halted" if isinstance(e, SymbolHalted) else "trading"
                        if s.info.status != status:
                            s.info = msgspec.structs.replace(s.info, status=status)
                            out.append(s.info)
        if self._pend is not None:
            self._flush()
        if self._dirty:
            for s in self._dirty:
                self._finish(s, seq, ts, out)
                s.dirty = False
            self._dirty.clear()
        for s in rolled:
            if not out or not _has_ticker(out, s.info.symbol):
                out.append(self._ticker(s))
        if out and self._listeners:
            self._emit(out)
        return out

    def advance(self, ts: int) -> list[MarketUpdate]:
        """Let time pass without events (call it about once a minute): rolls the 24 h
        windows and emits the tickers that changed."""
        if ts <= self.ts:
            return []
        self.ts = ts
        minute = ts - ts % MINUTE_MS
        out: list[MarketUpdate] = []
        if minute > self._minute:
            self._minute = minute
            for s in self._symbols.values():
                if s.window and self._roll(s, minute):
                    s.ticker_ts = ts
                    out.append(self._ticker(s))
        if out and self._listeners:
            self._emit(out)
        return out

    def _add_symbol(self, info: SymbolInfo) -> _Symbol:
        s = self._symbols[info.symbol] = _Symbol(info, self.trades_kept, self.candles_kept)
        return s

    def _flush(self) -> None:
        """The pending taker's run is over: what is left rests, if it may."""
        t = self._pend
        self._pend = None
        if t is not None and t.rests and t.qty > 0:
            d = t.display
            t.visible = t.qty if d is None or d > t.qty else d
            self._orders[t.id] = t
            self._level(t.sym, t.buy, t.price, t.visible)

    def _level(self, s: _Symbol, buy: bool, price: int, delta: int) -> None:
        """Change one level's visible quantity by ``delta``: one book update."""
        if not delta:
            return
        if buy:
            levels, keys, touched = s.bids, s.bid_keys, s.touched_bids
        else:
            levels, keys, touched = s.asks, s.ask_keys, s.touched_asks
        old = levels.get(price, 0)
        new = old + delta
        if new > 0:
            levels[price] = new
            if not old:
                insort(keys, price)
        else:
            if new < 0:
                log.error("market data: level %s %s went negative", s.info.symbol, price)
            levels.pop(price, None)
            i = bisect_left(keys, price)
            if i < len(keys) and keys[i] == price:
                del keys[i]
        touched.add(price)
        s.update_id += 1
        if not s.first_id:
            s.first_id = s.update_id
        if not s.dirty:
            s.dirty = True
            self._dirty.append(s)

    def _finish(self, s: _Symbol, seq: int, ts: int, out: list[MarketUpdate]) -> None:
        """Turn one symbol's batch scratch into updates: trades, book diff, candles, ticker."""
        name = s.info.symbol
        new_trades = s.new_trades
        if new_trades:
            out.append(Trades(name, new_trades))
        if s.first_id:
            bids = [(p, s.bids.get(p, 0)) for p in sorted(s.touched_bids, reverse=True)]
            asks = [(p, s.asks.get(p, 0)) for p in sorted(s.touched_asks)]
            out.append(BookDiff(name, s.first_id, s.update_id, seq, ts, bids, asks))
            s.book_seq, s.book_ts = seq, ts
            s.first_id = 0
            s.touched_bids.clear()
            s.touched_asks.clear()
        if not new_trades:
            return
        s.new_trades = []
        s.trades.extend(new_trades)
        first = new_trades[0].price
        hi = lo = first
        vol = qv = 0
        for t in new_trades:
            p = t.price
            if p > hi:
                hi = p
            elif p < lo:
                lo = p
            vol += t.qty
            qv += t.quote
        last = new_trades[-1].price
        s.last = last
        n = len(new_trades)
        for interval, ms in _INTERVAL_ITEMS:
            dq = s.candles[interval]
            start = ts - ts % ms
            b = dq[-1] if dq else None
            if b is None or b.open_ts < start:
                b = _Bucket(start, first, hi, lo, last, vol, qv, n)
                dq.append(b)
                if ms == MINUTE_MS:
                    s.window.append(b)
            else:
                if hi > b.high:
                    b.high = hi
                if lo < b.low:
                    b.low = lo
                b.close = last
                b.volume += vol
                b.quote_volume += qv
                b.count += n
            out.append(b.frozen(name, interval))
        s.win_volume += vol
        s.win_quote += qv
        s.win_count += n
        if s.win_high is None or hi > s.win_high:
            s.win_high = hi
        if s.win_low is None or lo < s.win_low:
            s.win_low = lo
        s.ticker_ts = ts
        out.append(self._ticker(s))

    def _window_add(
        self, s: _Symbol, b: _Bucket, vol: int, qv: int, n: int, hi: int, lo: int
    ) -> None:
        s.window.append(b)
        s.win_volume += vol
        s.win_quote += qv
        s.win_count += n
        if s.win_high is None or hi > s.win_high:
            s.win_high = hi
        if s.win_low is None or lo < s.win_low:
            s.win_low = lo

    def _roll(self, s: _Symbol, minute: int) -> bool:
        """Drop the 1-minute buckets that left the 24 h window; True if any did."""
        w = s.window
        cutoff = minute - DAY_MS
        if not w or w[0].open_ts > cutoff:
            return False
        while w and w[0].open_ts <= cutoff:
            b = w.popleft()
            s.win_volume -= b.volume
            s.win_quote -= b.quote_volume
            s.win_count -= b.count
        if w:
            s.win_high = max(b.high for b in w)
            s.win_low = min(b.low for b in w)
        else:
            s.win_high = s.win_low = None
        return True

    def _ticker(self, s: _Symbol) -> Ticker:
        w = s.window
        if w:
            first = w[0].open
            last = s.last
            change = None if last is None else last - first
            return Ticker(
                s.info.symbol,
                s.ticker_ts,
                last,
                first,
                s.win_high,
                s.win_low,
                change,
                s.win_volume,
                s.win_quote,
                s.win_count,
            )
        return Ticker(s.info.symbol, s.ticker_ts, s.last, None, None, None, None, 0, 0, 0)

    # ------------------------------------------------------------------ reading (sync)

    def has_symbol(self, symbol: str) -> bool:
        return symbol in self._symbols

    def symbols(self) -> list[SymbolInfo]:
        return [self._symbols[k].info for k in sorted(self._symbols)]

    def symbol(self, symbol: str) -> SymbolInfo | None:
        s = self._symbols.get(symbol)
        return None if s is None else s.info

    def book(self, symbol: str, depth: int = 0) -> BookSnapshot | None:
        """The top ``depth`` levels per side (``0``: all), best first."""
        s = self._symbols.get(symbol)
        if s is None:
            return None
        bk, ak = s.bid_keys, s.ask_keys
        if depth > 0:
            bk, ak = bk[-depth:], ak[:depth]
        bids_map, asks_map = s.bids, s.asks
        bids: list[Level] = [(p, bids_map[p]) for p in reversed(bk)]
        asks: list[Level] = [(p, asks_map[p]) for p in ak]
        return BookSnapshot(symbol, s.update_id, s.book_seq, s.book_ts, bids, asks)

    def trades(self, symbol: str, limit: int = 100) -> list[PublicTrade]:
        """The newest ``limit`` trades, oldest first."""
        s = self._symbols.get(symbol)
        if s is None or limit <= 0:
            return []
        dq = s.trades
        if limit >= len(dq):
            return list(dq)
        return [dq[i] for i in range(len(dq) - limit, len(dq))]

    def candles(
        self,
        symbol: str,
        interval: str,
        limit: int = 500,
        start_ts: int | None = None,
        end_ts: int | None = None,
    ) -> list[Candle]:
        """The newest ``limit`` candles with ``start_ts <= open_ts <= end_ts``, oldest first."""
        s = self._symbols.get(symbol)
        if s is None or interval not in INTERVALS or limit <= 0:
            return []
        picked: list[Candle] = []
        for b in reversed(s.candles[interval]):
            if end_ts is not None and b.open_ts > end_ts:
                continue
            if start_ts is not None and b.open_ts < start_ts:
                break
            picked.append(b.frozen(symbol, interval))
            if len(picked) >= limit:
                break
        picked.reverse()
        return picked

    def ticker(self, symbol: str) -> Ticker | None:
        s = self._symbols.get(symbol)
        return None if s is None else self._ticker(s)

    def tickers(self) -> list[Ticker]:
        return [self._ticker(self._symbols[k]) for k in sorted(self._symbols)]

    # ------------------------------------------------------------------ MarketDataReader

    async def get_symbols(self) -> list[SymbolInfo]:
        return self.symbols()

    async def get_book(self, symbol: str, depth: int = 0) -> BookSnapshot | None:
        return self.book(symbol, depth)

    async def get_trades(self, symbol: str, limit: int = 100) -> list[PublicTrade]:
        return self.trades(symbol, limit)

    async def get_candles(
        self,
        symbol: str,
        interval: str,
        limit: int = 500,
        start_ts: int | None = None,
        end_ts: int | None = None,
    ) -> list[Candle]:
        return self.candles(symbol, interval, limit, start_ts, end_ts)

    async def get_ticker(self, symbol: str) -> Ticker | None:
        return self.ticker(symbol)

    async def get_tickers(self) -> list[Ticker]:
        return self.tickers()


def _has_ticker(out: list[MarketUpdate], symbol: str) -> bool:
    return any(type(u) is Ticker and u.symbol == symbol for u in out)
