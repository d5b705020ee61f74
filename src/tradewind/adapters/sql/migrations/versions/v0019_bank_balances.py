"""Fiat: the bank statements' booked balances and booked debits, kept at import for
reconciliation (``tradewind reconcile``'s bank check, ADR 0036).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-27

``bank_balances``: one row per (account IBAN, statement id, currency) with the opening
(``OPBD``, else ``PRCD``) and closing (``CLBD``) booked balances as signed decimal
text. ``bank_debits``: one row per (account IBAN, entry ref, end-to-end id) of a booked
debit whose transaction names a payout (``WD-<withdrawal id>``, ``RET-<line id>``).
Statements imported before this revision kept neither (reconcile treats the payouts
they paid as paid). Types are spelled out (as in 0001).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bank_balances",
        sa.Column("account_iban", sa.String(34), nullable=False),
        sa.Column("statement_id", sa.String(35), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("opening", sa.String(40), nullable=False),
        sa.Column("opening_date", sa.String(10), nullable=False),
        sa.Column("closing", sa.String(40), nullable=False),
        sa.Column("closing_date", sa.String(10), nullable=False),
        sa.Column("created", sa.String(32), nullable=True),
        sa.Column("imported_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_iban", "statement_id", "currency", name="pk_bank_balances"
        ),
    )
    op.create_index(
        "ix_bank_balances_account_iban_currency_closing_date",
        "bank_balances",
        ["account_iban", "currency", "closing_date"],
    )
    op.create_table(
        "bank_debits",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("account_iban", sa.String(34), nullable=False),
        sa.Column("statement_id", sa.String(35), nullable=False),
        sa.Column("entry_ref", sa.String(80), nullable=False),
        sa.Column("end_to_end_id", sa.String(35), nullable=False),
        sa.Column("amount_text", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("booking_date", sa.String(10), nullable=True),
        sa.Column("imported_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bank_debits"),
        sa.UniqueConstraint(
            "account_iban",
            "entry_ref",
            "end_to_end_id",
            name="uq_bank_debits_account_iban_entry_ref_end_to_end_id",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_bank_debits_end_to_end_id", "bank_debits", ["end_to_end_id"])


def downgrade() -> None:
    op.drop_index("ix_bank_debits_end_to_end_id", table_name="bank_debits")
    op.drop_table("bank_debits")
    op.drop_index("ix_bank_balances_account_iban_currency_closing_date", table_name="bank_balances")
    op.drop_table("bank_balances")
