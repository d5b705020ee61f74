"""Shutdown waits for the audit entries written off the request path (ADR 0017).

A failed sign-in's entry is appended by a background task after the answer; a process
stopped in between used to lose it. ``IdentityWiring.stop`` drains them before the
database is disposed, and gives up after its timeout rather than hang on a dead one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.fakes import FakeClock, MemoryAuditStore
from tradewind.runtime.identity import IdentityWiring
from tradewind.services.audit import AuditLog


def wiring(store: MemoryAuditStore, timeout_s: float = 10.0) -> IdentityWiring:
    none: Any = None
    audit = AuditLog(store, FakeClock())
    return IdentityWiring(none, none, None, False, audit=audit, drain_timeout_s=timeout_s)


@pytest.mark.asyncio
async def test_stop_writes_the_entries_still_in_flight() -> None:
    store = MemoryAuditStore()
    w = wiring(store)
    store.hold()
    assert w.audit is not None
    w.audit.record_soon("security.sign_in_failed", subject_id=7, details={"reason": "password"})
    await asyncio.sleep(0)
    assert store.entries == [] and store.appends_started == 1  # waiting for the database
    asyncio.get_running_loop().call_later(0.05, store.release)
    await w.stop()
    assert [(e.action, e.subject_id) for e in store.entries] == [("security.sign_in_failed", 7)]


@pytest.mark.asyncio
async def test_stop_gives_up_on_a_database_that_never_answers() -> None:
    store = MemoryAuditStore()
    w = wiring(store, timeout_s=0.05)
    store.hold()
    assert w.audit is not None
    w.audit.record_soon("security.sign_in_failed", subject_id=7)
    await asyncio.wait_for(w.stop(), 5)  # returns: no deadlock at shutdown
    assert store.entries == []
    store.release()
    await w.audit.drain()
