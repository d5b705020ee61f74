"""The SQL ledger follows margin money: wallets, the lending pool, the insurance fund.

Every margin scenario of the core's own tests (transfers, borrows, repays, interest,
orders from wallets with auto-borrow and auto-repay, margin calls, liquidations with a
fee, an insurance takeover, a shortfall paid by the fund, a loss written off by the
pool, a short bought back, several wallets liquidated by one mark) is replayed through
the ledger projector into SQLite: it must not stop on any margin event, and afterwards
the legs per (account, asset) add up to the core's balances for every account (wallets
have negative ids, the pool is -1 and the insurance fund -2), every event's legs sum to
zero per asset, and ``-external`` is deposits less withdrawals.

Without the margin legs the projector stops at the first ``PoolFunded`` ("the ledger
does not know"), and the embedded exchange's history stops with it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

import tests.unit.helpers as helpers
import tests.unit.test_margin_commands as margin_commands
import tests.unit.test_margin_liquidation as margin_liquidation
from tradewind.adapters.sql import Database, upgrade_async
from tradewind.adapters.sql.ledger import LedgerEntryRow
from tradewind.adapters.sql.projections import SqlProjectionStore
from tradewind.core.engine import Core
from tradewind.core.events import Event
from tradewind.services.projectors.ledger import LedgerProjector
from tradewind.services.projectors.ports import Batch

SCENARIOS: dict[str, Callable[[], None]] = {
    f"{module.__name__.rsplit('.', 1)[-1]}.{name}": getattr(module, name)
    for module in (margin_commands, margin_liquidation)
    for name in sorted(vars(module))
    if name.startswith("test_") and callable(getattr(module, name))
}


def record(scenario: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> list[Core]:
    """Run a core test, keeping each of its cores with the batches it produced."""
    cores: list[Core] = []

    def recording_core() -> Core:
        core = Core()
        batches: list[Batch] = []
        apply = core.apply

        def apply_and_keep(cmd: Any) -> list[Event]:
            events = apply(cmd)
            batches.append(Batch(cmd.seq, cmd.ts, events))
            return events

        try:
            core.apply = apply_and_keep  # type: ignore[method-assign]
        except AttributeError:
            pytest.skip("a compiled core's methods cannot be wrapped")
        core.batches = batches  # type: ignore[attr-defined]
        cores.append(core)
        return core

    monkeypatch.setattr(helpers, "Core", recording_core)
    scenario()
    return cores


def balances(core: Core) -> dict[tuple[int, str], tuple[int, int]]:
    return {
        (account, asset): (b.available, b.locked)
        for account, held in core.accounts.items()
        for asset, b in held.items()
        if b.available or b.locked
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_ledger_equals_the_core_after_margin_scenarios(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    cores = record(SCENARIOS[name], monkeypatch)
    assert cores
    for n, core in enumerate(cores):
        url = f"sqlite+aiosqlite:///{tmp_path / f'ledger{n}.db'}"
        await upgrade_async(url)
        db = Database.from_url(url)
        try:
            store = SqlProjectionStore(db)
            projector = LedgerProjector(store)
            batches: list[Batch] = core.batches  # type: ignore[attr-defined]
            # in a few transactions, as the runner hands them over
            for i in range(0, len(batches), 7):
                await projector.apply(batches[i : i + 7])
            assert await projector.offset() == batches[-1].seq
            sums = await store.balances()
            ledger = {
                k: (b.available, b.locked) for k, b in sums.items() if b.available or b.locked
            }
            assert ledger == balances(core)
            external: defaultdict[str, int] = defaultdict(int)
            for (_, asset), b in sums.items():
                external[asset] -= b.external
            for asset in core.assets:
                assert external[asset] == core.deposited.get(asset, 0) - core.withdrawn.get(
                    asset, 0
                )
            async with db.read() as session:
                e = LedgerEntryRow
                legs = (
                    await session.execute(sa.select(e.seq, e.event_index, e.asset, e.amount))
                ).all()
            per_event: defaultdict[tuple[int, int, str], int] = defaultdict(int)
            for seq, index, asset, amount in legs:
                per_event[seq, index, asset] += amount
            assert set(per_event.values()) <= {0}, "every event's legs sum to zero per asset"
        finally:
            await db.dispose()


def test_the_scenarios_cover_every_margin_money_event(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: set[str] = set()
    for scenario in SCENARIOS.values():
        for core in record(scenario, monkeypatch):
            for batch in core.batches:  # type: ignore[attr-defined]
                seen.update(type(e).__name__ for e in batch.events)
    money = {
        "PoolFunded",
        "InsuranceFunded",
        "MarginTransferred",
        "Borrowed",
        "Repaid",
        "LiquidationStarted",
        "LiquidationFinished",
        "InterestCharged",
    }
    assert money <= seen, money - seen
