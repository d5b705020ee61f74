"""``orders``: the latest state of every order, written by the orders projector.

Invariants: one row per core order id (the sequencer never reuses an order id);
``updated_seq`` only grows, and a row reflects exactly the events up to it. Prices and
quantities are integer ticks and lots of the symbol (64 bits are plenty); money
(``quote_qty``, ``locked``, ``filled_quote``, ``fee``) is :class:`MinorUnits`.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.types import MinorUnits


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        sa.Index(None, "user_id", "symbol", "id"),
        sa.Index(None, "user_id", "status", "id"),
        sa.Index(None, "user_id", "client_id"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    symbol: Mapped[str] = mapped_column(sa.String(65))
    side: Mapped[str] = mapped_column(sa.String(4))
    type: Mapped[str] = mapped_column(sa.String(24))
    tif: Mapped[str] = mapped_column(sa.String(8))
    price: Mapped[int | None] = mapped_column(sa.BigInteger)
    qty: Mapped[int | None] = mapped_column(sa.BigInteger)
    quote_qty: Mapped[int | None] = mapped_column(MinorUnits)
    stop_price: Mapped[int | None] = mapped_column(sa.BigInteger)
    display_qty: Mapped[int | None] = mapped_column(sa.BigInteger)
    client_id: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(24))
    """untriggered, new, partially_filled, filled, cancelled."""
    filled_qty: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    filled_quote: Mapped[int] = mapped_column(MinorUnits, server_default="0")
    fee: Mapped[int] = mapped_column(MinorUnits, server_default="0")
    locked: Mapped[int] = mapped_column(MinorUnits, server_default="0")
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(24))
    created_seq: Mapped[int] = mapped_column(sa.BigInteger)
    created_ts: Mapped[int] = mapped_column(sa.BigInteger)
    updated_seq: Mapped[int] = mapped_column(sa.BigInteger)
    updated_ts: Mapped[int] = mapped_column(sa.BigInteger)
