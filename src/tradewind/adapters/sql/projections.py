"""SQL store of the projectors: the ports of :mod:`tradewind.services.projectors.ports`.

:class:`SqlProjectionStore` is at once a ``LedgerStore``, an ``OrdersStore`` and a
``TradesStore``; its transactions (:class:`SqlProjectionTx`) are ``LedgerTx``,
``OrdersTx`` and ``TradesTx``. It also owns two tables of projector state:

- ``ledger_holds``: ``order_id -> (account, asset, amount)`` for every open order, as
  the ledger projector follows it (``OrderAmended`` states a new total hold, so the
  current one must be known);
- ``projector_symbols``: the markets announced by ``SymbolAdded`` (``symbol -> base,
  quote, tick_size, lot_size``), written insert-if-absent by any projector that learns
  one, so projectors at different offsets share it without conflict.

Invariants:
- one ``transaction(name)`` is one database transaction (``Database.write()``: ``BEGIN
  IMMEDIATE`` on SQLite); the projector's offset row is read ``FOR UPDATE`` on
  PostgreSQL, so two processes running one projector serialise instead of both
  applying the same events (and the unique keys of the rows would refuse the second);
- amounts are :class:`~tradewind.adapters.sql.types.MinorUnits`, exact ``int`` both
  ways; on SQLite they are text and are summed in Python, never with SQL ``SUM``;
- lists of ids in ``IN`` clauses are cut into chunks of :data:`IN_CHUNK`, below the
  bind-parameter limits of SQLite and asyncpg;
- on PostgreSQL the row writes run as SQL text on the transaction's own asyncpg
  connection (:class:`PgProjectionTx`, ADR 0046), never outside that transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database
from tradewind.adapters.sql.fills import FillRow
from tradewind.adapters.sql.ledger import LedgerEntryRow
from tradewind.adapters.sql.orders import OrderRow
from tradewind.adapters.sql.projector_offsets import (
    ProjectorOffsetRow,
    advance_offset,
    get_offset,
)
from tradewind.adapters.sql.sqltext import TableText
from tradewind.adapters.sql.trades import TradeRow
from tradewind.adapters.sql.types import MinorUnits
from tradewind.services.projectors.base import Projector
from tradewind.services.projectors.ledger import LedgerProjector
from tradewind.services.projectors.orders import OrdersProjector
from tradewind.services.projectors.ports import (
    FillRecord,
    LedgerBalance,
    LedgerEntry,
    OrderHold,
    OrderState,
    SymbolInfo,
    TradeRecord,
)
from tradewind.services.projectors.trades import TradesProjector

IN_CHUNK = 500


class LedgerHoldRow(Base):
    """What an open order holds, as the ledger projector sees it (gone once it is over)."""

    __tablename__ = "ledger_holds"

    order_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    account: Mapped[int] = mapped_column(sa.BigInteger)
    asset: Mapped[str] = mapped_column(sa.String(32))
    amount: Mapped[int] = mapped_column(MinorUnits)


class ProjectorSymbolRow(Base):
    """A market as ``SymbolAdded`` announced it."""

    __tablename__ = "projector_symbols"

    symbol: Mapped[str] = mapped_column(sa.String(65), primary_key=True)
    base: Mapped[str] = mapped_column(sa.String(32))
    quote: Mapped[str] = mapped_column(sa.String(32))
    tick_size: Mapped[int] = mapped_column(MinorUnits)
    lot_size: Mapped[int] = mapped_column(MinorUnits)


ORDER_COLUMNS = (
    "id",
    "user_id",
    "symbol",
    "side",
    "type",
    "tif",
    "price",
    "qty",
    "quote_qty",
    "stop_price",
    "display_qty",
    "client_id",
    "status",
    "filled_qty",
    "filled_quote",
    "fee",
    "locked",
    "cancel_reason",
    "created_seq",
    "created_ts",
    "updated_seq",
    "updated_ts",
)

# The columns each store writes, named as the attributes of the value it writes them
# from; SqlProjectionTx, PgProjectionTx and the writer thread's (projection_writer.py)
# share them.
ENTRY_COLUMNS = (
    "seq", "event_index", "leg", "ts", "account", "bucket", "asset", "amount", "kind", "ref",
)  # fmt: skip
HOLD_COLUMNS = ("order_id", "account", "asset", "amount")
SYMBOL_COLUMNS = ("symbol", "base", "quote", "tick_size", "lot_size")
FILL_COLUMNS = (
    "seq", "event_index", "role", "ts", "order_id", "user_id", "symbol", "side", "price",
    "qty", "base_amount", "quote_amount", "fee", "fee_asset",
)  # fmt: skip
TRADE_COLUMNS = (
    "seq", "event_index", "ts", "symbol", "price", "qty", "base_amount", "quote_amount",
    "taker_side", "maker_order_id", "taker_order_id",
)  # fmt: skip


def _rows(values: Iterable[object], columns: Sequence[str]) -> list[dict[str, Any]]:
    return [{name: getattr(v, name) for name in columns} for v in values]


def _table(entity: type[Base]) -> sa.Table:
    """The Core table of a mapped class: bulk writes go through Core ``executemany``,
    without the ORM's per-row bookkeeping."""
    return cast(sa.Table, entity.__table__)


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), IN_CHUNK):
        yield ordered[start : start + IN_CHUNK]


