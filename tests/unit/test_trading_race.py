"""A cancel or amend that loses the race to a fill answers 409, not 404."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.core_bus import apply_stamped
from tradewind.core.commands import AddAsset, AddSymbol, AnyCommand, Cancel, Deposit, Place
from tradewind.core.engine import Core
from tradewind.runtime.sequencer import Applied
from tradewind.services.history import InMemoryHistory
from tradewind.services.trading import OrderNotOpen, TradingService


class CoreBus:
    """Applies commands to a real core at once; feeds the history only when asked,
    so a test can make the history lag behind the core as a projector can."""

    def __init__(self, history: InMemoryHistory) -> None:
        self.core = Core()
        self.history = history
        self.feed = True

    @property
    def available(self) -> bool:
        return True

    async def submit(self, cmd: AnyCommand) -> Applied:
        applied = apply_stamped(self.core, cmd)
        if self.feed:
            self.history.apply(applied.seq, applied.ts, applied.events)
        return applied


@pytest.mark.parametrize("action", ["cancel", "amend"])
def test_order_closed_by_the_core_before_the_history_knows_is_not_open(action: str) -> None:
    async def go() -> None:
        history = InMemoryHistory()
        bus = CoreBus(history)
        trading = TradingService(bus, history)
        for cmd in (
            AddAsset(asset="BTC", decimals=8),
            AddAsset(asset="USDT", decimals=6),
            AddSymbol(symbol="BTC-USDT", base="BTC", quote="USDT", tick_size=10**4, lot_size=10**4),
            Deposit(user=1, asset="USDT", amount=10**9),
        ):
            await bus.submit(cmd)
        placed = await bus.submit(
            Place(id=0, user=1, symbol="BTC-USDT", side="buy", price=100, qty=5)
        )
        order_id = placed.command.id  # type: ignore[union-attr]
        bus.feed = False  # the order closes in the core; the history has not seen it yet
        await bus.submit(Cancel(id=order_id, user=1, symbol="BTC-USDT"))
        with pytest.raises(OrderNotOpen, match="meanwhile"):
            if action == "cancel":
                await trading.cancel(1, order_id)
            else:
                await trading.amend(1, order_id, qty=3)

    asyncio.run(go())
