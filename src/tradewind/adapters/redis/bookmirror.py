"""An API replica's in-memory copy of the order books in Redis, so that a WebSocket
``book`` subscription starts with a snapshot consistent with the diffs that follow it.

The replica's hub needs a *synchronous* snapshot (``Hub(book_snapshot=...)``) that is at
exactly the update id of the last diff it published; a Redis read is neither. So the
replica keeps every book in memory, fed by the same loop that feeds its hub:

    async for updates in reader.follow():
        hub.publish_market(await mirror.apply(updates))

Invariants:
- a book enters the mirror from a consistent Redis snapshot (one Lua script, at update
  id ``U``); a diff is folded in when it covers ``U + 1`` (``first_id <= U + 1 <=
  last_id``; levels carry absolute quantities, so overlap is harmless), skipped when
  ``last_id <= U`` (already in the snapshot), and anything else is a gap (the writer
  dropped updates, or the replica started mid-stream): the book is loaded again from
  Redis, whose copy is at least as new as any stream entry already read (the writer
  changes both in one ``MULTI``);
- :meth:`BookMirror.apply` returns the updates to publish: every non-book update, and the
  diffs that were folded in, so a subscriber sees the snapshot at ``U`` and then diffs
  from ``U + 1`` on, as in embedded mode; after a gap the subscriber sees the ids jump
  and resyncs (the documented client protocol);
- the mirror is touched only from the event loop, between ``await`` points of the loop
  that feeds it, so :meth:`snapshot` never sees a half-applied diff.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from tradewind.adapters.redis.marketdata import RedisMarketDataReader
from tradewind.services.marketdata import BookDiff, BookSnapshot, MarketUpdate, SymbolInfo

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class _Book:
    update_id: int
    seq: int
    ts: int
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    bid_prices: list[int] = field(default_factory=list)  # ascending
    ask_prices: list[int] = field(default_factory=list)  # ascending

    @classmethod
    def of(cls, snap: BookSnapshot) -> _Book:
        book = cls(snap.update_id, snap.seq, snap.ts, dict(snap.bids), dict(snap.asks))
        book.bid_prices = sorted(book.bids)
        book.ask_prices = sorted(book.asks)
        return book

    def fold(self, diff: BookDiff) -> None:
        for levels, qtys, prices in (
            (diff.bids, self.bids, self.bid_prices),
            (diff.asks, self.asks, self.ask_prices),
        ):
            for price, qty in levels:
                if qty:
                    if price not in qtys:
                        insort(prices, price)
                    qtys[price] = qty
                elif qtys.pop(price, None) is not None:
                    prices.remove(price)
        self.update_id, self.seq, self.ts = diff.last_id, diff.seq, diff.ts

    def snapshot(self, symbol: str, depth: int) -> BookSnapshot:
        bids = self.bid_prices[::-1]
        asks = self.ask_prices
        if depth > 0:
            bids, asks = bids[:depth], asks[:depth]
        return BookSnapshot(
            symbol,
            self.update_id,
            self.seq,
            self.ts,
            [(p, self.bids[p]) for p in bids],
            [(p, self.asks[p]) for p in asks],
        )


class BookMirror:
    """Every symbol's book as of the last diff published (module docstring)."""

    def __init__(self, reader: RedisMarketDataReader) -> None:
        self._reader = reader
        self._books: dict[str, _Book] = {}
        self.reloads = 0
        self.gaps = 0

    def snapshot(self, symbol: str, depth: int = 0) -> BookSnapshot | None:
        """The book at the update id of the last diff published for it (synchronous)."""
        book = self._books.get(symbol)
        return None if book is None else book.snapshot(symbol, depth)

    async def load(self, symbol: str) -> bool:
        """(Re)load one book from Redis; False if Redis has no such symbol."""
        snap = await self._reader.get_book(symbol)
        if snap is None:
            self._books.pop(symbol, None)
            return False
        self._books[symbol] = _Book.of(snap)
        self.reloads += 1
        return True

    async def load_all(self) -> int:
        symbols = await self._reader.get_symbols()
        for info in symbols:
            await self.load(info.symbol)
        return len(symbols)

    async def apply(self, updates: Sequence[MarketUpdate]) -> list[MarketUpdate]:
        """Fold the book diffs of one stream entry in; returns what to publish."""
        out: list[MarketUpdate] = []
        for u in updates:
            if not isinstance(u, BookDiff):
                if isinstance(u, SymbolInfo) and u.symbol not in self._books:
                    await self.load(u.symbol)  # a new market: its (empty) book, from now on
                out.append(u)
                continue
            book = self._books.get(u.symbol)
            if book is None:
                if await self.load(u.symbol):
                    book = self._books[u.symbol]
                else:
                    continue
            if u.last_id <= book.update_id:
                continue  # in the snapshot already
            if u.first_id <= book.update_id + 1:
                book.fold(u)
                out.append(u)
                continue
            self.gaps += 1
            log.info(
                "book mirror: gap in update ids; reloading",
                symbol=u.symbol,
                have=book.update_id,
                first_id=u.first_id,
            )
            await self.load(u.symbol)
        return out
