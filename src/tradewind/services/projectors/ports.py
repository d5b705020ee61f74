"""Ports of the projectors: the records they write and the stores they write them to.

Invariants every store implementation keeps:
- ``transaction(name)`` is ONE database transaction: the rows a projector adds through
  it and the offset it stores with :meth:`ProjectionTx.advance` commit together or not
  at all, so after any crash the stored offset and the projected rows agree;
- :meth:`ProjectionTx.offset` is read under the transaction's write lock (``SELECT ...
  FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two processes running
  the same projector cannot both apply the events after it;
- offsets only move forward;
- amounts are exact ``int`` minor units in and out (never ``float``); on SQLite they are
  summed in Python, never with SQL ``SUM``.

Records are plain data (frozen dataclasses, except :class:`OrderState`, which the orders
projector updates in place inside one transaction). Prices and quantities are the core's
integer ticks and lots; ``seq`` and ``ts`` are the command's, stamped by the sequencer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from tradewind.core.events import Event

BUCKETS = ("available", "locked", "external")
"""Ledger buckets: ``external`` is the world outside the exchange (deposits come from
it, settled withdrawals go to it)."""

OPEN_STATUSES = frozenset({"new", "partially_filled", "untriggered"})
"""Order statuses of an order that still holds funds."""


@dataclass(frozen=True, slots=True)
class Batch:
    """The events of one command, as the core runner publishes them."""

    seq: int
    ts: int
    events: Sequence[Event]


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """A market as ``SymbolAdded`` announced it (projectors learn symbols from events)."""

    symbol: str
    base: str
    quote: str
    tick_size: int
    lot_size: int


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One leg of a double-entry posting: ``amount`` (signed) moves into ``bucket`` of
    ``account`` in ``asset``. The legs of one event sum to zero per asset."""

    seq: int
    event_index: int
    leg: int
    ts: int
    account: int
    bucket: str
    asset: str
    amount: int
    kind: str
    ref: str | None
    id: int | None = None
    """The store's row id (a stable cursor); ``None`` before the entry is stored."""


@dataclass(frozen=True, slots=True)
class LedgerBalance:
    """Sums of one account's legs in one asset. ``available + locked`` is its balance in
    the core; ``-external`` is what it deposited less what it withdrew."""

    available: int = 0
    locked: int = 0
    external: int = 0


@dataclass(frozen=True, slots=True)
class OrderHold:
    """What one open order (or untriggered stop) holds, as the ledger projector follows
    it: needed because ``OrderAmended.locked`` is the new total hold, not a change, and
    ``OrderCancelled`` / ``OrderReleased`` do not name the asset."""

    order_id: int
    account: int
    asset: str
    amount: int


@dataclass(slots=True)
class OrderState:
    """The latest state of one order (mutable: the orders projector folds events into it
    within one transaction and writes it back).

    ``qty`` is the order's total quantity in lots: the accepted quantity, or after an
    amend the filled quantity plus the new open quantity, so ``qty - filled_qty`` is
    what is open. ``filled_quote`` / ``filled_qty`` give the exact average price.
    ``fee`` is in the asset the order receives (base for buys, quote for sells).
    """

    id: int
    user_id: int
    symbol: str
    side: str
    type: str
    tif: str
    price: int | None
    qty: int | None
    quote_qty: int | None
    stop_price: int | None
    display_qty: int | None
    client_id: str | None
    status: str
    filled_qty: int
    filled_quote: int
    fee: int
    locked: int
    cancel_reason: str | None
    created_seq: int
    created_ts: int
    updated_seq: int
    updated_ts: int


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One side of one trade: ``role`` is ``maker`` or ``taker``; ``fee`` is in
    ``fee_asset``, the asset that side received."""

    seq: int
    event_index: int
    role: str
    ts: int
    order_id: int
    user_id: int
    symbol: str
    side: str
    price: int
    qty: int
    base_amount: int
    quote_amount: int
    fee: int
    fee_asset: str
    id: int | None = None
    """The store's row id (a stable cursor); ``None`` before the fill is stored."""


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One trade of the public tape (no user ids)."""

    seq: int
    event_index: int
    ts: int
    symbol: str
    price: int
    qty: int
    base_amount: int
    quote_amount: int
    taker_side: str
    maker_order_id: int
    taker_order_id: int
    id: int | None = None
    """The store's row id: ascending in execution order; ``None`` before it is stored."""


# -- transactions ---------------------------------------------------------------------


