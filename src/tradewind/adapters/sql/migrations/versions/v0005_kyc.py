"""KYC: verification levels, the document review queue, provider callbacks seen.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

Types are spelled out (as in 0001).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "kyc_profiles",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_kyc_profiles_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_kyc_profiles"),
    )
    op.create_table(
        "kyc_documents",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("location", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("uploaded_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("reviewed_by", sa.BigInteger(), nullable=True),
        sa.Column("reviewed_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.String(256), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_kyc_documents_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_kyc_documents"),
    )
    op.create_index("ix_kyc_documents_status_id", "kyc_documents", ["status", "id"])
    op.create_index("ix_kyc_documents_user_id_id", "kyc_documents", ["user_id", "id"])
    op.create_table(
        "kyc_events",
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "event_id", name="pk_kyc_events"),
    )


def downgrade() -> None:
    op.drop_table("kyc_events")
    op.drop_index("ix_kyc_documents_user_id_id", table_name="kyc_documents")
    op.drop_index("ix_kyc_documents_status_id", table_name="kyc_documents")
    op.drop_table("kyc_documents")
    op.drop_table("kyc_profiles")
