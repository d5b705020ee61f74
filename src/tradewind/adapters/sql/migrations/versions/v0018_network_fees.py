"""Funding: network fees paid by the exchange's own transactions (payouts, sweeps, gas
top-ups, cold moves), one row per source transaction, booked once in the core.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-27

``source`` is the table the transaction is a row of (``withdrawal``, ``custody``) and
``source_id`` its id there; the core's ref is ``network-fee:<source>:<source_id>``.
``fee_chain`` is the fee in chain units as a decimal string (gasUsed * effectiveGasPrice
in wei, or a Bitcoin transaction's inputs less outputs in satoshis); ``amount`` is it in
the core's minor units, rounded up (ADR 0034). ``seq`` is the core's seq of the booking
(null while ``pending``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "network_fees",
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("txid", sa.String(80), nullable=False),
        sa.Column("fee_chain", sa.String(80), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(400), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source", "source_id", name="pk_network_fees"),
    )
    op.create_index("ix_network_fees_status", "network_fees", ["status"])


def downgrade() -> None:
    op.drop_index("ix_network_fees_status", table_name="network_fees")
    op.drop_table("network_fees")
