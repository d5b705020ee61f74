"""Operator alerts (services/alerts.py); the chain watcher's past alerts copied in.

Revision ID: 0014
Revises: 0011
Create Date: 2026-11-27
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    alerts = op.create_table(
        "alerts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.String(2000), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("open_key", sa.String(200), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("acknowledged_by", sa.BigInteger(), nullable=True),
        sa.Column("acknowledged_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("open_key", name="uq_alerts_open_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alerts_status_id", "alerts", ["status", "id"])
    # the chain watcher's alerts written before this revision: open, one each
    chain = sa.table(
        "chain_alerts",
        sa.column("id", sa.BigInteger()),
        sa.column("network", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("message", sa.String()),
        sa.column("block_number", sa.BigInteger()),
        sa.column("created_at_ms", sa.BigInteger()),
    )
    rows = op.get_bind().execute(sa.select(chain).order_by(chain.c.id)).all()
    if rows:
        op.bulk_insert(
            alerts,
            [
                {
                    "kind": f"chain.{r.kind}"[:64],
                    "severity": "critical",
                    "message": r.message,
                    "details": json.dumps(
                        {"block": r.block_number, "chain_alert": r.id, "network": r.network},
                        sort_keys=True,
                        separators=(",", ":"),
                    ),
                    "dedupe_key": f"chain_alert:{r.id}",
                    "open_key": f"chain_alert:{r.id}",
                    "created_at_ms": r.created_at_ms,
                    "last_seen_at_ms": r.created_at_ms,
                    "count": 1,
                    "status": "open",
                }
                for r in rows
            ],
        )


def downgrade() -> None:
    op.drop_index("ix_alerts_status_id", table_name="alerts")
    op.drop_table("alerts")
