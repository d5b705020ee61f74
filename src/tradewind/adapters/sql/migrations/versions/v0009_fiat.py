"""Fiat rails: users' bank reference codes, imported statement lines (and the review
queue), card payment intents.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "fiat_references",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("reference", sa.String(34), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_fiat_references_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_fiat_references"),
        sa.UniqueConstraint("reference", name="uq_fiat_references_reference"),
    )
    op.create_table(
        "fiat_lines",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("ref", sa.String(160), nullable=False),
        sa.Column("account_iban", sa.String(34), nullable=False),
        sa.Column("entry_ref", sa.String(100), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("amount_text", sa.String(40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("remittance", sa.String(1000), nullable=False),
        sa.Column("debtor_name", sa.String(140), nullable=True),
        sa.Column("debtor_iban", sa.String(34), nullable=True),
        sa.Column("booking_date", sa.String(10), nullable=True),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("imported_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("credited_seq", sa.BigInteger(), nullable=True),
        sa.Column("resolved_by", sa.BigInteger(), nullable=True),
        sa.Column("resolved_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.String(400), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_fiat_lines"),
        sa.UniqueConstraint("ref", name="uq_fiat_lines_ref"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_fiat_lines_status_id", "fiat_lines", ["status", "id"])
    op.create_table(
        "card_intents",
        sa.Column("id", sa.String(80), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("processor_amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("credited_seq", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.String(400), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_card_intents"),
    )
    op.create_index("ix_card_intents_user_id", "card_intents", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_card_intents_user_id", table_name="card_intents")
    op.drop_table("card_intents")
    op.drop_index("ix_fiat_lines_status_id", table_name="fiat_lines")
    op.drop_table("fiat_lines")
    op.drop_table("fiat_references")
