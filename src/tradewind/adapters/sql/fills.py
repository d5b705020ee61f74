"""``fills``: each user's side of each trade, written by the orders projector.

Invariant: a trade gives exactly two fills, its ``maker`` and its ``taker`` side (also
when both belong to one user), unique by ``(seq, event_index, role)``. ``fee`` is in the
asset the side received (``fee_asset``), as the core charges it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.types import ID, MinorUnits


class FillRow(Base):
    __tablename__ = "fills"
    __table_args__ = (
        sa.UniqueConstraint("seq", "event_index", "role"),
        sa.Index(None, "user_id", "symbol", "id"),
        sa.Index(None, "order_id"),
        sa.CheckConstraint("role IN ('maker', 'taker')", name="role"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    event_index: Mapped[int] = mapped_column(sa.Integer)
    role: Mapped[str] = mapped_column(sa.String(5))
    ts: Mapped[int] = mapped_column(sa.BigInteger)
    order_id: Mapped[int] = mapped_column(sa.BigInteger)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    symbol: Mapped[str] = mapped_column(sa.String(65))
    side: Mapped[str] = mapped_column(sa.String(4))
    price: Mapped[int] = mapped_column(sa.BigInteger)
    qty: Mapped[int] = mapped_column(sa.BigInteger)
    base_amount: Mapped[int] = mapped_column(MinorUnits)
    quote_amount: Mapped[int] = mapped_column(MinorUnits)
    fee: Mapped[int] = mapped_column(MinorUnits)
    fee_asset: Mapped[str] = mapped_column(sa.String(32))
