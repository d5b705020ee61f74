"""Funding: runtime switches of deposits and withdrawals per (network, asset)
(ADR 0032).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27

Types are spelled out (as in 0001).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "funding_switches",
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("deposit_enabled", sa.Boolean(), nullable=False),
        sa.Column("withdrawal_enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("network", "asset", name="pk_funding_switches"),
    )


def downgrade() -> None:
    op.drop_table("funding_switches")
