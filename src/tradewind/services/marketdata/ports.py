"""The read side of market data, as the API gateways see it.

Invariant: every reader (the in-memory :class:`~tradewind.services.marketdata.MarketData`
of embedded mode, the Redis reader of distributed mode) answers from one consistent
state: a :class:`BookSnapshot` is never a mix of two update ids, so a client can resync
a book from it and the diffs of the stream (see docs/marketdata.md).

Methods are ``async`` because the distributed reader does I/O; the in-memory one answers
at once. Unknown symbols give ``None`` (single values) or ``[]`` (lists).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from tradewind.services.marketdata.types import (
    BookSnapshot,
    Candle,
    MarketUpdate,
    PublicTrade,
    SymbolInfo,
    Ticker,
)

MarketListener = Callable[[Sequence[MarketUpdate]], None]
"""Called synchronously with the updates of one batch, in order; must not block."""


class MarketDataReader(Protocol):
    async def get_symbols(self) -> list[SymbolInfo]:
        """Every known symbol, sorted by name."""
        ...

    async def get_book(self, symbol: str, depth: int = 0) -> BookSnapshot | None:
        """The top ``depth`` levels per side (``0``: all), best first."""
        ...

    async def get_trades(self, symbol: str, limit: int = 100) -> list[PublicTrade]:
        """The newest ``limit`` public trades, oldest first (execution order)."""
        ...

    async def get_candles(
        self,
        symbol: str,
        interval: str,
        limit: int = 500,
        start_ts: int | None = None,
        end_ts: int | None = None,
    ) -> list[Candle]:
        """The newest ``limit`` candles with ``start_ts <= open_ts <= end_ts``, oldest
        first. An unknown interval gives ``[]`` (validate against ``INTERVALS``)."""
        ...

    async def get_ticker(self, symbol: str) -> Ticker | None: ...

    async def get_tickers(self) -> list[Ticker]:
        """The tickers of every symbol, sorted by symbol."""
        ...


__all__ = ["MarketDataReader", "MarketListener"]
