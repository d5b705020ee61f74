"""``trades``: the public trade tape, written by the trades projector.

Invariant: one row per core ``Trade`` event, unique by ``(seq, event_index)``; rows are
inserted in ``seq`` order, so ``id`` order is execution order within a symbol and a
stable cursor for pagination.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.types import ID, MinorUnits


class TradeRow(Base):
    __tablename__ = "trades"
    __table_args__ = (
        sa.UniqueConstraint("seq", "event_index"),
        sa.Index(None, "symbol", "id"),
        sa.Index(None, "symbol", "ts"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    event_index: Mapped[int] = mapped_column(sa.Integer)
    ts: Mapped[int] = mapped_column(sa.BigInteger)
    symbol: Mapped[str] = mapped_column(sa.String(65))
    price: Mapped[int] = mapped_column(sa.BigInteger)
    qty: Mapped[int] = mapped_column(sa.BigInteger)
    base_amount: Mapped[int] = mapped_column(MinorUnits)
    quote_amount: Mapped[int] = mapped_column(MinorUnits)
    taker_side: Mapped[str] = mapped_column(sa.String(4))
    maker_order_id: Mapped[int] = mapped_column(sa.BigInteger)
    taker_order_id: Mapped[int] = mapped_column(sa.BigInteger)
