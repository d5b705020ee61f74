"""The frozen-account guard of the order path: read through a short cache (no SQL read
per order), yet a freeze or unfreeze made in this process counts for the very next order;
as the only writer of freezes (embedded mode) it reads the frozen set once and keeps it
exact."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.fakes import FakeClock, MemoryAuditStore
from tradewind.services.admin import AccountFrozen, Actor, AdminService, UserSummary
from tradewind.services.audit import AuditLog


@dataclass
class Store:
    frozen: set[int] = field(default_factory=set)
    reads: int = 0

    async def is_frozen(self, user_id: int) -> bool:
        self.reads += 1
        return user_id in self.frozen

    async def get_user(self, user_id: int) -> UserSummary:
        return UserSummary(user_id, f"u{user_id}@example.com", "active", 0, "user", False, None)

    async def freeze(self, user_id: int, **_: Any) -> bool:
        self.frozen.add(user_id)
        return True

    async def unfreeze(self, user_id: int) -> bool:
        self.frozen.discard(user_id)
        return True

    async def frozen_users(self, *, after_id: int, limit: int) -> list[int]:
        self.reads += 1
        return sorted(u for u in self.frozen if u > after_id)[:limit]


@dataclass
class Applied:
    seq: int = 1
    events: list[Any] = field(default_factory=list)


class Bus:
    available = True

    async def submit(self, cmd: Any) -> Applied:
        return Applied()


@pytest.mark.asyncio
async def test_cached_reads_and_immediate_local_freezes() -> None:
    clock, store = FakeClock(), Store()
    admin = AdminService(
        store=store,  # type: ignore[arg-type]
        bus=Bus(),  # type: ignore[arg-type]
        audit=AuditLog(MemoryAuditStore(), clock),
        clock=clock,
        frozen_cache_ms=1000,
    )
    for _ in range(50):
        await admin.check_order(7)
    assert store.reads == 1  # one read per second, not per order

    officer = Actor(1, "compliance")
    await admin.freeze(officer, 7, "AML review")
    with pytest.raises(AccountFrozen):
        await admin.check_order(7)  # at once, not after the cache's second
    await admin.unfreeze(officer, 7, "cleared")
    await admin.check_order(7)

    store.frozen.add(7)  # frozen by another process
    await admin.check_order(7)  # still cached as not frozen...
    clock.advance(1000)
    with pytest.raises(AccountFrozen):
        await admin.check_order(7)  # ...for at most the cache's time
    with pytest.raises(AccountFrozen):
        await admin.check_withdrawal(7)  # withdrawals always read the store


def _admin(store: Store, clock: FakeClock, **kw: Any) -> AdminService:
    return AdminService(
        store=store,  # type: ignore[arg-type]
        bus=Bus(),  # type: ignore[arg-type]
        audit=AuditLog(MemoryAuditStore(), clock),
        clock=clock,
        **kw,
    )


@pytest.mark.asyncio
async def test_sole_writer_reads_the_frozen_set_once_and_keeps_it_exact() -> None:
    clock = FakeClock()
    store = Store(frozen={3} | set(range(1000, 1600)))  # more than one page of 500
    admin = _admin(store, clock, sole_writer=True)
    for user in (7, 8, 9, 1599):
        for _ in range(20):
            if user == 1599:
                with pytest.raises(AccountFrozen):
                    await admin.check_order(user)
            else:
                await admin.check_order(user)
        clock.advance(5000)
    with pytest.raises(AccountFrozen):
        await admin.check_order(3)
    assert store.reads == 2  # two pages, once: no reads per order or per second

    officer = Actor(1, "compliance")
    await admin.freeze(officer, 7, "AML review")
    with pytest.raises(AccountFrozen):
        await admin.check_order(7)
    await admin.unfreeze(officer, 3, "cleared")
    await admin.check_order(3)
    await admin.check_order(8)
    assert store.reads == 2


@pytest.mark.asyncio
async def test_sole_writer_reads_again_when_a_freeze_races_the_first_read() -> None:
    clock = FakeClock()
    store = Store()
    admin = _admin(store, clock, sole_writer=True)
    officer = Actor(1, "compliance")
    real = store.frozen_users
    raced = False

    async def racing(*, after_id: int, limit: int) -> list[int]:
        nonlocal raced
        page = await real(after_id=after_id, limit=limit)  # read before the freeze...
        if not raced:
            raced = True
            await admin.freeze(officer, 7, "AML review")  # ...which lands meanwhile
        return page

    store.frozen_users = racing  # type: ignore[method-assign]
    with pytest.raises(AccountFrozen):
        await admin.check_order(7)
    assert store.reads == 2


@pytest.mark.asyncio
async def test_listened_frozen_flags_are_exact_and_only_while_listening() -> None:
    """ADR 0045: an API replica on PostgreSQL keeps frozen flags in a cache dropped by
    the NOTIFY of every freeze; while not listening each order reads SQL."""
    from tradewind.runtime.authcache import AuthInvalidations

    clock, store = FakeClock(), Store()
    auth = AuthInvalidations()
    admin = AdminService(
        store=store,  # type: ignore[arg-type]
        bus=Bus(),  # type: ignore[arg-type]
        audit=AuditLog(MemoryAuditStore(), clock),
        clock=clock,
        listened_frozen=auth.frozen,
    )
    for _ in range(5):
        await admin.check_order(7)
    assert store.reads == 5  # not listening: SQL every time, not the 1 s cache
    auth.listening = True
    for _ in range(50):
        await admin.check_order(7)
    assert store.reads == 6
    store.frozen.add(7)  # frozen by another replica...
    await admin.check_order(7)
    auth.notified("user:7")  # ...whose NOTIFY arrives
    with pytest.raises(AccountFrozen):
        await admin.check_order(7)
    officer = Actor(1, "compliance")
    await admin.unfreeze(officer, 7, "cleared")  # here: at once, before the NOTIFY
    await admin.check_order(7)