def _order(row: OrderRow) -> OrderState:
    return OrderState(**{name: getattr(row, name) for name in ORDER_COLUMNS})


def _fill(row: FillRow) -> FillRecord:
    return FillRecord(
        seq=row.seq,
        event_index=row.event_index,
        role=row.role,
        ts=row.ts,
        order_id=row.order_id,
        user_id=row.user_id,
        symbol=row.symbol,
        side=row.side,
        price=row.price,
        qty=row.qty,
        base_amount=row.base_amount,
        quote_amount=row.quote_amount,
        fee=row.fee,
        fee_asset=row.fee_asset,
        id=row.id,
    )


def _trade(row: TradeRow) -> TradeRecord:
    return TradeRecord(
        seq=row.seq,
        event_index=row.event_index,
        ts=row.ts,
        symbol=row.symbol,
        price=row.price,
        qty=row.qty,
        base_amount=row.base_amount,
        quote_amount=row.quote_amount,
        taker_side=row.taker_side,
        maker_order_id=row.maker_order_id,
        taker_order_id=row.taker_order_id,
        id=row.id,
    )


def _entry(row: LedgerEntryRow) -> LedgerEntry:
    return LedgerEntry(
        seq=row.seq,
        event_index=row.event_index,
        leg=row.leg,
        ts=row.ts,
        account=row.account,
        bucket=row.bucket,
        asset=row.asset,
        amount=row.amount,
        kind=row.kind,
        ref=row.ref,
        id=row.id,
    )


