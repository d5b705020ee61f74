"""Market-data values: what the market-data service emits and what its readers return.

Invariants:
- every amount is an integer: prices in ticks, quantities and base volumes in lots,
  quote amounts and quote volumes in minor units of the symbol's quote asset; ``Decimal``
  appears only at the API edge, ``float`` nowhere;
- times are integer milliseconds since the Unix epoch, taken from the core's ``ts`` of
  the batch that produced the value (the service has no clock of its own);
- book levels are ``(price, visible qty)`` pairs, best price first; a quantity of ``0`` in
  a :class:`BookDiff` deletes the level;
- for one symbol, book update ids are contiguous: each :class:`BookDiff` covers the ids
  ``first_id .. last_id`` and the next one starts at ``last_id + 1``; a
  :class:`BookSnapshot` with ``update_id = L`` equals the book after every diff whose
  ``last_id <= L`` and before any diff whose ``first_id > L``;
- candle ``open_ts`` is a multiple of the interval's length (so ``1d`` candles open at
  00:00 UTC); only intervals with at least one trade have a candle.

The update structs (:data:`MarketUpdate`) are tagged, so a list of them round-trips
through msgspec JSON or msgpack (the Redis stream uses that).
"""

from __future__ import annotations

from typing import Final

import msgspec

INTERVALS: Final[dict[str, int]] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
"""Candle intervals and their length in milliseconds (same names as the SQL candles)."""

DAY_MS: Final = 86_400_000
MINUTE_MS: Final = 60_000

Level = tuple[int, int]
"""``(price in ticks, visible quantity in lots)``."""


class SymbolInfo(msgspec.Struct, frozen=True, tag="symbol"):
    """A market as the market-data service knows it (learnt from ``SymbolAdded``).

    ``*_decimals`` are ``None`` when the asset's ``AssetAdded`` was not seen."""

    symbol: str
    base: str
    quote: str
    tick_size: int
    lot_size: int
    base_decimals: int | None = None
    quote_decimals: int | None = None
    status: str = "trading"  # or "halted"


class PublicTrade(msgspec.Struct, frozen=True):
    """One fill as the public sees it: no user, no order id, no fee.

    ``(seq, idx)`` is the core command's ``seq`` and the event's index in that command's
    events: unique, stable across restarts and the same key the SQL trade tape uses.
    ``side`` is the taker's side."""

    seq: int
    idx: int
    ts: int
    price: int
    qty: int
    quote: int
    side: str


class Trades(msgspec.Struct, frozen=True, tag="trades"):
    """The trades of one symbol made by one batch, in execution order."""

    symbol: str
    trades: list[PublicTrade]


class BookDiff(msgspec.Struct, frozen=True, tag="book"):
    """What one batch changed in one symbol's visible book (Binance ``U``/``u``).

    Every listed level carries its quantity after the batch; ``0`` deletes it."""

    symbol: str
    first_id: int
    last_id: int
    seq: int
    ts: int
    bids: list[Level]
    asks: list[Level]


class BookSnapshot(msgspec.Struct, frozen=True):
    """A book as of update id ``update_id`` (the ``last_id`` of the newest diff folded
    in); ``seq``/``ts`` are those of the batch that made that update (0 before any)."""

    symbol: str
    update_id: int
    seq: int
    ts: int
    bids: list[Level]
    asks: list[Level]


class Candle(msgspec.Struct, frozen=True, tag="candle"):
    """OHLC in ticks, ``volume`` in lots of base, ``quote_volume`` in quote minor units."""

    symbol: str
    interval: str
    open_ts: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    count: int


class Ticker(msgspec.Struct, frozen=True, tag="ticker"):
    """24-hour rolling statistics as of ``ts`` (when they last changed: a trade, or a
    minute leaving the window): the 1-minute buckets whose start lies in the last 24
    hours (the current minute included).

    ``last`` is the last trade price ever (``None`` before the first trade); ``open``,
    ``high``, ``low`` and ``change`` (``last - open``) are ``None`` when no trade falls in
    the window."""

    symbol: str
    ts: int
    last: int | None
    open: int | None
    high: int | None
    low: int | None
    change: int | None
    volume: int
    quote_volume: int
    count: int


MarketUpdate = SymbolInfo | Trades | BookDiff | Candle | Ticker
"""What the service hands its listeners after each batch."""
