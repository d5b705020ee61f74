"""Background projection gathers batches into few transactions, but never keeps a
read-your-writes reader waiting for the gathering."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tradewind.services.projectors.ports import Batch
from tradewind.services.projectors.runner import ProjectorRunner


class CountingProjector:
    """Applies anything in seq order and records each transaction's batches."""

    name = "counting"

    def __init__(self) -> None:
        self.offset_seq = 0
        self.transactions: list[list[int]] = []

    async def offset(self) -> int:
        return self.offset_seq

    async def apply(self, batches: Sequence[Batch]) -> int:
        fresh = [b.seq for b in batches if b.seq > self.offset_seq]
        if fresh:
            self.transactions.append(fresh)
            self.offset_seq = fresh[-1]
        return self.offset_seq


def test_batches_published_close_together_share_one_transaction() -> None:
    async def go() -> None:
        projector = CountingProjector()
        runner = ProjectorRunner([projector], linger_s=0.2)
        await runner.offsets()
        runner.start()
        for seq in range(1, 6):
            runner.publish(seq, seq, [])
            await asyncio.sleep(0)  # the runner gets to run between publishes
        await runner.stop()
        assert projector.transactions == [[1, 2, 3, 4, 5]]

    asyncio.run(go())


def test_a_waiting_reader_cuts_the_gathering_short() -> None:
    async def go() -> None:
        projector = CountingProjector()
        runner = ProjectorRunner([projector], linger_s=60.0)
        await runner.offsets()
        runner.start()
        runner.publish(1, 1, [])
        await asyncio.sleep(0)
        # would take a minute if the runner kept gathering
        await asyncio.wait_for(runner.wait_for(1), 5.0)
        runner.publish(2, 2, [])
        await asyncio.wait_for(runner.wait_for(2), 5.0)  # a reader already waiting
        await runner.stop()
        assert [seq for tx in projector.transactions for seq in tx] == [1, 2]

    asyncio.run(go())
