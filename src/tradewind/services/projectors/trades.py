"""The trades projector: the public trade tape.

Invariants: one record per core ``Trade`` event, keyed by ``(seq, event_index)``,
written in execution order (so the store's ids ascend in execution order and serve as
a pagination cursor), exactly once per command (offset rule of
:mod:`tradewind.services.projectors.base`). The tape names orders, never users.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradewind.core.events import Trade
from tradewind.services.projectors.base import pending
from tradewind.services.projectors.ports import Batch, TradeRecord, TradesWriter


class TradesProjector:
    """Writes the trade tape through a :class:`TradesWriter`."""

    def __init__(self, store: TradesWriter, name: str = "trades") -> None:
        self._store = store
        self._name = name

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
            trades = [
                TradeRecord(
                    seq=batch.seq,
                    event_index=index,
                    ts=batch.ts,
                    symbol=e.symbol,
                    price=e.price,
                    qty=e.qty,
                    base_amount=e.base,
                    quote_amount=e.quote,
                    taker_side=e.taker_side,
                    maker_order_id=e.maker_id,
                    taker_order_id=e.taker_id,
                )
                for batch in todo
                for index, e in enumerate(batch.events)
                if isinstance(e, Trade)
            ]
            if trades:
                await tx.add_trades(trades)
            end = todo[-1]
            await tx.advance(end.seq, end.ts)
        return end.seq
