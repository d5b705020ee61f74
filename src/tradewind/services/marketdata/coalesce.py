"""Coalescing market-data updates: what several commands changed, as one update per
channel key.

Why: the core runner publishes one command at a time, but answers a whole group commit
at once; sending subscribers one book diff and one trades message per command made the
WebSocket fan-out cost (and the subscribers' parsing) grow with the command rate rather
than with the rate of group commits (docs/performance.md). The protocol already allows a
diff to cover several updates (``U..u``) and a trades message to carry several trades.

Invariants (for the updates of one ``MarketData`` in publish order):
- book diffs of a symbol whose id ranges are contiguous become one diff covering
  ``U`` of the first to ``u`` of the last, each touched level with its quantity after
  the last one (so a client that applies it ends with the same book); ``seq``/``ts`` are
  the last diff's, as a snapshot at ``u`` would carry; a diff that does not continue the
  previous one (a gap upstream) starts a new diff, so the gap stays visible;
- trades of a symbol are concatenated in execution order;
- candles (per symbol, interval and ``open_ts``) and tickers (per symbol) carry whole
  state: only the newest is kept;
- every merged update takes the place of the first one of its key; anything else
  (``SymbolInfo``) passes through in order.
"""

from __future__ import annotations

from collections.abc import Iterable

from tradewind.services.marketdata.types import (
    BookDiff,
    Candle,
    MarketUpdate,
    Ticker,
    Trades,
)


class _Diffs:
    """Contiguous book diffs of one symbol, merged when the batch ends."""

    __slots__ = ("items",)

    def __init__(self, first: BookDiff) -> None:
        self.items = [first]


class _TradeRun:
    """Trades messages of one symbol, concatenated when the batch ends."""

    __slots__ = ("items",)

    def __init__(self, first: Trades) -> None:
        self.items = [first]


def coalesce(updates: Iterable[MarketUpdate]) -> list[MarketUpdate]:
    """One update per channel key (see the module's docstring)."""
    slots: list[MarketUpdate | _Diffs | _TradeRun] = []
    diffs: dict[str, _Diffs] = {}
    trades: dict[str, _TradeRun] = {}
    latest_at: dict[tuple[str, str, int], int] = {}
    for u in updates:
        if isinstance(u, BookDiff):
            chain = diffs.get(u.symbol)
            if chain is not None and chain.items[-1].last_id + 1 == u.first_id:
                chain.items.append(u)
            else:  # the first, or a gap upstream: a diff of its own
                chain = diffs[u.symbol] = _Diffs(u)
                slots.append(chain)
        elif isinstance(u, Trades):
            run = trades.get(u.symbol)
            if run is None:
                run = trades[u.symbol] = _TradeRun(u)
                slots.append(run)
            else:
                run.items.append(u)
        elif isinstance(u, Candle | Ticker):
            key = (u.symbol, u.interval, u.open_ts) if isinstance(u, Candle) else (u.symbol, "", 0)
            i = latest_at.get(key)
            if i is None:
                latest_at[key] = len(slots)
                slots.append(u)
            else:
                slots[i] = u
        else:
            slots.append(u)
    out: list[MarketUpdate] = []
    for slot in slots:
        if isinstance(slot, _Diffs):
            items = slot.items
            out.append(items[0] if len(items) == 1 else merge_diffs(items))
        elif isinstance(slot, _TradeRun):
            runs = slot.items
            if len(runs) == 1:
                out.append(runs[0])
            else:
                out.append(Trades(runs[0].symbol, [t for x in runs for t in x.trades]))
        else:
            out.append(slot)
    return out


def merge_diffs(diffs: list[BookDiff]) -> BookDiff:
    """Contiguous diffs of one symbol as one: each level at its quantity after the last."""
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for d in diffs:
        for p, q in d.bids:
            bids[p] = q
        for p, q in d.asks:
            asks[p] = q
    first, last = diffs[0], diffs[-1]
    return BookDiff(
        last.symbol,
        first.first_id,
        last.last_id,
        last.seq,
        last.ts,
        sorted(bids.items(), reverse=True),
        sorted(asks.items()),
    )