class SqlProjectionTx:
    """One projector's transaction (see the module invariants)."""

    def __init__(self, session: AsyncSession, name: str, dialect: str) -> None:
        self._session = session
        self._name = name
        self._postgres = dialect == "postgresql"

    # -- offset ---------------------------------------------------------------------

    async def offset(self) -> int:
        return await get_offset(self._session, self._name, for_update=self._postgres)

    async def advance(self, seq: int, ts: int) -> None:
        await advance_offset(self._session, self._name, seq, ts)

    # -- helpers --------------------------------------------------------------------

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        return postgresql.insert(table) if self._postgres else sqlite.insert(table)

    async def _upsert(
        self, table: sa.Table, key: str, columns: Sequence[str], rows: list[dict[str, Any]]
    ) -> None:
        if not rows:
            return
        insert = self._insert(table)
        update = {name: insert.excluded[name] for name in columns if name != key}
        await self._session.execute(
            insert.on_conflict_do_update(index_elements=[key], set_=update), rows
        )

    # -- symbols --------------------------------------------------------------------

    async def symbols(self) -> Sequence[SymbolInfo]:
        rows = await self._session.scalars(sa.select(ProjectorSymbolRow))
        return [SymbolInfo(r.symbol, r.base, r.quote, r.tick_size, r.lot_size) for r in rows]

    async def add_symbols(self, symbols: Sequence[SymbolInfo]) -> None:
        if not symbols:
            return
        insert = self._insert(_table(ProjectorSymbolRow))
        await self._session.execute(
            insert.on_conflict_do_nothing(index_elements=["symbol"]),
            _rows(symbols, SYMBOL_COLUMNS),
        )

    # -- ledger ---------------------------------------------------------------------

    async def holds(self) -> Sequence[OrderHold]:
        rows = await self._session.scalars(sa.select(LedgerHoldRow))
        return [OrderHold(r.order_id, r.account, r.asset, r.amount) for r in rows]

    async def put_holds(self, holds: Sequence[OrderHold]) -> None:
        rows = _rows(holds, HOLD_COLUMNS)
        await self._upsert(_table(LedgerHoldRow), "order_id", HOLD_COLUMNS, rows)

    async def drop_holds(self, order_ids: Collection[int]) -> None:
        for chunk in _chunks(order_ids):
            await self._session.execute(
                sa.delete(LedgerHoldRow).where(LedgerHoldRow.order_id.in_(chunk))
            )

    async def add_entries(self, entries: Sequence[LedgerEntry]) -> None:
        if entries:
            rows = _rows(entries, ENTRY_COLUMNS)
            await self._session.execute(sa.insert(_table(LedgerEntryRow)), rows)

    # -- orders and fills -----------------------------------------------------------

    async def get_orders(self, ids: Collection[int]) -> dict[int, OrderState]:
        found: dict[int, OrderState] = {}
        for chunk in _chunks(ids):
            rows = await self._session.scalars(sa.select(OrderRow).where(OrderRow.id.in_(chunk)))
            for row in rows:
                found[row.id] = _order(row)
        return found

    async def put_orders(self, orders: Sequence[OrderState]) -> None:
        rows = _rows(orders, ORDER_COLUMNS)
        await self._upsert(_table(OrderRow), "id", ORDER_COLUMNS, rows)

    async def add_fills(self, fills: Sequence[FillRecord]) -> None:
        if fills:
            await self._session.execute(sa.insert(_table(FillRow)), _rows(fills, FILL_COLUMNS))

    # -- trades ---------------------------------------------------------------------

    async def add_trades(self, trades: Sequence[TradeRecord]) -> None:
        if trades:
            rows = _rows(trades, TRADE_COLUMNS)
            await self._session.execute(sa.insert(_table(TradeRow)), rows)


_PG = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
_PG_ENTRIES = TableText(LedgerEntryRow, ENTRY_COLUMNS, _PG, numbered=True)
_PG_HOLDS = TableText(LedgerHoldRow, HOLD_COLUMNS, _PG, numbered=True)
_PG_ORDERS = TableText(OrderRow, ORDER_COLUMNS, _PG, numbered=True)
_PG_FILLS = TableText(FillRow, FILL_COLUMNS, _PG, numbered=True)
_PG_TRADES = TableText(TradeRow, TRADE_COLUMNS, _PG, numbered=True)
_PG_PUT_HOLDS = _PG_HOLDS.upsert("order_id")
_PG_DROP_HOLDS = f"DELETE FROM {_PG_HOLDS.name} WHERE order_id = ANY($1::bigint[])"
_PG_PUT_ORDERS = _PG_ORDERS.upsert("id")
_PG_GET_ORDERS = f"{_PG_ORDERS.select} WHERE id = ANY($1::bigint[])"
_PG_GET_ORDER = f"{_PG_ORDERS.select} WHERE id = $1"


async def _asyncpg(connection: AsyncConnection) -> Any:
    """The asyncpg connection under ``connection`` (asyncpg ships no type hints)."""
    raw = (await connection.get_raw_connection()).driver_connection
    if raw is None:
        raise RuntimeError("the database connection is closed")
    return raw


