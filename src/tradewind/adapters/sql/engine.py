"""Async engine factory and the :class:`Database` handle every SQL repository uses.

Invariants:
- one URL form per driver: ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...``
  (``sqlite:///`` and ``postgresql://`` / ``postgres://`` are rewritten to them);
- every SQLite connection runs in WAL mode with foreign keys enforced, a busy timeout
  and ``synchronous=FULL`` (accounts are not rebuildable from the journal, so a
  committed row must survive power loss);
- SQLite transactions are real ``BEGIN ... COMMIT`` blocks issued by SQLAlchemy, not by
  the driver's implicit mode, so a projector's rows and its offset commit together;
- :meth:`Database.write` starts ``BEGIN IMMEDIATE`` on SQLite: a writer takes the write
  lock before it reads, so it waits (``busy_timeout``) instead of failing with
  ``SQLITE_BUSY`` when another connection wrote between its read and its write;
- inside :meth:`Database.one_transaction`, every :meth:`Database.write` of the same
  database in the same task joins that one transaction (it neither begins nor commits
  its own): it commits once at the end, or nothing does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import NullPool

SQLITE_BUSY_TIMEOUT_MS = 5000
_BEGIN_OPTION = "tradewind_sqlite_begin"
_SHARED: ContextVar[tuple[Database, AsyncSession] | None] = ContextVar(
    "tradewind_shared_write", default=None
)


def normalise_url(url: str | URL) -> URL:
    """Return ``url`` with its async driver; refuse databases the adapter does not support."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    raise ValueError(f"unsupported database {parsed.drivername!r}: use sqlite or postgresql")


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


SQLITE_POOL_SIZE = 32
"""Connections kept open to a SQLite file: at least the API's expected concurrency."""

POSTGRES_POOL_SIZE = 16
"""Connections a process keeps open to PostgreSQL by default (opened as needed, never
more than its concurrency asked for), plus as many again as overflow, closed after use
(setting ``database_pool_size``). With
SQLAlchemy's default (5 + 10) an API replica under 16 concurrent requests opened and
closed a connection every few requests: a TCP handshake, authentication and a new
server process each time (docs/performance.md, distributed mode)."""


def create_engine(
    url: str | URL,
    *,
    echo: bool = False,
    foreign_keys: bool = True,
    pool: bool = True,
    pool_size: int = POSTGRES_POOL_SIZE,
) -> AsyncEngine:
    """Create an async engine for ``url`` with the settings this adapter relies on.

    ``foreign_keys=False`` is for migrations only: SQLite must not enforce foreign keys
    while batch mode copies a table, and the pragma cannot change inside a transaction.
    ``pool=False`` uses no pool (one-shot tools such as the migration runner).
    ``pool_size``: PostgreSQL's connections kept per process (and as many overflow).
    """
    target = normalise_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if not pool:
        kwargs["poolclass"] = NullPool
    if target.get_backend_name() == "postgresql":
        # no pool_pre_ping (ADR 0041): on asyncpg it is BEGIN, a query and ROLLBACK
        # before every transaction. A connection the server dropped fails its next
        # statement instead; SQLAlchemy then discards it and every pooled connection
        # older than the failure, so a server restart costs one failed transaction
        # per process, which the callers retry or answer as any database error.
        if pool:
            if pool_size < 1:
                raise ValueError("pool_size must be positive")
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
        return _create_async_engine(target, **kwargs)

    if pool:
        # Each SQLite connection is an aiosqlite thread plus four PRAGMAs: the default
        # pool (5 + 10 overflow) was smaller than the API's concurrency and opened and
        # closed connections about 20 times a second under load (docs/performance.md).
        kwargs["pool_size"] = SQLITE_POOL_SIZE
        kwargs["max_overflow"] = SQLITE_POOL_SIZE
    engine = _create_async_engine(target, **kwargs)
    _install_sqlite_hooks(engine, foreign_keys=foreign_keys)
    return engine


def _install_sqlite_hooks(engine: AsyncEngine, *, foreign_keys: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """An engine plus the two kinds of transaction the repositories need.

    Repositories never hold a session between calls: each method is one short
    transaction, so no ORM object outlives it and nothing lazy-loads later.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._read = async_sessionmaker(engine, expire_on_commit=False)
        writer = engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        self._write = async_sessionmaker(writer, expire_on_commit=False)

    @classmethod
    def from_url(
        cls, url: str | URL, *, echo: bool = False, pool_size: int = POSTGRES_POOL_SIZE
    ) -> Database:
        """``pool_size``: PostgreSQL only (SQLite keeps :data:`SQLITE_POOL_SIZE`)."""
        return cls(create_engine(url, echo=echo, pool_size=pool_size))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction (deferred on SQLite: it never blocks writers)."""
        async with self._read() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A read-write transaction, committed on normal exit and rolled back on error;
        inside :meth:`one_transaction`, that transaction instead."""
        shared = _SHARED.get()
        if shared is not None and shared[0] is self:
            yield shared[1]
            return
        async with self._write() as session, session.begin():
            yield session

    @asynccontextmanager
    async def one_transaction(self) -> AsyncIterator[None]:
        """Make every :meth:`write` inside part of one transaction, committed on normal
        exit and rolled back on error: several writers pay one ``BEGIN``/``COMMIT`` and
        one connection checkout. One session: the writers inside must run one after
        the other (a task started inside would share it too)."""
        shared = _SHARED.get()
        if shared is not None and shared[0] is self:
            yield
            return
        async with self.write() as session:
            token = _SHARED.set((self, session))
            try:
                yield
            finally:
                _SHARED.reset(token)

    async def dispose(self) -> None:
        await self.engine.dispose()


def rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE or DELETE (``session.execute`` types it as a plain Result)."""
    return cast("CursorResult[Any]", result).rowcount
