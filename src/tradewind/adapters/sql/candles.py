"""``candles``: OHLCV per symbol and interval, written by the market-data projector.

Invariant: one row per ``(symbol, interval, open_ts)`` where ``open_ts`` is the start of
the interval in epoch milliseconds (a multiple of its length; 1d candles open at 00:00
UTC); ``last_seq`` is the last trade folded in, so a replayed trade is not counted
twice. Prices are ticks; volumes are minor units of base and quote.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.types import MinorUnits

INTERVALS_MS = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}


class CandleRow(Base):
    __tablename__ = "candles"

    symbol: Mapped[str] = mapped_column(sa.String(65), primary_key=True)
    interval: Mapped[str] = mapped_column(sa.String(4), primary_key=True)
    open_ts: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    open: Mapped[int] = mapped_column(sa.BigInteger)
    high: Mapped[int] = mapped_column(sa.BigInteger)
    low: Mapped[int] = mapped_column(sa.BigInteger)
    close: Mapped[int] = mapped_column(sa.BigInteger)
    base_volume: Mapped[int] = mapped_column(MinorUnits)
    quote_volume: Mapped[int] = mapped_column(MinorUnits)
    trade_count: Mapped[int] = mapped_column(sa.Integer)
    last_seq: Mapped[int] = mapped_column(sa.BigInteger)
