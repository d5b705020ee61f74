"""Funding: one deposit address per (user, network).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

Types are spelled out (as in 0001).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deposit_addresses",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("address", sa.String(100), nullable=False),
        sa.Column("path", sa.String(32), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_deposit_addresses_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "network", name="pk_deposit_addresses"),
        sa.UniqueConstraint("network", "address", name="uq_deposit_addresses_network_address"),
    )


def downgrade() -> None:
    op.drop_table("deposit_addresses")