class PgProjectionTx(SqlProjectionTx):
    """:class:`SqlProjectionTx` on PostgreSQL whose row writes (and the orders read) run
    as SQL text built once on the transaction's own asyncpg connection (ADR 0046): the
    projector process spent most of its CPU in SQLAlchemy's per-statement work. The
    offsets, symbols and holds reads stay on the session; every statement runs in the
    one transaction the session began (checked before the first raw one)."""

    def __init__(self, session: AsyncSession, name: str) -> None:
        super().__init__(session, name, "postgresql")
        self._raw: Any = None  # asyncpg.Connection (asyncpg ships no type hints)

    async def _conn(self) -> Any:
        raw = self._raw
        if raw is None:
            connection = await self._session.connection()
            raw = await _asyncpg(connection)
            if not raw.is_in_transaction():
                # the adapter begins lazily, at its first statement: have it begin now,
                # or the raw statements would each commit on their own
                await connection.exec_driver_sql("SELECT 1")
            if not raw.is_in_transaction():
                raise RuntimeError("the projection transaction did not begin")
            self._raw = raw
        return raw

    async def put_holds(self, holds: Sequence[OrderHold]) -> None:
        if holds:
            await (await self._conn()).executemany(_PG_PUT_HOLDS, _PG_HOLDS.params(holds))

    async def drop_holds(self, order_ids: Collection[int]) -> None:
        if order_ids:
            await (await self._conn()).execute(_PG_DROP_HOLDS, sorted(order_ids))

    async def add_entries(self, entries: Sequence[LedgerEntry]) -> None:
        if entries:
            conn = await self._conn()
            await conn.executemany(_PG_ENTRIES.insert, _PG_ENTRIES.params(entries))

    async def get_orders(self, ids: Collection[int]) -> dict[int, OrderState]:
        if not ids:
            return {}
        rows = await (await self._conn()).fetch(_PG_GET_ORDERS, sorted(ids))
        states = (OrderState(**_PG_ORDERS.values(row)) for row in rows)
        return {state.id: state for state in states}

    async def put_orders(self, orders: Sequence[OrderState]) -> None:
        if orders:
            await (await self._conn()).executemany(_PG_PUT_ORDERS, _PG_ORDERS.params(orders))

    async def add_fills(self, fills: Sequence[FillRecord]) -> None:
        if fills:
            await (await self._conn()).executemany(_PG_FILLS.insert, _PG_FILLS.params(fills))

    async def add_trades(self, trades: Sequence[TradeRecord]) -> None:
        if trades:
            conn = await self._conn()
            await conn.executemany(_PG_TRADES.insert, _PG_TRADES.params(trades))