class ProjectionTx(Protocol):
    """One open transaction of one projector (named when the transaction began)."""

    async def offset(self) -> int:
        """The last applied ``seq`` (0 if the projector never ran), read under the write
        lock of this transaction."""
        ...

    async def advance(self, seq: int, ts: int) -> None:
        """Store ``seq`` as applied, in this transaction; refuses to move backwards."""
        ...


class SymbolsTx(Protocol):
    async def symbols(self) -> Sequence[SymbolInfo]:
        """Every symbol any projector recorded so far."""
        ...

    async def add_symbols(self, symbols: Sequence[SymbolInfo]) -> None:
        """Record symbols; one already recorded (by any projector) is left as it is."""
        ...


class LedgerTx(ProjectionTx, SymbolsTx, Protocol):
    async def holds(self) -> Sequence[OrderHold]:
        """Every open order's hold as of :meth:`offset`."""
        ...

    async def put_holds(self, holds: Sequence[OrderHold]) -> None:
        """Insert or replace holds by ``order_id``."""
        ...

    async def drop_holds(self, order_ids: Collection[int]) -> None:
        """Forget the holds of orders that ended."""
        ...

    async def add_entries(self, entries: Sequence[LedgerEntry]) -> None:
        """Append ledger legs; ``(seq, event_index, leg)`` is unique."""
        ...


class OrdersTx(ProjectionTx, SymbolsTx, Protocol):
    async def get_orders(self, ids: Collection[int]) -> dict[int, OrderState]:
        """The stored state of the orders among ``ids`` that exist."""
        ...

    async def put_orders(self, orders: Sequence[OrderState]) -> None:
        """Insert or replace orders by ``id``."""
        ...

    async def add_fills(self, fills: Sequence[FillRecord]) -> None:
        """Append fills; ``(seq, event_index, role)`` is unique."""
        ...


class TradesTx(ProjectionTx, Protocol):
    async def add_trades(self, trades: Sequence[TradeRecord]) -> None:
        """Append trades in execution order; ``(seq, event_index)`` is unique."""
        ...


# -- stores ---------------------------------------------------------------------------


class LedgerWriter(Protocol):
    """What the ledger projector itself needs (a writer thread's store offers only this)."""

    def transaction(self, name: str) -> AbstractAsyncContextManager[LedgerTx]:
        """Begin projector ``name``'s transaction; commits on normal exit."""
        ...

    async def offset(self, name: str) -> int:
        """The last applied ``seq`` of projector ``name`` (a plain read)."""
        ...


class LedgerStore(LedgerWriter, Protocol):
    async def balances(self, account: int | None = None) -> Mapping[tuple[int, str], LedgerBalance]:
        """Sums of the legs per ``(account, asset)`` (of one account if given)."""
        ...

    async def entries(
        self, account: int, *, asset: str | None = None, before_id: int | None = None, limit: int
    ) -> Sequence[LedgerEntry]:
        """An account's legs, newest first, with ``id < before_id`` when given."""
        ...


class OrdersWriter(Protocol):
    """What the orders projector itself needs."""

    def transaction(self, name: str) -> AbstractAsyncContextManager[OrdersTx]: ...

    async def offset(self, name: str) -> int: ...


class OrdersStore(OrdersWriter, Protocol):
    async def get_order(self, order_id: int) -> OrderState | None: ...

    async def list_orders(
        self,
        user_id: int,
        *,
        symbol: str | None = None,
        statuses: Collection[str] | None = None,
        before_id: int | None = None,
        limit: int,
    ) -> Sequence[OrderState]:
        """A user's orders, newest (highest id) first, with ``id < before_id`` if given."""
        ...

    async def list_fills(
        self,
        user_id: int,
        *,
        symbol: str | None = None,
        order_id: int | None = None,
        before_id: int | None = None,
        limit: int,
    ) -> Sequence[FillRecord]:
        """A user's fills, newest first, with ``id < before_id`` if given."""
        ...


class TradesWriter(Protocol):
    """What the trades projector itself needs."""

    def transaction(self, name: str) -> AbstractAsyncContextManager[TradesTx]: ...

    async def offset(self, name: str) -> int: ...


class TradesStore(TradesWriter, Protocol):
    async def list_trades(
        self, symbol: str, *, before_id: int | None = None, limit: int
    ) -> Sequence[TradeRecord]:
        """A symbol's trades, newest first, with ``id < before_id`` if given."""
        ...
