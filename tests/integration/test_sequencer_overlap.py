"""The runner applies the next batch while the previous batch's fsync runs (in the
journal's helper process, ADR 0048), and still answers (and publishes) a command only
once a commit covering it is durable."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tradewind.core.commands import AddAsset, Deposit
from tradewind.core.events import Event
from tradewind.journal.journal import JournalWriteError
from tradewind.journal.recovery import JournaledCore, recover
from tradewind.runtime.sequencer import Applied, CoreRunner, CoreUnavailable
from tradewind.runtime.standby import FencedJournaledCore, LeaseLost


class HeldCommits(JournaledCore):
    """The helper process's fsyncs are held (the helper is stopped with SIGSTOP) until
    the test releases them; ``started`` is set when a group's commit has started."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.started = threading.Event()
        self.fail_next = False

    def hold(self) -> None:
        pid = self.start_syncer()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        self.pid = pid

    def release(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def start_commit(self) -> int:
        seq = super().start_commit()
        self.started.set()
        return seq

    def commit_done(self) -> bool:
        done = super().commit_done()
        if done and self.fail_next:  # as if the helper's fsync had failed
            self._fail(OSError(5, "I/O error"))
            raise JournalWriteError("journal write failed: I/O error")
        return done


def deposits(n: int, amount: int = 10) -> list[Deposit]:
    return [Deposit(user=u, asset="USDT", amount=amount) for u in range(1, n + 1)]


async def wait_for(flag: threading.Event) -> None:
    while not flag.is_set():
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def a_held_group(
    tmp_path: Path, n: int
) -> AsyncIterator[tuple[HeldCommits, CoreRunner, list[asyncio.Future[Applied]]]]:
    """A runner whose first command committed on the loop and whose next ``n`` deposits
    are written and held in the stopped helper; stopped (and the journal released)
    afterwards, whatever the runner's fate."""
    jcore = HeldCommits(tmp_path)
    runner = CoreRunner(jcore, clock_ms=lambda: 1)
    runner.start()
    try:
        await runner.submit(AddAsset(asset="USDT", decimals=6))
        jcore.hold()
        first = [runner.submit_future(c) for c in deposits(n)]
        await wait_for(jcore.started)
        yield jcore, runner, first
    finally:
        with contextlib.suppress(JournalWriteError):  # a runner's own failure
            await runner.stop()
        jcore.abandon()


def test_next_batch_applies_during_the_commit_and_answers_wait_for_theirs(
    tmp_path: Path,
) -> None:
    published: list[tuple[int, int]] = []
    groups: list[list[int]] = [[]]

    async def go() -> None:
        jcore = HeldCommits(tmp_path)

        def publish(seq: int, ts: int, events: list[Event]) -> None:
            published.append((seq, jcore.durable_seq))
            groups[-1].append(seq)

        runner = CoreRunner(
            jcore, clock_ms=lambda: 1, publish=publish, group_published=lambda: groups.append([])
        )
        runner.start()
        try:
            await runner.submit(AddAsset(asset="USDT", decimals=6))  # alone: on the loop
            jcore.hold()
            first = [runner.submit_future(c) for c in deposits(5)]
            await wait_for(jcore.started)  # seqs 2-6 are being committed
            jcore.started.clear()
            second = [runner.submit_future(c) for c in deposits(3, amount=20)]
            for _ in range(100):  # the runner applies them meanwhile
                await asyncio.sleep(0.005)
                if jcore.last_seq == 9:
                    break
            assert (jcore.last_seq, jcore.durable_seq) == (9, 1)
            await asyncio.sleep(0.05)
            assert not any(f.done() for f in first + second)
            jcore.release()
            assert [a.seq for a in await asyncio.gather(*first, *second)] == list(range(2, 10))
        finally:
            await runner.stop()

    asyncio.run(go())
    assert [seq for seq, _ in published] == list(range(1, 10))
    assert all(durable >= seq for seq, durable in published)
    # group_published follows the last command of each group commit
    assert groups == [[1], [2, 3, 4, 5, 6], [7, 8, 9], []]
    assert recover(tmp_path, repair=False).last_seq == 9


def test_a_failed_overlapped_commit_fails_its_batch_and_the_next(tmp_path: Path) -> None:
    async def go() -> None:
        async with a_held_group(tmp_path, 4) as (jcore, runner, first):
            second = [runner.submit_future(c) for c in deposits(2)]
            await asyncio.sleep(0.05)
            jcore.fail_next = True
            jcore.release()
            for fut in first + second:
                with pytest.raises(CoreUnavailable, match="journal failed"):
                    await fut
            assert not runner.running

    asyncio.run(go())
    # Neither group was acknowledged; the first was written before its fsync "failed",
    # the second never was.
    assert recover(tmp_path, repair=False).last_seq == 5


def test_the_lease_guard_covers_overlapped_commits(tmp_path: Path) -> None:
    held = [True]

    def guard() -> None:
        if not held[0]:
            raise LeaseLost("lease lapsed")

    jc = FencedJournaledCore(tmp_path, guard=guard, snapshot_every=10**9)
    jc.submit(AddAsset(asset="USDT", decimals=6))
    assert jc.start_commit() == 1
    assert jc.wait_commit() == 1
    jc.submit(deposits(1)[0])
    held[0] = False
    with pytest.raises(LeaseLost):
        jc.start_commit()
    assert jc.durable_seq == 1
    jc.abandon()
    assert recover(tmp_path).last_seq == 1


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_helper_killed_mid_commit_leaves_the_runner_answering(tmp_path: Path, loop: str) -> None:
    """The helper dies with a group in its hands: the runner fsyncs that group itself,
    answers it, and the next group gets a new helper (on the server's uvloop too)."""

    async def go() -> None:
        async with a_held_group(tmp_path, 4) as (jcore, runner, first):
            await asyncio.sleep(0.05)
            assert not any(f.done() for f in first)
            os.kill(jcore.pid, signal.SIGKILL)
            assert [a.seq for a in await asyncio.gather(*first)] == [2, 3, 4, 5]
            assert jcore.durable_seq == 5
            second = [runner.submit_future(c) for c in deposits(3, amount=20)]
            assert [a.seq for a in await asyncio.gather(*second)] == [6, 7, 8]
            assert jcore.start_syncer() not in (None, jcore.pid)

    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        uvloop.run(go())
    else:
        asyncio.run(go())
    assert recover(tmp_path, repair=False).last_seq == 8
