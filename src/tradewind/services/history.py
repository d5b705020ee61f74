"""Orders and fills history: the read model of what the core did to each user's orders.

Invariants:
- an order's view is a pure fold of the core's events in seq order
  (:func:`fold_order_event`), whoever folds them: the in-memory index below, the reply
  to the command that placed the order, or a SQL projector; so all agree;
- :class:`InMemoryHistory` has applied every published event up to ``applied_seq`` and
  no other; it is rebuilt on start by replaying the journal from seq 0, so its fill ids
  (the order in which fills happened, from 1) are stable across restarts;
- readers return pages newest first; ``next_cursor`` is the id of the last item when more
  may follow, and a page never repeats an item of an earlier page;
- amounts are integers (ticks, lots, minor units); decimals appear only at the API edge.

Gateways depend on :class:`HistoryReader` only: :class:`ProjectedHistory` reads the
orders projector's tables (what the runtime wires), :class:`InMemoryHistory` folds the
events itself (tests, tools, and a fallback that needs no database).
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from tradewind.core.events import (
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderTriggered,
    SymbolAdded,
    Trade,
)
from tradewind.services.projectors.ports import FillRecord, OrdersStore, OrderState

T = TypeVar("T")

ORDER_STATUSES = ("untriggered", "new", "partially_filled", "filled", "cancelled")
OPEN_STATUSES = frozenset({"untriggered", "new", "partially_filled"})


@dataclass(frozen=True, slots=True)
class OrderView:
    """The latest state of one order (integers: ticks, lots, minor units)."""

    id: int
    user: int
    symbol: str
    side: str
    type: str
    tif: str
    price: int | None
    qty: int | None
    """Total quantity in lots (filled + open); None for a market buy by quote amount."""
    quote_qty: int | None
    stop_price: int | None
    display_qty: int | None
    client_id: str | None
    status: str
    filled_qty: int
    filled_quote: int
    fee: int
    """In the asset the order receives: base for a buy, quote for a sell."""
    cancel_reason: str | None
    created_seq: int
    created_ts: int
    updated_seq: int
    updated_ts: int

    @property
    def open_qty(self) -> int:
        if self.status not in OPEN_STATUSES or self.qty is None:
            return 0
        return self.qty - self.filled_qty


@dataclass(frozen=True, slots=True)
class FillView:
    """One side of one trade."""

    id: int
    seq: int
    ts: int
    order_id: int
    user: int
    symbol: str
    side: str
    role: str
    price: int
    qty: int
    base_amount: int
    quote_amount: int
    fee: int
    fee_asset: str


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: int | None


class HistoryReader(Protocol):
    """What the gateways read; in-memory (embedded) or SQL (projector tables)."""

    @property
    def applied_seq(self) -> int:
        """Every event up to this seq is visible to the reads below."""
        ...

    async def wait_for(self, seq: int, timeout_s: float) -> bool:
        """Wait until ``applied_seq >= seq`` (read-your-writes); False on timeout."""
        ...

    async def get_order(self, user: int, order_id: int) -> OrderView | None: ...

    async def list_orders(
        self,
        user: int,
        *,
        symbol: str | None = None,
        statuses: frozenset[str] | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Page[OrderView]:
        """Orders of ``user``, newest first, with ids below ``before`` when given."""
        ...

    async def list_fills(
        self,
        user: int,
        *,
        symbol: str | None = None,
        order_id: int | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Page[FillView]:
        """Fills of ``user``, newest first, with ids below ``before`` when given."""
        ...


class SeqWatermark:
    """The highest seq a consumer applied, and waiters for it to reach a seq."""

    def __init__(self, seq: int = 0) -> None:
        self.seq = seq
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._counter = 0

    def advance(self, seq: int) -> None:
        if seq <= self.seq:
            return
        self.seq = seq
        while self._waiters and self._waiters[0][0] <= seq:
            _, _, fut = self._waiters.pop(0)
            if not fut.done():
                fut.set_result(None)

    async def wait(self, seq: int, timeout_s: float) -> bool:
        if self.seq >= seq:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._counter += 1
        bisect.insort(self._waiters, (seq, self._counter, fut))
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        except TimeoutError:
            self._waiters = [w for w in self._waiters if w[2] is not fut]
            return self.seq >= seq
        return True


class _OrderState:
    """Mutable fold state of one order; frozen into an :class:`OrderView` on read."""

    __slots__ = (
        "cancel_reason",
        "client_id",
        "created_seq",
        "created_ts",
        "display_qty",
        "fee",
        "filled_qty",
        "filled_quote",
        "id",
        "price",
        "qty",
        "quote_qty",
        "side",
        "status",
        "stop_price",
        "symbol",
        "tif",
        "type",
        "updated_seq",
        "updated_ts",
        "user",
    )

    def __init__(self, seq: int, ts: int, e: OrderAccepted) -> None:
        self.id = e.id
        self.user = e.user
        self.symbol = e.symbol
        self.side = e.side
        self.type = e.type
        self.tif = e.tif
        self.price = e.price
        self.qty = e.qty
        self.quote_qty = e.quote_qty
        self.stop_price = e.stop_price
        self.display_qty = e.display_qty
        self.client_id = e.client_id
        self.status = e.status
        self.filled_qty = 0
        self.filled_quote = 0
        self.fee = 0
        self.cancel_reason: str | None = None
        self.created_seq = self.updated_seq = seq
        self.created_ts = self.updated_ts = ts

    def view(self) -> OrderView:
        return OrderView(
            self.id,
            self.user,
            self.symbol,
            self.side,
            self.type,
            self.tif,
            self.price,
            self.qty,
            self.quote_qty,
            self.stop_price,
            self.display_qty,
            self.client_id,
            self.status,
            self.filled_qty,
            self.filled_quote,
            self.fee,
            self.cancel_reason,
            self.created_seq,
            self.created_ts,
            self.updated_seq,
            self.updated_ts,
        )


def _fill(o: _OrderState, seq: int, ts: int, qty: int, quote: int, fee: int, left: int) -> None:
    o.filled_qty += qty
    o.filled_quote += quote
    o.fee += fee
    o.status = "filled" if left == 0 else "partially_filled"
    o.updated_seq, o.updated_ts = seq, ts


def fold_order_event(orders: dict[int, _OrderState], seq: int, ts: int, e: Event) -> None:
    """Apply one event to the order states it concerns (orders not in ``orders`` are
    skipped, except that ``OrderAccepted`` adds its order)."""
    tp = type(e)
    if tp is Trade:
        assert isinstance(e, Trade)
        maker = orders.get(e.maker_id)
        if maker is not None:
            _fill(maker, seq, ts, e.qty, e.quote, e.maker_fee, e.maker_left)
        taker = orders.get(e.taker_id)
        if taker is not None:
            _fill(taker, seq, ts, e.qty, e.quote, e.taker_fee, e.taker_left)
    elif tp is OrderAccepted:
        assert isinstance(e, OrderAccepted)
        orders[e.id] = _OrderState(seq, ts, e)
    elif tp is OrderCancelled:
        assert isinstance(e, OrderCancelled)
        o = orders.get(e.id)
        if o is not None:
            # A market buy by quote amount ends with a cancel of what its budget left.
            filled = e.left == 0 and o.filled_qty > 0
            o.status = "filled" if filled else "cancelled"
            o.cancel_reason = None if filled else e.reason
            o.updated_seq, o.updated_ts = seq, ts
    elif tp is OrderAmended:
        assert isinstance(e, OrderAmended)
        o = orders.get(e.id)
        if o is not None:
            o.price = e.price
            o.qty = o.filled_qty + e.qty
            o.updated_seq, o.updated_ts = seq, ts
    elif tp is OrderTriggered:
        assert isinstance(e, OrderTriggered)
        o = orders.get(e.id)
        if o is not None and o.status == "untriggered":
            o.status = "new"
            o.updated_seq, o.updated_ts = seq, ts


def order_from_events(
    order_id: int, seq: int, ts: int, events: Iterable[Event]
) -> OrderView | None:
    """The view of an order placed by the command whose events these are."""
    orders: dict[int, _OrderState] = {}
    for e in events:
        fold_order_event(orders, seq, ts, e)
    state = orders.get(order_id)
    return None if state is None else state.view()


def _page(items: Sequence[T], limit: int) -> Page[T]:
    more = len(items) > limit
    kept = list(items[:limit])
    cursor = getattr(kept[-1], "id", None) if more and kept else None
    return Page(kept, cursor)


class InMemoryHistory:
    """:class:`HistoryReader` fed synchronously by the event fan-out (embedded mode)."""

    def __init__(self) -> None:
        self._orders: dict[int, _OrderState] = {}
        self._user_orders: dict[int, list[int]] = {}
        self._fills: list[FillView] = []
        self._user_fills: dict[int, list[int]] = {}
        self._symbols: dict[str, tuple[str, str]] = {}
        self._watermark = SeqWatermark()

    @property
    def applied_seq(self) -> int:
        return self._watermark.seq

    async def wait_for(self, seq: int, timeout_s: float) -> bool:
        return await self._watermark.wait(seq, timeout_s)

    def apply(self, seq: int, ts: int, events: Sequence[Event]) -> None:
        """Fold one command's events (called in seq order, after they are durable)."""
        orders = self._orders
        for e in events:
            tp = type(e)
            if tp is OrderAccepted:
                assert isinstance(e, OrderAccepted)
                self._user_orders.setdefault(e.user, []).append(e.id)
            elif tp is Trade:
                assert isinstance(e, Trade)
                self._add_fills(seq, ts, e)
            elif tp is SymbolAdded:
                assert isinstance(e, SymbolAdded)
                self._symbols[e.symbol] = (e.base, e.quote)
            fold_order_event(orders, seq, ts, e)
        self._watermark.advance(seq)

    def _add_fills(self, seq: int, ts: int, e: Trade) -> None:
        base, quote = self._symbols.get(e.symbol, ("", ""))
        maker_side = "sell" if e.taker_side == "buy" else "buy"
        for role, order_id, user, side, fee in (
            ("maker", e.maker_id, e.maker_user, maker_side, e.maker_fee),
            ("taker", e.taker_id, e.taker_user, e.taker_side, e.taker_fee),
        ):
            fill = FillView(
                len(self._fills) + 1,
                seq,
                ts,
                order_id,
                user,
                e.symbol,
                side,
                role,
                e.price,
                e.qty,
                e.base,
                e.quote,
                fee,
                base if side == "buy" else quote,
            )
            self._fills.append(fill)
            self._user_fills.setdefault(user, []).append(fill.id)

    async def get_order(self, user: int, order_id: int) -> OrderView | None:
        state = self._orders.get(order_id)
        if state is None or state.user != user:
            return None
        return state.view()

    async def list_orders(
        self,
        user: int,
        *,
        symbol: str | None = None,
        statuses: frozenset[str] | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Page[OrderView]:
        ids = self._user_orders.get(user, [])
        end = len(ids) if before is None else bisect.bisect_left(ids, before)
        found: list[OrderView] = []
        for i in range(end - 1, -1, -1):
            state = self._orders[ids[i]]
            if symbol is not None and state.symbol != symbol:
                continue
            if statuses is not None and state.status not in statuses:
                continue
            found.append(state.view())
            if len(found) > limit:
                break
        return _page(found, limit)

    async def list_fills(
        self,
        user: int,
        *,
        symbol: str | None = None,
        order_id: int | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Page[FillView]:
        ids = self._user_fills.get(user, [])
        end = len(ids) if before is None else bisect.bisect_left(ids, before)
        found: list[FillView] = []
        for i in range(end - 1, -1, -1):
            fill = self._fills[ids[i] - 1]
            if symbol is not None and fill.symbol != symbol:
                continue
            if order_id is not None and fill.order_id != order_id:
                continue
            found.append(fill)
            if len(found) > limit:
                break
        return _page(found, limit)


class _Watermarked(Protocol):
    @property
    def applied_seq(self) -> int: ...

    async def wait_for(self, seq: int) -> None: ...


def _order_view(o: OrderState) -> OrderView:
    return OrderView(
        o.id,
        o.user_id,
        o.symbol,
        o.side,
        o.type,
        o.tif,
        o.price,
        o.qty,
        o.quote_qty,
        o.stop_price,
        o.display_qty,
        o.client_id,
        o.status,
        o.filled_qty,
        o.filled_quote,
        o.fee,
        o.cancel_reason,
        o.created_seq,
        o.created_ts,
        o.updated_seq,
        o.updated_ts,
    )


def _fill_view(f: FillRecord) -> FillView:
    return FillView(
        f.id or 0,
        f.seq,
        f.ts,
        f.order_id,
        f.user_id,
        f.symbol,
        f.side,
        f.role,
        f.price,
        f.qty,
        f.base_amount,
        f.quote_amount,
        f.fee,
        f.fee_asset,
    )


class ProjectedHistory:
    """:class:`HistoryReader` over the orders projector's store (SQL tables), with the
    projector runner as the watermark for read-your-writes."""

    def __init__(self, store: OrdersStore, progress: _Watermarked) -> None:
        self._store = store
        self._progress = progress

    @property
    def applied_seq(self) -> int:
        return self._progress.applied_seq

    async def wait_for(self, seq: int, timeout_s: float) -> bool:
        if self._progress.applied_seq >= seq:
            return True
        try:
            await asyncio.wait_for(self._progress.wait_for(seq), timeout_s)
        except (TimeoutError, RuntimeError):
            return False
        return True

    async def get_order(self, user: int, order_id: int) -> OrderView | None:
        state = await self._store.get_order(order_id)
        if state is None or state.user_id != user:
            return None
        return _order_view(state)

    async def list_orders(
        self,
        user: int,
        *,
        symbol: str | None = None,
        statuses: frozenset[str] | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Page[OrderView]:
        rows = await self._store.list_orders(
            user, symbol=symbol, statuses=statuses, before_id=before, limit=limit + 1
        )
        return _page([_order_view(o) for o in rows], limit)

    async def list_fills(
        self,
        user: int,
        *,
        symbol: str | None = None,
        order_id: int | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Page[FillView]:
        rows = await self._store.list_fills(
            user, symbol=symbol, order_id=order_id, before_id=before, limit=limit + 1
        )
        return _page([_fill_view(f) for f in rows], limit)
