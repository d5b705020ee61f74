"""Initial schema: accounts (users, sessions, api_keys) and projector tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Types are spelled out here rather than imported from the models, so this revision
keeps creating the same schema whatever the models become. Amounts are
``NUMERIC(38, 0)`` on PostgreSQL and ``VARCHAR(40)`` on SQLite (see
``tradewind.adapters.sql.types``); surrogate ids are BIGSERIAL / INTEGER rowid.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AMOUNT = sa.Numeric(38, 0).with_variant(sa.String(40), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "users",
        _id(),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), server_default="active", nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "sessions",
        _id(),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("ip", sa.String(45), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_sessions_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_sessions_token_hash"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_index("ix_sessions_expires_at_ms", "sessions", ["expires_at_ms"])
    op.create_table(
        "api_keys",
        _id(),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("ip_allowlist", sa.JSON(), nullable=True),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_api_keys_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_id", name="uq_api_keys_key_id"),
    )
    op.create_index("ix_api_keys_user_id_revoked_at_ms", "api_keys", ["user_id", "revoked_at_ms"])

    op.create_table(
        "ledger_entries",
        _id(),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_index", sa.Integer(), nullable=False),
        sa.Column("leg", sa.SmallInteger(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("account", sa.BigInteger(), nullable=False),
        sa.Column("bucket", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ref", sa.String(64), nullable=True),
        sa.CheckConstraint(
            "bucket IN ('available', 'locked', 'external')", name="ck_ledger_entries_bucket"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_entries"),
        sa.UniqueConstraint(
            "seq", "event_index", "leg", name="uq_ledger_entries_seq_event_index_leg"
        ),
    )
    op.create_index(
        "ix_ledger_entries_account_asset_id", "ledger_entries", ["account", "asset", "id"]
    )

    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(65), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("tif", sa.String(8), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=True),
        sa.Column("qty", sa.BigInteger(), nullable=True),
        sa.Column("quote_qty", AMOUNT, nullable=True),
        sa.Column("stop_price", sa.BigInteger(), nullable=True),
        sa.Column("display_qty", sa.BigInteger(), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("filled_qty", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("filled_quote", AMOUNT, server_default="0", nullable=False),
        sa.Column("fee", AMOUNT, server_default="0", nullable=False),
        sa.Column("locked", AMOUNT, server_default="0", nullable=False),
        sa.Column("cancel_reason", sa.String(24), nullable=True),
        sa.Column("created_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.Column("updated_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
    )
    op.create_index("ix_orders_user_id_symbol_id", "orders", ["user_id", "symbol", "id"])
    op.create_index("ix_orders_user_id_status_id", "orders", ["user_id", "status", "id"])
    op.create_index("ix_orders_user_id_client_id", "orders", ["user_id", "client_id"])

    op.create_table(
        "fills",
        _id(),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_index", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(5), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(65), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("qty", sa.BigInteger(), nullable=False),
        sa.Column("base_amount", AMOUNT, nullable=False),
        sa.Column("quote_amount", AMOUNT, nullable=False),
        sa.Column("fee", AMOUNT, nullable=False),
        sa.Column("fee_asset", sa.String(32), nullable=False),
        sa.CheckConstraint("role IN ('maker', 'taker')", name="ck_fills_role"),
        sa.PrimaryKeyConstraint("id", name="pk_fills"),
        sa.UniqueConstraint("seq", "event_index", "role", name="uq_fills_seq_event_index_role"),
    )
    op.create_index("ix_fills_user_id_symbol_id", "fills", ["user_id", "symbol", "id"])
    op.create_index("ix_fills_order_id", "fills", ["order_id"])

    op.create_table(
        "trades",
        _id(),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_index", sa.Integer(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(65), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("qty", sa.BigInteger(), nullable=False),
        sa.Column("base_amount", AMOUNT, nullable=False),
        sa.Column("quote_amount", AMOUNT, nullable=False),
        sa.Column("taker_side", sa.String(4), nullable=False),
        sa.Column("maker_order_id", sa.BigInteger(), nullable=False),
        sa.Column("taker_order_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_trades"),
        sa.UniqueConstraint("seq", "event_index", name="uq_trades_seq_event_index"),
    )
    op.create_index("ix_trades_symbol_id", "trades", ["symbol", "id"])
    op.create_index("ix_trades_symbol_ts", "trades", ["symbol", "ts"])

    op.create_table(
        "candles",
        sa.Column("symbol", sa.String(65), nullable=False),
        sa.Column("interval", sa.String(4), nullable=False),
        sa.Column("open_ts", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("open", sa.BigInteger(), nullable=False),
        sa.Column("high", sa.BigInteger(), nullable=False),
        sa.Column("low", sa.BigInteger(), nullable=False),
        sa.Column("close", sa.BigInteger(), nullable=False),
        sa.Column("base_volume", AMOUNT, nullable=False),
        sa.Column("quote_volume", AMOUNT, nullable=False),
        sa.Column("trade_count", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "interval", "open_ts", name="pk_candles"),
    )

    op.create_table(
        "projector_offsets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_projector_offsets"),
    )


def downgrade() -> None:
    op.drop_table("projector_offsets")
    op.drop_table("candles")
    op.drop_index("ix_trades_symbol_ts", table_name="trades")
    op.drop_index("ix_trades_symbol_id", table_name="trades")
    op.drop_table("trades")
    op.drop_index("ix_fills_order_id", table_name="fills")
    op.drop_index("ix_fills_user_id_symbol_id", table_name="fills")
    op.drop_table("fills")
    op.drop_index("ix_orders_user_id_client_id", table_name="orders")
    op.drop_index("ix_orders_user_id_status_id", table_name="orders")
    op.drop_index("ix_orders_user_id_symbol_id", table_name="orders")
    op.drop_table("orders")
    op.drop_index("ix_ledger_entries_account_asset_id", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_index("ix_api_keys_user_id_revoked_at_ms", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index("ix_sessions_expires_at_ms", table_name="sessions")
    op.drop_index("ix_sessions_user_id", table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("users")
