"""Funding: withdrawals, their timelines and approvals, and the withdrawal address book.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27

Types are spelled out (as in 0001). Amounts are the core's minor units (BigInteger:
the core bounds them by 2**63-1).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "withdrawals",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("address", sa.String(100), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("memo", sa.String(128), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("final_status", sa.String(20), nullable=True),
        sa.Column("reason", sa.String(400), nullable=True),
        sa.Column("tx", sa.Text(), nullable=True),
        sa.Column("raw_tx", sa.Text(), nullable=True),
        sa.Column("txid", sa.String(80), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("sender", sa.String(100), nullable=True),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_withdrawals"),
        sa.UniqueConstraint(
            "user_id", "idempotency_key", name="uq_withdrawals_user_id_idempotency_key"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_withdrawals_status", "withdrawals", ["status"])
    op.create_index("ix_withdrawals_user_id_id", "withdrawals", ["user_id", "id"])
    op.create_table(
        "withdrawal_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("withdrawal_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.String(400), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_withdrawal_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_withdrawal_events_withdrawal_id", "withdrawal_events", ["withdrawal_id"])
    op.create_table(
        "withdrawal_approvals",
        sa.Column("withdrawal_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("approver_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("withdrawal_id", "approver_id", name="pk_withdrawal_approvals"),
    )
    op.create_table(
        "withdrawal_addresses",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("address", sa.String(100), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("usable_from_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_withdrawal_addresses"),
        sa.UniqueConstraint(
            "user_id",
            "network",
            "address",
            name="uq_withdrawal_addresses_user_id_network_address",
        ),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("withdrawal_addresses")
    op.drop_table("withdrawal_approvals")
    op.drop_index("ix_withdrawal_events_withdrawal_id", table_name="withdrawal_events")
    op.drop_table("withdrawal_events")
    op.drop_index("ix_withdrawals_user_id_id", table_name="withdrawals")
    op.drop_index("ix_withdrawals_status", table_name="withdrawals")
    op.drop_table("withdrawals")
