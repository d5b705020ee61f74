"""Deposit history: when a chain deposit was seen and last changed, and indexes that
list one user's deposits newest first (GET /api/v1/deposits, docs/funding.md).

Revision ID: 0017
Revises: 0012
Create Date: 2026-11-27

Rows written before this revision get 0 for both times (unknown: the API shows null).
Types are spelled out (as in 0001).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chain_deposits") as batch:
        batch.add_column(
            sa.Column("seen_at_ms", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("updated_at_ms", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.create_index(
        "ix_chain_deposits_user_id_seen_at_ms", "chain_deposits", ["user_id", "seen_at_ms"]
    )
    op.create_index("ix_chain_deposits_seen_at_ms", "chain_deposits", ["seen_at_ms"])
    op.create_index(
        "ix_fiat_lines_user_id_imported_at_ms", "fiat_lines", ["user_id", "imported_at_ms"]
    )
    op.create_index("ix_fiat_lines_imported_at_ms", "fiat_lines", ["imported_at_ms"])
    op.create_index("ix_card_intents_created_at_ms", "card_intents", ["created_at_ms"])


def downgrade() -> None:
    op.drop_index("ix_card_intents_created_at_ms", table_name="card_intents")
    op.drop_index("ix_fiat_lines_imported_at_ms", table_name="fiat_lines")
    op.drop_index("ix_fiat_lines_user_id_imported_at_ms", table_name="fiat_lines")
    op.drop_index("ix_chain_deposits_seen_at_ms", table_name="chain_deposits")
    op.drop_index("ix_chain_deposits_user_id_seen_at_ms", table_name="chain_deposits")
    with op.batch_alter_table("chain_deposits") as batch:
        batch.drop_column("updated_at_ms")
        batch.drop_column("seen_at_ms")
