"""ProjectionProgress: polling, and reading at once when nudged (ADR 0041)."""

from __future__ import annotations

import asyncio

import pytest

from tradewind.adapters.sql.progress import ProjectionProgress


class Offsets:
    def __init__(self) -> None:
        self.seq = 0
        self.reads = 0

    async def __call__(self) -> dict[str, int]:
        self.reads += 1
        return dict.fromkeys(("ledger", "orders", "trades"), self.seq)


@pytest.mark.asyncio
async def test_listening_reads_once_per_nudge_not_every_poll() -> None:
    offsets = Offsets()
    progress = ProjectionProgress(offsets, poll_s=0.001, listen_poll_s=30.0)
    progress.listening = True
    waiter = asyncio.create_task(progress.wait_for(5))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    assert offsets.reads == 1  # no 1 ms polling while listening
    offsets.seq = 5
    progress.nudge()
    await asyncio.wait_for(waiter, 1.0)
    assert progress.applied_seq == 5
    await progress.stop()


@pytest.mark.asyncio
async def test_listening_still_polls_slowly_and_polls_fast_when_not() -> None:
    offsets = Offsets()
    progress = ProjectionProgress(offsets, poll_s=0.001, listen_poll_s=0.02)
    progress.listening = True
    waiter = asyncio.create_task(progress.wait_for(3))
    await asyncio.sleep(0.01)
    offsets.seq = 3  # a lost notification: found by the slow poll
    await asyncio.wait_for(waiter, 1.0)
    progress.listening = False
    offsets.reads = 0
    waiter = asyncio.create_task(progress.wait_for(4))
    await asyncio.sleep(0.05)
    assert offsets.reads > 5
    offsets.seq = 4
    await asyncio.wait_for(waiter, 1.0)
    await progress.stop()


@pytest.mark.asyncio
async def test_a_payload_with_offsets_is_taken_without_a_read() -> None:
    offsets = Offsets()
    progress = ProjectionProgress(offsets, poll_s=0.001, listen_poll_s=30.0)
    progress.listening = True
    progress.nudge('{"ledger": 2, "orders": 2, "trades": 2, "margin": 1}')
    assert progress.applied_seq == 2
    await asyncio.wait_for(progress.wait_for(2), 1.0)
    waiter = asyncio.create_task(progress.wait_for(3))
    await asyncio.sleep(0.05)
    assert offsets.reads == 0  # fed by payloads: no read before waiting
    progress.nudge('{"ledger": 3, "orders": 3, "trades": 2}')  # trades behind: not yet
    await asyncio.sleep(0.01)
    assert not waiter.done()
    progress.nudge('{"ledger": 3, "orders": 3, "trades": 3}')
    await asyncio.wait_for(waiter, 1.0)
    assert offsets.reads == 0
    progress.nudge("not json")  # unreadable: read the offsets instead
    progress.listening = False  # not listening: commits may go unannounced
    offsets.seq = 4
    await asyncio.wait_for(progress.wait_for(4), 1.0)
    assert offsets.reads >= 1
    await progress.stop()
