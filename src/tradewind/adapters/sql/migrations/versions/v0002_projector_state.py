"""Projector state: open-order holds of the ledger projector, symbols learnt from events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

``ledger_holds`` keeps what each open order holds (``OrderAmended`` states a new total
hold, so the ledger projector must know the current one across restarts);
``projector_symbols`` keeps the markets announced by ``SymbolAdded`` (base and quote of
each symbol), shared by the projectors. Types are spelled out, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(38, 0).with_variant(sa.String(40), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_holds",
        sa.Column("order_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account", sa.BigInteger(), nullable=False),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_ledger_holds"),
    )
    op.create_table(
        "projector_symbols",
        sa.Column("symbol", sa.String(65), nullable=False),
        sa.Column("base", sa.String(32), nullable=False),
        sa.Column("quote", sa.String(32), nullable=False),
        sa.Column("tick_size", AMOUNT, nullable=False),
        sa.Column("lot_size", AMOUNT, nullable=False),
        sa.PrimaryKeyConstraint("symbol", name="pk_projector_symbols"),
    )


def downgrade() -> None:
    op.drop_table("projector_symbols")
    op.drop_table("ledger_holds")
