"""The projectors' store on a plain synchronous SQLite connection (embedded mode).

Why: the projectors' SQL was the largest cost after the HTTP stack itself. Through the
async engine every statement was a greenlet switch plus a hop to aiosqlite's thread;
on the writer thread (:class:`~tradewind.services.projectors.writer_thread.WriterThread`)
none of that is needed, and with the statements built once as SQL text on the standard
``sqlite3`` connection the per-statement work of SQLAlchemy (coercing, compiling,
caching, binding, result set-up: about three quarters of the writer's CPU, ADR 0042)
goes too. :class:`SqliteProjectionTx` writes the very rows
:class:`~tradewind.adapters.sql.projections.SqlProjectionTx` writes: the tables, column
lists and bind and result conversions (``MinorUnits`` as decimal text) are taken from
the mapped tables, and a test compares the two stores' tables row by row.

Invariants:
- use it from one thread only (the writer thread): it keeps one connection, opened on
  first use by that thread (``sqlite3`` refuses use from any other);
- a ``transaction(name)`` is ``BEGIN IMMEDIATE ... COMMIT`` on that connection, rolled
  back on any exception, with the PRAGMAs of :mod:`tradewind.adapters.sql.engine` (WAL,
  busy timeout, foreign keys), so it serialises with the async engine's writers;
- the projector's offset row is advanced in the same transaction as its rows, only
  forward (:class:`~tradewind.adapters.sql.projector_offsets.OffsetWentBackwards`);
- ``synchronous=NORMAL`` on this connection by default (FULL for the others): in WAL
  mode a commit then survives a crash of the process but maybe not a power loss, which
  rolls back whole transactions only; the projections and their offsets commit
  together and are rebuilt from the journal by the start-up catch-up (ADR 0016);
- reads for the API (lists, balances) stay on the async store over the same file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL, make_url

from tradewind.adapters.sql.engine import SQLITE_BUSY_TIMEOUT_MS
from tradewind.adapters.sql.fills import FillRow
from tradewind.adapters.sql.ledger import LedgerEntryRow
from tradewind.adapters.sql.orders import OrderRow
from tradewind.adapters.sql.projections import (
    ENTRY_COLUMNS,
    FILL_COLUMNS,
    HOLD_COLUMNS,
    ORDER_COLUMNS,
    SYMBOL_COLUMNS,
    TRADE_COLUMNS,
    LedgerHoldRow,
    ProjectorSymbolRow,
    _chunks,
)
from tradewind.adapters.sql.projector_offsets import OffsetWentBackwards, ProjectorOffsetRow
from tradewind.adapters.sql.sqltext import TableText
from tradewind.adapters.sql.trades import TradeRow
from tradewind.services.projectors.ports import (
    FillRecord,
    LedgerEntry,
    OrderHold,
    OrderState,
    SymbolInfo,
    TradeRecord,
)

_DIALECT = SQLiteDialect_pysqlite()

_ENTRIES = TableText(LedgerEntryRow, ENTRY_COLUMNS, _DIALECT)
_HOLDS = TableText(LedgerHoldRow, HOLD_COLUMNS, _DIALECT)
_SYMBOLS = TableText(ProjectorSymbolRow, SYMBOL_COLUMNS, _DIALECT)
_ORDERS = TableText(OrderRow, ORDER_COLUMNS, _DIALECT)
_FILLS = TableText(FillRow, FILL_COLUMNS, _DIALECT)
_TRADES = TableText(TradeRow, TRADE_COLUMNS, _DIALECT)
_OFFSETS = cast(sa.Table, ProjectorOffsetRow.__table__).name

_PUT_HOLDS = _HOLDS.upsert("order_id")
_PUT_ORDERS = _ORDERS.upsert("id")
_ADD_SYMBOLS = f"{_SYMBOLS.insert} ON CONFLICT (symbol) DO NOTHING"
_GET_OFFSET = f"SELECT last_seq FROM {_OFFSETS} WHERE name = ?"
_ADVANCE = f"UPDATE {_OFFSETS} SET last_seq = ?, updated_ts = ? WHERE name = ? AND last_seq < ?"
_NEW_OFFSET = f"INSERT INTO {_OFFSETS} (name, last_seq, updated_ts) VALUES (?, ?, ?)"


def _in(n: int) -> str:
    return f"({', '.join('?' * n)})"


class SqliteProjectionTx:
    """One projector's transaction (``LedgerTx``, ``OrdersTx``, ``TradesTx``)."""

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self._conn = conn
        self._name = name

    # -- offset ---------------------------------------------------------------------

    async def offset(self) -> int:
        row = self._conn.execute(_GET_OFFSET, (self._name,)).fetchone()
        return 0 if row is None else int(row[0])

    async def advance(self, seq: int, ts: int) -> None:
        if self._conn.execute(_ADVANCE, (seq, ts, self._name, seq)).rowcount == 1:
            return
        row = self._conn.execute(_GET_OFFSET, (self._name,)).fetchone()
        if row is not None:
            raise OffsetWentBackwards(
                f"projector {self._name!r} is at {row[0]}, cannot store {seq}"
            )
        self._conn.execute(_NEW_OFFSET, (self._name, seq, ts))

    # -- symbols --------------------------------------------------------------------

    async def symbols(self) -> Sequence[SymbolInfo]:
        rows = self._conn.execute(_SYMBOLS.select).fetchall()
        return [SymbolInfo(**_SYMBOLS.values(r)) for r in rows]

    async def add_symbols(self, symbols: Sequence[SymbolInfo]) -> None:
        if symbols:
            self._conn.executemany(_ADD_SYMBOLS, _SYMBOLS.params(symbols))

    # -- ledger ---------------------------------------------------------------------

    async def holds(self) -> Sequence[OrderHold]:
        rows = self._conn.execute(_HOLDS.select).fetchall()
        return [OrderHold(**_HOLDS.values(r)) for r in rows]

    async def put_holds(self, holds: Sequence[OrderHold]) -> None:
        if holds:
            self._conn.executemany(_PUT_HOLDS, _HOLDS.params(holds))

    async def drop_holds(self, order_ids: Collection[int]) -> None:
        for chunk in _chunks(order_ids):
            self._conn.execute(
                f"DELETE FROM {_HOLDS.name} WHERE order_id IN {_in(len(chunk))}", chunk
            )

    async def add_entries(self, entries: Sequence[LedgerEntry]) -> None:
        if entries:
            self._conn.executemany(_ENTRIES.insert, _ENTRIES.params(entries))

    # -- orders and fills -----------------------------------------------------------

    async def get_orders(self, ids: Collection[int]) -> dict[int, OrderState]:
        found: dict[int, OrderState] = {}
        for chunk in _chunks(ids):
            query = f"{_ORDERS.select} WHERE id IN {_in(len(chunk))}"
            for row in self._conn.execute(query, chunk):
                state = OrderState(**_ORDERS.values(row))
                found[state.id] = state
        return found

    async def put_orders(self, orders: Sequence[OrderState]) -> None:
        if orders:
            self._conn.executemany(_PUT_ORDERS, _ORDERS.params(orders))

    async def add_fills(self, fills: Sequence[FillRecord]) -> None:
        if fills:
            self._conn.executemany(_FILLS.insert, _FILLS.params(fills))

    # -- trades ---------------------------------------------------------------------

    async def add_trades(self, trades: Sequence[TradeRecord]) -> None:
        if trades:
            self._conn.executemany(_TRADES.insert, _TRADES.params(trades))


def sqlite_path(url: str | URL) -> str:
    """The file of a SQLite URL (any driver)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise ValueError(f"not a SQLite database file: {url!s}")
    return parsed.database


class ThreadProjectionStore:
    """``LedgerStore``/``OrdersStore``/``TradesStore`` write side on one sync connection."""

    def __init__(self, url: str | URL, *, synchronous: str = "NORMAL") -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self._path = sqlite_path(url)
        self._synchronous = synchronous
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            # autocommit mode: the transactions are this store's own BEGIN ... COMMIT
            conn = sqlite3.connect(self._path, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            self._conn = conn
        return conn

    @asynccontextmanager
    async def transaction(self, name: str) -> AsyncIterator[SqliteProjectionTx]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield SqliteProjectionTx(conn, name)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    async def offset(self, name: str) -> int:
        row = self._connection().execute(_GET_OFFSET, (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def dispose(self) -> None:
        """Close the connection (call on the thread that used it)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
