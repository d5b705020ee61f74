"""The open-order index: every open order's latest state, kept in memory from the core's
event stream, so that a cancel, an amend or a read of one order needs no SQL.

Why: waiting for the SQL projections before and after each cancel cost about 5x in
throughput (docs/performance.md). In embedded mode the core runner publishes every
durable command's events in this process before it answers the command, so an index
fed by that publisher is never behind what a client was told.

Invariants:
- the index has applied every published event up to :attr:`applied_seq`, in seq order,
  and no other; it holds every order that is open at that seq (rebuilt on start by
  replaying the journal from seq 1, like the in-memory market data);
- an order's state is the same fold of events as the history's
  (:func:`~tradewind.services.history.fold_order_event`), so its view equals what the
  orders projector will store for it;
- a closed order stays readable for a while (the most recent ``keep_closed`` of them,
  oldest dropped first), so the answer to the cancel that closed it, or to a cancel that
  lost the race to a fill, needs no SQL either; an order not found here is either closed
  long ago or never existed, and the caller asks the history.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from tradewind.core.events import Event, OrderAccepted, OrderCancelled, Trade
from tradewind.services.history import OPEN_STATUSES, OrderView, _OrderState, fold_order_event

DEFAULT_KEEP_CLOSED = 50_000
"""Closed orders kept readable (about 300 bytes each)."""


class OpenOrderIndex:
    """Open orders by id (plus the most recently closed ones), fed by the event stream."""

    def __init__(self, keep_closed: int = DEFAULT_KEEP_CLOSED) -> None:
        if keep_closed < 0:
            raise ValueError("keep_closed must be >= 0")
        self._open: dict[int, _OrderState] = {}
        self._closed: OrderedDict[int, _OrderState] = OrderedDict()
        self._keep_closed = keep_closed
        self.applied_seq = 0

    def __len__(self) -> int:
        """The number of open orders."""
        return len(self._open)

    def apply(self, seq: int, ts: int, events: Sequence[Event]) -> None:
        """Fold one durable command's events (the runner's publisher; seq order)."""
        if seq <= self.applied_seq:
            return  # already folded (a replay overlapping the live stream)
        orders = self._open
        for e in events:
            fold_order_event(orders, seq, ts, e)
            tp = type(e)
            if tp is Trade:
                assert isinstance(e, Trade)
                if e.maker_left == 0:
                    self._close(e.maker_id)
                if e.taker_left == 0:
                    self._close(e.taker_id)
            elif tp is OrderCancelled:
                assert isinstance(e, OrderCancelled)
                self._close(e.id)
            elif tp is OrderAccepted:
                assert isinstance(e, OrderAccepted)
                if e.status not in OPEN_STATUSES:
                    self._close(e.id)
        self.applied_seq = seq

    def _close(self, order_id: int) -> None:
        state = self._open.get(order_id)
        if state is None or state.status in OPEN_STATUSES:
            return
        del self._open[order_id]
        if self._keep_closed:
            closed = self._closed
            closed[order_id] = state
            if len(closed) > self._keep_closed:
                closed.popitem(last=False)

    def find(self, user: int, order_id: int) -> OrderView | None:
        """The order's latest view if it is ``user``'s and known here (open, or closed
        recently); None otherwise (ask the history)."""
        state = self._open.get(order_id)
        if state is None:
            state = self._closed.get(order_id)
            if state is None:
                return None
        if state.user != user:
            return None
        return state.view()

    def owner(self, order_id: int) -> int | None:
        """Whose order this is, if the index knows it."""
        state = self._open.get(order_id) or self._closed.get(order_id)
        return None if state is None else state.user
