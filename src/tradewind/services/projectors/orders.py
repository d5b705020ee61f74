"""The orders projector: each order's latest state and each user's fills.

Invariants:
- one order row per core order id, reflecting exactly the events up to the projector's
  offset: ``status``, ``filled_qty``, ``filled_quote`` (so the average price is exact),
  ``fee`` (in the asset the order receives), ``locked`` (what it still holds: equal to
  the core's hold while open, 0 once over), ``cancel_reason``, created/updated seq and ts;
- a trade gives exactly two fills, its maker and its taker side (also when both belong
  to one user), with the fee in the asset that side received (base for the buyer, quote
  for the seller);
- events are applied exactly once per command (offset rule of
  :mod:`tradewind.services.projectors.base`); an event about an order the projector has
  never seen accepted is a :class:`ProjectionError`.

Statuses: ``untriggered`` (a stop waiting), ``new`` (accepted or triggered, nothing
filled), ``partially_filled``, ``filled`` (nothing open: ``*_left`` reached 0), and
``cancelled`` (``cancel_reason`` says why: user, ioc, market_remainder, stp, expired).
A market buy by quote amount has no quantity: it is ``filled`` once it has traded and
ended (what its budget did not buy went back to available; no ``cancel_reason``), and
``cancelled`` if it ended without a trade. These are the rules of
``tradewind.services.history.fold_order_event`` too, so every read model of orders
agrees. Rejected commands create no order row (the client hears the rejection
synchronously).

Order ids are the core's; the runtime never reuses one. If a command file does (the core
allows an id again once its order is over), the new order replaces the old row.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradewind.core.events import (
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderReleased,
    OrderTriggered,
    SymbolAdded,
    Trade,
)
from tradewind.services.projectors.base import ProjectionError, SymbolTable, pending
from tradewind.services.projectors.ports import (
    Batch,
    FillRecord,
    OrderState,
    OrdersTx,
    OrdersWriter,
)

_ORDER_EVENTS = (OrderCancelled, OrderReleased, OrderAmended, OrderTriggered)


def _referenced(batches: Sequence[Batch]) -> set[int]:
    """Ids of the orders the batches change without accepting them first."""
    ids: set[int] = set()
    for batch in batches:
        for e in batch.events:
            if isinstance(e, Trade):
                ids.add(e.maker_id)
                ids.add(e.taker_id)
            elif isinstance(e, _ORDER_EVENTS):
                ids.add(e.id)
    return ids


class _Fold:
    """Folds one transaction's events into order states and fills."""

    def __init__(self, symbols: SymbolTable, orders: dict[int, OrderState]) -> None:
        self.symbols = symbols
        self.orders = orders
        self.changed: dict[int, OrderState] = {}
        self.fills: list[FillRecord] = []
        self.seq = 0
        self.ts = 0

    def order(self, oid: int) -> OrderState:
        o = self.orders.get(oid)
        if o is None:
            raise ProjectionError(f"seq {self.seq}: order {oid} was never accepted")
        o.updated_seq, o.updated_ts = self.seq, self.ts
        self.changed[oid] = o
        return o

    def command(self, batch: Batch) -> None:
        self.seq, self.ts = batch.seq, batch.ts
        for index, e in enumerate(batch.events):
            if isinstance(e, Trade):
                self.trade(index, e)
            elif isinstance(e, OrderAccepted):
                o = OrderState(
                    id=e.id,
                    user_id=e.user,
                    symbol=e.symbol,
                    side=e.side,
                    type=e.type,
                    tif=e.tif,
                    price=e.price,
                    qty=e.qty,
                    quote_qty=e.quote_qty,
                    stop_price=e.stop_price,
                    display_qty=e.display_qty,
                    client_id=e.client_id,
                    status=e.status,
                    filled_qty=0,
                    filled_quote=0,
                    fee=0,
                    locked=e.locked,
                    cancel_reason=None,
                    created_seq=self.seq,
                    created_ts=self.ts,
                    updated_seq=self.seq,
                    updated_ts=self.ts,
                )
                self.orders[e.id] = self.changed[e.id] = o
            elif isinstance(e, OrderCancelled):
                o = self.order(e.id)
                o.locked -= e.unlocked
                # Only a market buy by quote amount ends with nothing left to cancel: it
                # is filled if it traded (its unspent budget went back), else cancelled.
                filled = e.left == 0 and o.filled_qty > 0
                o.status = "filled" if filled else "cancelled"
                o.cancel_reason = None if filled else e.reason
            elif isinstance(e, OrderReleased):
                self.order(e.id).locked -= e.amount
            elif isinstance(e, OrderAmended):
                o = self.order(e.id)
                o.price = e.price
                o.qty = o.filled_qty + e.qty
                o.locked = e.locked
            elif isinstance(e, OrderTriggered):
                self.order(e.id).status = "new"
            elif isinstance(e, SymbolAdded):
                self.symbols.learn(e)

    def trade(self, index: int, e: Trade) -> None:
        base, quote = self.symbols.assets(e.symbol)
        maker_side = "sell" if e.taker_side == "buy" else "buy"
        sides = (
            ("maker", e.maker_id, e.maker_user, maker_side, e.maker_fee, e.maker_left),
            ("taker", e.taker_id, e.taker_user, e.taker_side, e.taker_fee, e.taker_left),
        )
        for role, oid, user, side, fee, left in sides:
            o = self.order(oid)
            buy = side == "buy"
            o.filled_qty += e.qty
            o.filled_quote += e.quote
            o.fee += fee
            o.locked -= e.quote if buy else e.base
            o.status = "partially_filled" if left else "filled"
            self.fills.append(
                FillRecord(
                    seq=self.seq,
                    event_index=index,
                    role=role,
                    ts=self.ts,
                    order_id=oid,
                    user_id=user,
                    symbol=e.symbol,
                    side=side,
                    price=e.price,
                    qty=e.qty,
                    base_amount=e.base,
                    quote_amount=e.quote,
                    fee=fee,
                    fee_asset=base if buy else quote,
                )
            )


class OrdersProjector:
    """Writes order history and fills through an :class:`OrdersWriter`."""

    def __init__(self, store: OrdersWriter, name: str = "orders") -> None:
        self._store = store
        self._name = name
        self._symbols: tuple[int, SymbolTable] | None = None  # (offset, table)

    @property
    def name(self) -> str:
        return self._name

    async def offset(self) -> int:
        return await self._store.offset(self._name)

    async def apply(self, batches: Sequence[Batch]) -> int:
        async with self._store.transaction(self._name) as tx:
            last = await tx.offset()
            todo = pending(self._name, last, batches)
            if not todo:
                return last
            symbols = await self._symbol_table(tx, last)
            fold = _Fold(symbols, await tx.get_orders(_referenced(todo)))
            for batch in todo:
                fold.command(batch)
            await symbols.flush(tx)
            if fold.changed:
                await tx.put_orders(list(fold.changed.values()))
            if fold.fills:
                await tx.add_fills(fold.fills)
            end = todo[-1]
            await tx.advance(end.seq, end.ts)
        self._symbols = (end.seq, symbols)
        return end.seq

    async def _symbol_table(self, tx: OrdersTx, offset: int) -> SymbolTable:
        cached, self._symbols = self._symbols, None
        if cached is not None and cached[0] == offset:
            return cached[1]
        return SymbolTable(await tx.symbols())
