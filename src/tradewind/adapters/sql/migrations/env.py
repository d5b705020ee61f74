"""Alembic environment for both async drivers (aiosqlite and asyncpg).

Invariants:
- the same revision scripts run on SQLite and PostgreSQL; on SQLite, autogenerate
  renders ``batch_alter_table`` (SQLite cannot ALTER most things in place);
- foreign keys are off while SQLite migrates (batch mode copies tables) and checked with
  ``PRAGMA foreign_key_check`` before the migration commits;
- when the caller passes a connection (``config.attributes["connection"]``, as
  :mod:`tradewind.adapters.sql.migrate` does) it is used as is; otherwise an engine is
  built from ``sqlalchemy.url``, so the plain ``alembic`` command works too.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from tradewind.adapters.sql.engine import create_engine
from tradewind.adapters.sql.models import metadata

config = context.config


def _configure_and_run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"foreign key violations after migrating: {problems[:5]}")


async def _run_online_with_own_engine(url: str) -> None:
    engine = create_engine(url, foreign_keys=False, pool=False)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_configure_and_run)
    finally:
        await engine.dispose()


def run_offline() -> None:
    """Emit SQL to stdout instead of running it (``alembic upgrade --sql``)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _configure_and_run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url given to the migrations")
    asyncio.run(_run_online_with_own_engine(url))


if context.is_offline_mode():
    run_offline()
else:
    run_online()
