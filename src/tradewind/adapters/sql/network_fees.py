"""The ``network_fees`` table (migration 0018) and the SQL ``NetworkFeeStore``
(services/funding/network_fees.py, ADR 0034).

Invariants:
- one row per source transaction, keyed by (source, source_id): a fee is recorded once
  however often the booking step reads it;
- a row becomes ``booked`` (with the core's seq) only after the core applied the
  booking or answered that its ref was applied already.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base


class NetworkFeeRow(Base):
    __tablename__ = "network_fees"
    __table_args__ = (sa.Index(None, "status"),)

    source: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    source_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    network: Mapped[str] = mapped_column(sa.String(16))
    asset: Mapped[str] = mapped_column(sa.String(32))
    txid: Mapped[str] = mapped_column(sa.String(80))
    fee_chain: Mapped[str] = mapped_column(sa.String(80))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(16))
    seq: Mapped[int | None] = mapped_column(sa.BigInteger)
    reason: Mapped[str | None] = mapped_column(sa.String(400))
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
