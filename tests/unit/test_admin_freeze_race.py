"""A freeze closes the order race by construction (ADR 0031): another API process whose
frozen-account cache still says "not frozen" lets the order through, and the core, which
froze the account in the command that cancelled its orders, refuses it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.fakes import FakeClock, MemoryAuditStore
from tests.support.core_bus import apply_stamped
from tradewind.core.commands import AddAsset, AddSymbol, AnyCommand, Deposit
from tradewind.core.engine import Core
from tradewind.runtime.sequencer import Applied
from tradewind.services.admin import Actor, AdminService, UserSummary
from tradewind.services.audit import AuditLog
from tradewind.services.history import InMemoryHistory
from tradewind.services.trading import CoreRejected, TradingService


@dataclass
class Store:
    frozen: set[int] = field(default_factory=set)

    async def is_frozen(self, user_id: int) -> bool:
        return user_id in self.frozen

    async def get_user(self, user_id: int) -> UserSummary:
        return UserSummary(user_id, f"u{user_id}@example.com", "active", 0, "user", False, None)

    async def freeze(self, user_id: int, **_: Any) -> bool:
        new = user_id not in self.frozen
        self.frozen.add(user_id)
        return new

    async def unfreeze(self, user_id: int) -> bool:
        was = user_id in self.frozen
        self.frozen.discard(user_id)
        return was

    async def frozen_users(self, *, after_id: int, limit: int) -> list[int]:
        return sorted(u for u in self.frozen if u > after_id)[:limit]


class CoreBus:
    available = True

    def __init__(self) -> None:
        self.core = Core()
        self.history = InMemoryHistory()

    async def submit(self, cmd: AnyCommand) -> Applied:
        applied = apply_stamped(self.core, cmd)
        self.history.apply(applied.seq, applied.ts, applied.events)
        return applied


def test_an_order_from_a_process_that_has_not_seen_the_freeze_is_refused_by_the_core() -> None:
    async def go() -> None:
        clock, store, bus = FakeClock(), Store(), CoreBus()
        for cmd in (
            AddAsset(asset="BTC", decimals=8),
            AddAsset(asset="USDT", decimals=6),
            AddSymbol(symbol="BTC-USDT", base="BTC", quote="USDT", tick_size=10**4, lot_size=10**4),
            Deposit(user=7, asset="USDT", amount=10**9),
        ):
            await bus.submit(cmd)

        def process() -> tuple[AdminService, TradingService]:
            audit = AuditLog(MemoryAuditStore(), clock)
            admin = AdminService(store=store, bus=bus, audit=audit, clock=clock)  # type: ignore[arg-type]
            return admin, TradingService(bus, bus.history, guards=[admin])

        admin_a, _ = process()
        admin_b, trading_b = process()
        resting = await trading_b.place(7, "BTC-USDT", "buy", price=100, qty=1)
        # process B has read the flag just now and caches "not frozen" for a second
        await admin_b.check_order(7)

        cancelled = await admin_a.freeze(Actor(1, "compliance"), 7, "AML review")
        assert cancelled == [resting.id]
        assert 7 in bus.core.frozen and not bus.core.orders

        with pytest.raises(CoreRejected) as refused:
            await trading_b.place(7, "BTC-USDT", "buy", price=100, qty=1)
        assert (refused.value.reason, refused.value.status) == ("account_frozen", 403)
        assert not bus.core.orders and bus.core.available(7, "USDT") == 10**9

        # a second freeze (the core already agrees) and an unfreeze, then trading again
        assert await admin_a.freeze(Actor(1, "compliance"), 7, "again") == []
        await admin_a.unfreeze(Actor(1, "compliance"), 7, "cleared")
        assert not bus.core.frozen
        clock.advance(1000)
        await trading_b.place(7, "BTC-USDT", "buy", price=100, qty=1)

    asyncio.run(go())


def test_accounts_frozen_only_in_sql_are_frozen_in_the_core_at_start() -> None:
    async def go() -> None:
        clock, store, bus = FakeClock(), Store(frozen={3, 7}), CoreBus()
        audit = AuditLog(MemoryAuditStore(), clock)
        admin = AdminService(store=store, bus=bus, audit=audit, clock=clock)  # type: ignore[arg-type]
        await bus.submit(AddAsset(asset="USDT", decimals=6))
        assert await admin.sync_frozen() == 2
        assert bus.core.frozen == {3, 7}
        assert await admin.sync_frozen() == 0  # again at the next start: nothing new

    asyncio.run(go())
