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

:class:`FollowedOrderIndex` is the API replica's (distributed mode, ADR 0049): fed by a
best-effort live stream that may start late, lag the replies, or lose batches, so it
holds only orders whose every event it saw (their acceptance included), forgets all at a
gap in the seqs, and lets a reader wait until it has folded a given seq.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from tradewind.core.events import Event, OrderAccepted, OrderCancelled, Trade
from tradewind.services.history import (
    OPEN_STATUSES,
    OrderView,
    SeqWatermark,
    _OrderState,
    fold_order_event,
)

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


class FollowedOrderIndex(OpenOrderIndex):
    """The index of an API replica, fed by its live event follower (ADR 0049).

    A batch's seq that does not follow the last one means batches were lost (a bounded
    queue dropped its head, the broker connection was down): every order is forgotten and
    the index starts again from that batch, so an order found here is one whose every
    event was folded. Orders accepted before the replica started (or before a gap) are
    not here; the caller asks the history for them, as for any order not found."""

    def __init__(self, keep_closed: int = DEFAULT_KEEP_CLOSED) -> None:
        super().__init__(keep_closed)
        self._watermark = SeqWatermark()
        self.restarts = 0
        """Gaps seen: each one forgot every order."""

    def apply(self, seq: int, ts: int, events: Sequence[Event]) -> None:
        if seq <= self.applied_seq:
            return
        if self.applied_seq and seq != self.applied_seq + 1:
            self._open.clear()
            self._closed.clear()
            self.restarts += 1
        super().apply(seq, ts, events)
        self._watermark.advance(seq)

    async def reached(self, seq: int, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until the batch of ``seq`` is folded (or skipped
        by a gap); False if it was not in time."""
        return await self._watermark.wait(seq, timeout_s)
