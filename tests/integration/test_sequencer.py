"""The core runner answers only after its group commit, and stamps seq, ts and ids."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tradewind.core.commands import AddAsset, AddSymbol, AnyCommand, Deposit, Place, Side
from tradewind.core.events import OrderAccepted, Trade
from tradewind.journal.recovery import JournaledCore, recover
from tradewind.runtime.sequencer import Applied, CoreRunner, CoreUnavailable

SETUP: list[AnyCommand] = [
    AddAsset(asset="BTC", decimals=8),
    AddAsset(asset="USDT", decimals=6),
    AddSymbol(symbol="BTC-USDT", base="BTC", quote="USDT", tick_size=10000, lot_size=10000),
    Deposit(user=1, asset="USDT", amount=10**9),
    Deposit(user=2, asset="BTC", amount=10**8),
]


def place(user: int, side: Side, price: int, qty: int) -> Place:
    return Place(id=0, user=user, symbol="BTC-USDT", side=side, price=price, qty=qty)


async def run(data: Path, clock: list[int]) -> list[Applied]:
    runner = CoreRunner(JournaledCore(data), clock_ms=lambda: clock[0])
    runner.start()
    try:
        for cmd in SETUP:
            await runner.submit(cmd)
        # Many submitters at once: they share group commits but each gets its own answer.
        sells = [runner.submit(place(2, "sell", 100 + i, 1)) for i in range(20)]
        applied = await asyncio.gather(*sells)
        clock[0] = 5  # the clock going back must not move ts back
        buy = await runner.submit(place(1, "buy", 200, 20))
        return [*applied, buy]
    finally:
        await runner.stop()


def test_runner_stamps_and_acknowledges_durable_commands(tmp_path: Path) -> None:
    clock = [1_000]
    results = asyncio.run(run(tmp_path, clock))
    seqs = [r.seq for r in results]
    assert seqs == list(range(6, 27)), "seq follows arrival order, no gaps"
    first = results[0]
    accepted = first.events[0]
    assert isinstance(accepted, OrderAccepted)
    assert accepted.id == first.seq, "a place without id gets its seq as id"
    buy = results[-1]
    assert buy.ts == 1_000, "ts never goes backwards"
    trades = [e for e in buy.events if isinstance(e, Trade)]
    assert len(trades) == 20
    # Everything acknowledged is on disk: a fresh recovery sees it all.
    rec = recover(tmp_path, repair=False)
    assert rec.core.seq == 26
    assert not rec.core.orders


def test_a_command_failing_the_schema_is_refused_and_not_journaled(tmp_path: Path) -> None:
    async def go() -> None:
        runner = CoreRunner(JournaledCore(tmp_path), clock_ms=lambda: 1)
        runner.start()
        try:
            await runner.submit(SETUP[0])
            with pytest.raises(ValueError, match="amount"):
                await runner.submit(Deposit(user=1, asset="BTC", amount=-5))
            applied = await runner.submit(SETUP[1])
            assert applied.seq == 2
        finally:
            await runner.stop()

    asyncio.run(go())
    assert recover(tmp_path, repair=False).core.seq == 2


def test_submit_to_a_stopped_runner_fails_fast(tmp_path: Path) -> None:
    async def go() -> None:
        runner = CoreRunner(JournaledCore(tmp_path), clock_ms=lambda: 1)
        with pytest.raises(CoreUnavailable):
            await runner.submit(SETUP[0])
        runner.jcore.close()

    asyncio.run(go())


def test_amounts_beyond_64_bits_are_refused_and_the_runner_keeps_going(tmp_path: Path) -> None:
    async def go() -> None:
        runner = CoreRunner(JournaledCore(tmp_path), clock_ms=lambda: 1)
        runner.start()
        try:
            await runner.submit(SETUP[0])
            with pytest.raises(ValueError, match="invalid command"):
                await runner.submit(Deposit(user=1, asset="BTC", amount=2**64))
            applied = await runner.submit(Deposit(user=1, asset="BTC", amount=2**63 - 1))
            assert applied.events[0].__struct_config__.tag == "deposited"
            full = await runner.submit(Deposit(user=2, asset="BTC", amount=1))
            assert [getattr(e, "reason", None) for e in full.events] == ["amount_too_large"]
            assert runner.running
        finally:
            await runner.stop()

    asyncio.run(go())
    core = recover(tmp_path, repair=False).core
    assert core.seq == 3
    assert core.available(1, "BTC") == 2**63 - 1
