"""The packaged Alembic migrations on SQLite and PostgreSQL: upgrade from empty,
downgrade to base and upgrade again, idempotence, and models equal to migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import tradewind
from tradewind.adapters.sql.engine import create_engine
from tradewind.adapters.sql.migrate import (
    alembic_config,
    current_revision_async,
    downgrade_async,
    head_revision,
    upgrade_async,
)
from tradewind.adapters.sql.models import metadata

EXPECTED_TABLES = {
    "users",
    "sessions",
    "api_keys",
    "ledger_entries",
    "orders",
    "fills",
    "trades",
    "candles",
    "projector_offsets",
    "ledger_holds",
    "projector_symbols",
    "audit_log",
    "user_roles",
    "account_freezes",
    "approvals",
    "kyc_profiles",
    "kyc_documents",
    "kyc_events",
    "recovery_codes",
    "email_tokens",
    "login_throttle",
    "mail_outbox",
    "deposit_addresses",
    "chain_blocks",
    "chain_deposits",
    "chain_alerts",
    "withdrawals",
    "withdrawal_events",
    "withdrawal_approvals",
    "withdrawal_addresses",
    "fiat_references",
    "fiat_lines",
    "card_intents",
    "bank_balances",
    "bank_debits",
    "margin_wallets",
    "margin_events",
    "network_fees",
    "alerts",
    "funding_switches",
    "custody_transfers",
    "custody_alerts",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


async def table_names(url: str) -> set[str]:
    engine = create_engine(url, pool=False)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return set(names) - {"alembic_version", "sqlite_sequence"}


async def schema_differences(url: str) -> list[object]:
    engine = create_engine(url, pool=False)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
    finally:
        await engine.dispose()


@pytest.mark.asyncio
async def test_upgrade_downgrade_upgrade(empty_url: str) -> None:
    assert await current_revision_async(empty_url) is None
    assert await table_names(empty_url) == set()

    await upgrade_async(empty_url)
    assert await current_revision_async(empty_url) == head_revision()
    assert await table_names(empty_url) == EXPECTED_TABLES == set(metadata.tables)

    await downgrade_async(empty_url, "base")
    assert await current_revision_async(empty_url) is None
    assert await table_names(empty_url) == set()

    await upgrade_async(empty_url)
    await upgrade_async(empty_url)  # idempotent
    assert await current_revision_async(empty_url) == head_revision()
    assert await table_names(empty_url) == EXPECTED_TABLES


@pytest.mark.asyncio
async def test_models_match_the_migrations(empty_url: str) -> None:
    """The models and the revision scripts describe the same schema, column types
    included, so autogenerate would produce an empty revision."""
    await upgrade_async(empty_url)
    assert await schema_differences(empty_url) == []


@pytest.mark.asyncio
async def test_plain_urls_are_accepted(empty_url: str) -> None:
    plain = empty_url.replace("+aiosqlite", "").replace("+asyncpg", "")
    await upgrade_async(plain)
    assert await current_revision_async(empty_url) == head_revision()


def test_migrations_are_found_inside_the_package() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    package_dir = Path(tradewind.__file__).resolve().parent
    assert Path(scripts.dir).resolve().is_relative_to(package_dir)
    revisions = list(scripts.walk_revisions())
    assert revisions[-1].down_revision is None  # one linear history from the first
    assert len(scripts.get_heads()) == 1
    for revision in revisions:
        assert Path(revision.path).name.startswith(f"v{revision.revision}_")
