"""Market data: public order books with update ids, trades, candles and 24 h tickers.

- :mod:`.types`: the values (integers only: ticks, lots, minor units);
- :mod:`.ports`: :class:`MarketDataReader`, the read interface the API gateways use,
  implemented by :class:`MarketData` (embedded) and the Redis reader (distributed);
- :mod:`.service`: :class:`MarketData`, which folds the core's event batches in.

See docs/marketdata.md for channels, message shapes and the book resync procedure.
"""

from tradewind.services.marketdata.ports import MarketDataReader, MarketListener
from tradewind.services.marketdata.service import MarketData
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

__all__ = [
    "DAY_MS",
    "INTERVALS",
    "MINUTE_MS",
    "BookDiff",
    "BookSnapshot",
    "Candle",
    "Level",
    "MarketData",
    "MarketDataReader",
    "MarketListener",
    "MarketUpdate",
    "PublicTrade",
    "SymbolInfo",
    "Ticker",
    "Trades",
]
