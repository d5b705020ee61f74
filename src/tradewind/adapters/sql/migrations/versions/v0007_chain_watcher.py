"""Funding: the chain watcher's blocks, deposits and alerts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27

Types are spelled out (as in 0001). Chain amounts are decimal strings: an ERC-20
value is up to 2**256-1, wider than any SQL integer.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "chain_blocks",
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(80), nullable=False),
        sa.PrimaryKeyConstraint("network", "number", name="pk_chain_blocks"),
    )
    op.create_table(
        "chain_deposits",
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("txid", sa.String(80), nullable=False),
        sa.Column("idx", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("chain_amount", sa.String(80), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(80), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("credited_seq", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.String(400), nullable=True),
        sa.PrimaryKeyConstraint("network", "txid", "idx", name="pk_chain_deposits"),
    )
    op.create_index("ix_chain_deposits_network_status", "chain_deposits", ["network", "status"])
    op.create_table(
        "chain_alerts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.String(2000), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chain_alerts"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("chain_alerts")
    op.drop_index("ix_chain_deposits_network_status", table_name="chain_deposits")
    op.drop_table("chain_deposits")
    op.drop_table("chain_blocks")
