"""Commands the bus decoded skip the journal's schema re-check, and recover the same."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from tradewind.core.codec import decode_command, encode_command
from tradewind.core.commands import AddAsset, AddSymbol, AnyCommand, Deposit, Place
from tradewind.core.events import Trade
from tradewind.journal.recovery import JournaledCore, recover
from tradewind.runtime.sequencer import CoreRunner

SETUP: list[AnyCommand] = [
    AddAsset(asset="BTC", decimals=8),
    AddAsset(asset="USDT", decimals=6),
    AddSymbol(symbol="BTC-USDT", base="BTC", quote="USDT", tick_size=10000, lot_size=10000),
    Deposit(user=1, asset="USDT", amount=10**9),
    Deposit(user=2, asset="BTC", amount=10**8),
]


def decoded(cmd: AnyCommand) -> AnyCommand:
    """As the bus server hands a command over: decoded from its message body."""
    return decode_command(encode_command(cmd))


def test_decoded_and_built_commands_share_group_commits_and_recover(tmp_path: Path) -> None:
    async def go() -> tuple[int, str]:
        jcore = JournaledCore(tmp_path)
        runner = CoreRunner(jcore, clock_ms=lambda: 1_000)
        runner.start()
        try:
            for cmd in SETUP:
                await runner.submit(cmd)
            sells = [
                runner.submit(
                    decoded(
                        Place(id=100 + i, user=2, symbol="BTC-USDT", side="sell", price=100, qty=1)
                    ),
                    validated=True,
                )
                for i in range(10)
            ]
            # a bus place without an id: decoded with one, then zeroed for the runner
            auto = msgspec.structs.replace(
                decoded(Place(id=1, user=1, symbol="BTC-USDT", side="buy", price=100, qty=10)),
                id=0,
            )
            buys = [runner.submit(auto, validated=True)]
            applied = await asyncio.gather(*sells, *buys)
            assert [a.seq for a in applied] == list(range(6, 17))
            assert [a.command.id for a in applied[:-1]] == list(range(100, 110))
            assert applied[-1].command.id == 16  # the runner's id
            assert sum(type(e) is Trade for e in applied[-1].events) == 10
            return jcore.last_seq, jcore.core.state_hash()
        finally:
            await runner.stop()

    last, live = asyncio.run(go())
    rec = recover(tmp_path, repair=False)
    assert (rec.last_seq, rec.core.state_hash()) == (last, live)
