"""Apply the packaged Alembic migrations programmatically.

Invariant: every schema change goes through the revision scripts in
``tradewind/adapters/sql/migrations/versions`` (found as package resources, so this
works from an installed wheel as well as a checkout). :func:`upgrade` backs
``tradewind db upgrade`` and the embedded start-up; it is idempotent, and on PostgreSQL
concurrent upgrades (processes of a distributed deployment starting together) serialize
on a transaction-scoped advisory lock.

From async code use the ``*_async`` variants (the sync ones run their own event loop).
Developers: ``python -m tradewind.adapters.sql.migrate --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tradewind.adapters.sql.engine import create_engine, normalise_url

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

# alembic is imported in the functions that use it: a process that does not migrate
# (the core) does not pay for its import

SCRIPT_LOCATION = "tradewind.adapters.sql:migrations"


MIGRATION_LOCK_KEY = 0x7457_6D69_6772  # "tWmigr": the advisory lock migrations hold


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic ``Config`` pointing at the packaged migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("version_path_separator", "os")
    if database_url is not None:
        url = normalise_url(database_url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision the package ships."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


async def _with_connection(database_url: str, action: Callable[[Config], None]) -> None:
    # Foreign keys off on SQLite: batch mode copies tables; env.py checks them at the end.
    engine = create_engine(database_url, foreign_keys=False, pool=False)
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several processes may start together (API replicas, the projector):
                # one migrates, the others wait here and then find the schema at head.
                await connection.exec_driver_sql(
                    f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
                )

            def run(sync_connection: Connection) -> None:
                config = alembic_config(database_url)
                config.attributes["connection"] = sync_connection
                action(config)

            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """Bring the database at ``database_url`` up to ``revision`` (default: newest)."""
    from alembic import command

    await _with_connection(database_url, lambda config: command.upgrade(config, revision))


async def downgrade_async(database_url: str, revision: str) -> None:
    """Step the schema back to ``revision`` (``"base"`` drops every table)."""
    from alembic import command

    await _with_connection(database_url, lambda config: command.downgrade(config, revision))


async def current_revision_async(database_url: str) -> str | None:
    """The revision the database is at; ``None`` for an empty database."""
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(database_url, pool=False)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


def upgrade(database_url: str, revision: str = "head") -> None:
    """Synchronous :func:`upgrade_async` for the command line and plain scripts."""
    asyncio.run(upgrade_async(database_url, revision))


def downgrade(database_url: str, revision: str) -> None:
    asyncio.run(downgrade_async(database_url, revision))


def current_revision(database_url: str) -> str | None:
    return asyncio.run(current_revision_async(database_url))


def new_revision(database_url: str, message: str, *, autogenerate: bool = True) -> None:
    """Write the next ``vNNNN_slug.py`` (developers only; needs a source checkout).

    ``database_url`` must point at a database upgraded to head: autogenerate compares
    it with the models. Review the script and keep it runnable on both databases.
    """
    from alembic import command

    versions = Path(__file__).resolve().parent / "migrations" / "versions"
    next_id = f"{len(list(versions.glob('v[0-9][0-9][0-9][0-9]_*.py'))) + 1:04d}"

    def action(config: Config) -> None:
        config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
        command.revision(config, message=message, autogenerate=autogenerate, rev_id=next_id)

    asyncio.run(_with_connection(database_url, action))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tradewind.adapters.sql.migrate")
    parser.add_argument("url", help="database URL, e.g. sqlite+aiosqlite:///data/tradewind.db")
    sub = parser.add_subparsers(dest="action", required=True)
    up = sub.add_parser("upgrade", help="apply migrations (default: to head)")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade", help="revert migrations to a revision or 'base'")
    down.add_argument("revision")
    sub.add_parser("current", help="print the database's revision")
    rev = sub.add_parser("revision", help="write a new revision script (autogenerate)")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--empty", action="store_true", help="do not autogenerate")
    args = parser.parse_args(argv)

    if args.action == "upgrade":
        upgrade(args.url, args.revision)
    elif args.action == "downgrade":
        downgrade(args.url, args.revision)
    elif args.action == "current":
        print(current_revision(args.url) or "(empty)")
    else:
        new_revision(args.url, args.message, autogenerate=not args.empty)
    return 0


if __name__ == "__main__":
    sys.exit(main())