class SqlProjectionStore:
    """The projectors' ``LedgerStore``, ``OrdersStore`` and ``TradesStore`` on SQL."""

    def __init__(self, db: Database, *, raw_postgres: bool = True) -> None:
        self._db = db
        # False: every write through SQLAlchemy on PostgreSQL too (the tests' reference)
        self._raw_postgres = raw_postgres

    @asynccontextmanager
    async def transaction(self, name: str) -> AsyncIterator[SqlProjectionTx]:
        async with self._db.write() as session:
            if self._raw_postgres and self._db.dialect == "postgresql":
                yield PgProjectionTx(session, name)
            else:
                yield SqlProjectionTx(session, name, self._db.dialect)

    async def offset(self, name: str) -> int:
        async with self._db.read() as session:
            value = await session.scalar(
                sa.select(ProjectorOffsetRow.last_seq).where(ProjectorOffsetRow.name == name)
            )
            return 0 if value is None else int(value)

    async def offsets(self) -> dict[str, int]:
        """Every stored projector offset (for health checks and reconciliation)."""
        async with self._db.read() as session:
            rows = await session.execute(
                sa.select(ProjectorOffsetRow.name, ProjectorOffsetRow.last_seq)
            )
            return {name: int(seq) for name, seq in rows}

    # -- ledger ---------------------------------------------------------------------

    async def balances(self, account: int | None = None) -> dict[tuple[int, str], LedgerBalance]:
        """Sums of the legs per ``(account, asset)``: exact SQL ``SUM`` on PostgreSQL,
        Python addition over the streamed legs on SQLite (text amounts there)."""
        e = LedgerEntryRow
        sums: defaultdict[tuple[int, str], dict[str, int]] = defaultdict(dict)
        async with self._db.read() as session:
            if self._db.dialect == "postgresql":
                query = sa.select(e.account, e.asset, e.bucket, sa.func.sum(e.amount)).group_by(
                    e.account, e.asset, e.bucket
                )
                if account is not None:
                    query = query.where(e.account == account)
                for acct, asset, bucket, total in await session.execute(query):
                    sums[acct, asset][bucket] = int(total)
            else:
                query = sa.select(e.account, e.asset, e.bucket, e.amount)
                if account is not None:
                    query = query.where(e.account == account)
                stream = await session.stream(query)
                async for part in stream.partitions(10_000):
                    for acct, asset, bucket, amount in part:
                        by_bucket = sums[acct, asset]
                        by_bucket[bucket] = by_bucket.get(bucket, 0) + amount
        return {
            key: LedgerBalance(
                available=b.get("available", 0),
                locked=b.get("locked", 0),
                external=b.get("external", 0),
            )
            for key, b in sums.items()
        }

    async def entries(
        self, account: int, *, asset: str | None = None, before_id: int | None = None, limit: int
    ) -> Sequence[LedgerEntry]:
        e = LedgerEntryRow
        query = sa.select(e).where(e.account == account)
        if asset is not None:
            query = query.where(e.asset == asset)
        if before_id is not None:
            query = query.where(e.id < before_id)
        async with self._db.read() as session:
            rows = await session.scalars(query.order_by(e.id.desc()).limit(limit))
            return [_entry(row) for row in rows]

    async def holds(self) -> Sequence[OrderHold]:
        """Every open order's hold, as the ledger projector stored it."""
        async with self._db.read() as session:
            rows = await session.scalars(sa.select(LedgerHoldRow))
            return [OrderHold(r.order_id, r.account, r.asset, r.amount) for r in rows]

    # -- orders and fills -----------------------------------------------------------

    async def get_order(self, order_id: int) -> OrderState | None:
        if self._raw_postgres and self._db.dialect == "postgresql":
            # the API's hot read (every cancel and amend on a replica): one statement on a
            # pooled connection, no session, no transaction block (ADR 0046)
            async with self._db.engine.connect() as connection:
                found = await (await _asyncpg(connection)).fetchrow(_PG_GET_ORDER, order_id)
            return None if found is None else OrderState(**_PG_ORDERS.values(found))
        async with self._db.read() as session:
            row = await session.get(OrderRow, order_id)
            return None if row is None else _order(row)

    async def list_orders(
        self,
        user_id: int,
        *,
        symbol: str | None = None,
        statuses: Collection[str] | None = None,
        before_id: int | None = None,
        limit: int,
    ) -> Sequence[OrderState]:
        query = sa.select(OrderRow).where(OrderRow.user_id == user_id)
        if symbol is not None:
            query = query.where(OrderRow.symbol == symbol)
        if statuses is not None:
            query = query.where(OrderRow.status.in_(sorted(statuses)))
        if before_id is not None:
            query = query.where(OrderRow.id < before_id)
        async with self._db.read() as session:
            rows = await session.scalars(query.order_by(OrderRow.id.desc()).limit(limit))
            return [_order(row) for row in rows]

    async def list_fills(
        self,
        user_id: int,
        *,
        symbol: str | None = None,
        order_id: int | None = None,
        before_id: int | None = None,
        limit: int,
    ) -> Sequence[FillRecord]:
        query = sa.select(FillRow).where(FillRow.user_id == user_id)
        if symbol is not None:
            query = query.where(FillRow.symbol == symbol)
        if order_id is not None:
            query = query.where(FillRow.order_id == order_id)
        if before_id is not None:
            query = query.where(FillRow.id < before_id)
        async with self._db.read() as session:
            rows = await session.scalars(query.order_by(FillRow.id.desc()).limit(limit))
            return [_fill(row) for row in rows]

    # -- trades ---------------------------------------------------------------------

    async def list_trades(
        self, symbol: str, *, before_id: int | None = None, limit: int
    ) -> Sequence[TradeRecord]:
        query = sa.select(TradeRow).where(TradeRow.symbol == symbol)
        if before_id is not None:
            query = query.where(TradeRow.id < before_id)
        async with self._db.read() as session:
            rows = await session.scalars(query.order_by(TradeRow.id.desc()).limit(limit))
            return [_trade(row) for row in rows]


def sql_projectors(db: Database) -> list[Projector]:
    """The ledger, orders and trades projectors over one :class:`SqlProjectionStore`
    (offset names ``ledger``, ``orders``, ``trades``), for a ``ProjectorRunner``."""
    store = SqlProjectionStore(db)
    return [LedgerProjector(store), OrdersProjector(store), TradesProjector(store)]
