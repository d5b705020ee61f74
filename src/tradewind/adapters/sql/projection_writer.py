"""The projectors' store on a plain synchronous SQLite connection (embedded mode).

Why: through the async engine every statement of a projector transaction is a greenlet
switch plus a hop to aiosqlite's thread and back to the event loop; with the
projectors on their own thread
(:class:`~tradewind.services.projectors.writer_thread.WriterThread`) none of that is
needed. :class:`ThreadProjectionStore` runs the very statements of
:class:`~tradewind.adapters.sql.projections.SqlProjectionTx` (same tables, types,
upserts and offset rule) on a synchronous SQLAlchemy session; its coroutines never
suspend.

Invariants:
- use it from one thread only (the writer thread): it keeps one connection;
- a ``transaction(name)`` is ``BEGIN IMMEDIATE ... COMMIT`` on that connection, with the
  PRAGMAs of :mod:`tradewind.adapters.sql.engine` (WAL, busy timeout, foreign keys), so
  it serialises with the async engine's writers on the file;
- ``synchronous=NORMAL`` on this connection by default (FULL for the others): in WAL
  mode a commit then survives a crash of the process but maybe not a power loss, which
  rolls back whole transactions only; the projections and their offsets commit
  together and are rebuilt from the journal by the start-up catch-up (ADR 0016);
- reads for the API (lists, balances) stay on the async store over the same file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import SingletonThreadPool

from tradewind.adapters.sql.engine import SQLITE_BUSY_TIMEOUT_MS
from tradewind.adapters.sql.projections import SqlProjectionTx
from tradewind.adapters.sql.projector_offsets import ProjectorOffsetRow


class _Awaitable:
    """The ``AsyncSession`` methods :class:`SqlProjectionTx` and ``advance_offset`` use,
    answered at once by a synchronous :class:`Session`."""

    __slots__ = ("_session",)

    def __init__(self, session: Session) -> None:
        self._session = session

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return self._session.execute(*args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return self._session.scalar(*args, **kwargs)

    async def scalars(self, *args: Any, **kwargs: Any) -> Any:
        return self._session.scalars(*args, **kwargs)

    def add(self, instance: object) -> None:
        self._session.add(instance)

    async def flush(self) -> None:
        self._session.flush()


def sync_sqlite_url(url: str | URL) -> URL:
    """``url`` (a SQLite URL with any driver) with the standard library's driver."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise ValueError(f"not a SQLite database: {parsed.drivername!r}")
    return parsed.set(drivername="sqlite+pysqlite")


class ThreadProjectionStore:
    """``LedgerStore``/``OrdersStore``/``TradesStore`` write side on one sync connection."""

    def __init__(self, url: str | URL, *, synchronous: str = "NORMAL") -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.engine = sa.create_engine(sync_sqlite_url(url), poolclass=SingletonThreadPool)

        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN, not the driver's
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute(f"PRAGMA synchronous = {synchronous}")
                cursor.execute("PRAGMA foreign_keys = ON")
            finally:
                cursor.close()

        @event.listens_for(self.engine, "begin")
        def _on_begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self, name: str) -> AsyncIterator[SqlProjectionTx]:
        with self._sessions.begin() as session:
            yield SqlProjectionTx(cast(AsyncSession, _Awaitable(session)), name, "sqlite")

    async def offset(self, name: str) -> int:
        with self._sessions() as session:
            value = session.scalar(
                sa.select(ProjectorOffsetRow.last_seq).where(ProjectorOffsetRow.name == name)
            )
            session.rollback()
            return 0 if value is None else int(value)

    def dispose(self) -> None:
        """Close the connection (call on the thread that used it)."""
        self.engine.dispose()
