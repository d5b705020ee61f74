"""``ledger_entries``: the double-entry ledger the ledger projector writes.

Invariants (kept by the projector, checked by reconciliation):
- every core event that moves money becomes legs whose amounts sum to zero per asset,
  so the sum of *all* entries of an asset is zero;
- an account's balance is the sum of its ``available`` and ``locked`` legs and equals
  the core's balance; minus the sum of its ``external`` legs is what it deposited less
  what it withdrew;
- ``(seq, event_index, leg)`` is unique, so re-applying an event inserts nothing twice.

``account`` is the core's account number (the user id; 0 is the fee account). ``amount``
is signed minor units: positive credits the bucket, negative debits it. On SQLite the
amount is text (see :mod:`tradewind.adapters.sql.types`): sum it in Python there.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.types import ID, MinorUnits

BUCKETS = ("available", "locked", "external")


class LedgerEntryRow(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        sa.UniqueConstraint("seq", "event_index", "leg"),
        sa.Index(None, "account", "asset", "id"),
        sa.CheckConstraint("bucket IN ('available', 'locked', 'external')", name="bucket"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    event_index: Mapped[int] = mapped_column(sa.Integer)
    leg: Mapped[int] = mapped_column(sa.SmallInteger)
    ts: Mapped[int] = mapped_column(sa.BigInteger)
    account: Mapped[int] = mapped_column(sa.BigInteger)
    bucket: Mapped[str] = mapped_column(sa.String(16))
    asset: Mapped[str] = mapped_column(sa.String(32))
    amount: Mapped[int] = mapped_column(MinorUnits)
    kind: Mapped[str] = mapped_column(sa.String(32))
    """What moved the money: deposit, withdrawal_hold, trade, fee, order_lock, ..."""
    ref: Mapped[str | None] = mapped_column(sa.String(64))
    """What it belongs to, e.g. ``order:17``, ``withdrawal:3``."""
