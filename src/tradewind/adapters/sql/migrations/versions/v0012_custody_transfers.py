"""Funding: custody transfers (sweeps, gas top-ups, moves to cold) and custody alerts.

Revision ID: 0012
Revises: 0015
Create Date: 2026-11-27

Chain amounts and fees are decimal strings (an ERC-20 value is up to 2**256-1).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "custody_transfers",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("contract", sa.String(100), nullable=True),
        sa.Column("sender", sa.String(100), nullable=False),
        sa.Column("recipient", sa.String(100), nullable=False),
        sa.Column("amount", sa.String(80), nullable=False),
        sa.Column("gas", sa.BigInteger(), nullable=False),
        sa.Column("max_fee", sa.String(80), nullable=False),
        sa.Column("priority_fee", sa.String(80), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("tx", sa.Text(), nullable=True),
        sa.Column("raw_tx", sa.Text(), nullable=True),
        sa.Column("txid", sa.String(80), nullable=True),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(400), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_custody_transfers"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_custody_transfers_network_status", "custody_transfers", ["network", "status"]
    )
    op.create_index("ix_custody_transfers_parent_id", "custody_transfers", ["parent_id"])
    op.create_table(
        "custody_alerts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.String(2000), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("resolved_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_custody_alerts"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_custody_alerts_network_asset_kind", "custody_alerts", ["network", "asset", "kind"]
    )


def downgrade() -> None:
    op.drop_index("ix_custody_alerts_network_asset_kind", table_name="custody_alerts")
    op.drop_table("custody_alerts")
    op.drop_index("ix_custody_transfers_parent_id", table_name="custody_transfers")
    op.drop_index("ix_custody_transfers_network_status", table_name="custody_transfers")
    op.drop_table("custody_transfers")
