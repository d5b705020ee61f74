"""Margin history: the margin projector's wallets and events (issue 7).

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AMOUNT = sa.Numeric(38, 0).with_variant(sa.String(40), "sqlite")


def upgrade() -> None:
    op.create_table(
        "margin_wallets",
        sa.Column("wallet_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("symbol", sa.String(65), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("wallet_id", name="pk_margin_wallets"),
    )
    op.create_index("ix_margin_wallets_user_id", "margin_wallets", ["user_id"])
    op.create_table(
        "margin_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_index", sa.Integer(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("wallet_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("asset", sa.String(32), nullable=True),
        sa.Column("amount", AMOUNT, nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("notify", sa.Boolean(), nullable=False),
        sa.Column("notified_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_margin_events"),
        sa.UniqueConstraint("seq", "event_index", name="uq_margin_events_seq_event_index"),
    )
    op.create_index("ix_margin_events_user_id_kind_id", "margin_events", ["user_id", "kind", "id"])
    op.create_index(
        "ix_margin_events_notify_notified_at_ms", "margin_events", ["notify", "notified_at_ms"]
    )


def downgrade() -> None:
    op.drop_index("ix_margin_events_notify_notified_at_ms", table_name="margin_events")
    op.drop_index("ix_margin_events_user_id_kind_id", table_name="margin_events")
    op.drop_table("margin_events")
    op.drop_index("ix_margin_wallets_user_id", table_name="margin_wallets")
    op.drop_table("margin_wallets")
