"""The core runner: the one task that writes to the core.

Invariant: a submitter hears about its command (and events reach any subscriber) only
after a group commit covering that command has returned, so everything acknowledged
survives a kill -9. Commands are stamped here, in arrival order: ``seq`` by the
journaled core, ``ts`` from the clock, never going backwards; a ``place`` without an
order id gets its ``seq`` as id, which is unique and survives recovery.

A group is written on the loop (page cache) and fsynced by the journal's helper process
(ADR 0048), so the event loop serves other requests meanwhile, and the runner applies
the next batch while the previous one's fsync runs: a batch is answered once the helper
reported its group durable, never earlier. A batch of one command with nothing else
queued is committed on the loop itself (write + fsync), which saves the round trip to the
helper for a lone request. Snapshots are taken with no batch in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from tradewind.core.commands import AnyCommand, Place
from tradewind.core.events import Event
from tradewind.journal.recovery import JournaledCore

Publisher = Callable[[int, int, list[Event]], None]


@dataclass(frozen=True, slots=True)
class Applied:
    """What the core did with one command."""

    seq: int
    ts: int
    command: AnyCommand
    events: list[Event]


OVERLAP_CHUNK = 64
"""Commands applied between two looks at whether the in-flight commit has returned: a
finished group waits at most this many applies for its answers."""


class _Inflight:
    """The previous group's commit, started with ``start_commit``: polled between chunks
    of the next batch, and awaitable (a reader on the helper's answer pipe)."""

    def __init__(self, jcore: JournaledCore) -> None:
        self.jcore = jcore
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[None] = self.loop.create_future()
        self.fd: int | None = None
        if not self.done():
            # Not durable yet, so a live helper holds the group (without one, the writer
            # fsynced it already): wake when the helper answers.
            self.fd = jcore.commit_fileno()
            assert self.fd is not None
            self.loop.add_reader(self.fd, self.done)

    def done(self) -> bool:
        """Whether the group is durable (or its commit failed: awaiting raises then)."""
        fut = self.future
        if not fut.done():
            try:
                if not self.jcore.commit_done():
                    return False
                fut.set_result(None)
            except BaseException as e:
                fut.set_exception(e)
            if self.fd is not None:
                self.loop.remove_reader(self.fd)
        return True

    def cancel(self) -> None:
        if self.fd is not None and not self.future.done():
            self.loop.remove_reader(self.fd)
        self.future.cancel()


class CoreUnavailable(RuntimeError):
    """The runner is stopped or its journal failed: the caller should answer 503."""


class CoreRunner:
    """Drains a queue of commands in batches: stamp, journal, apply, fsync, answer."""

    def __init__(
        self,
        jcore: JournaledCore,
        clock_ms: Callable[[], int],
        publish: Publisher | None = None,
        max_batch: int = 1024,
        group_published: Callable[[], None] | None = None,
    ) -> None:
        self.jcore = jcore
        self.clock_ms = clock_ms
        self.publish = publish
        # called once the commands of a group commit are all published, so consumers
        # can send per group rather than per command (the WebSocket hub's book diffs)
        self.group_published = group_published
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[AnyCommand, asyncio.Future[Applied], bool]] = (
            asyncio.Queue()
        )
        self._task: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def running(self) -> bool:
        """True while commands are being accepted (started, not stopped, not failed)."""
        task = self._task
        return task is not None and not task.done() and self._failed is None

    def start(self) -> None:
        self.jcore.start_syncer()  # now, not on the first busy group
        self._task = asyncio.get_running_loop().create_task(self._run(), name="core-runner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self.jcore.close)

    def submit_future(self, cmd: AnyCommand, *, validated: bool = False) -> asyncio.Future[Applied]:
        """Queue a command; the future resolves once it is durable and applied. A plain
        future, no task: cancelling it (a caller that gave up) does not withdraw the
        command, whose outcome is then simply not reported.

        ``validated=True`` says the command came out of a msgspec decoder (a bus message):
        its schema was checked there and the journal skips the check (an encode and a
        decode, about 8,500 instructions). A struct built in Python must not claim it:
        its fields were never checked. (A decoded ``Place`` whose id was then set to 0 for
        the runner to assign still counts: the stamp gives it a valid id.)"""
        if self._failed is not None or self._task is None:
            raise CoreUnavailable("the trading core is not running")
        fut: asyncio.Future[Applied] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((cmd, fut, validated))
        return fut

    async def submit(self, cmd: AnyCommand, *, validated: bool = False) -> Applied:
        """Queue a command and wait until it is durable and applied."""
        return await self.submit_future(cmd, validated=validated)

    async def _run(self) -> None:
        queue = self._queue
        jcore = self.jcore
        # The previous group: its commit (fsync in the helper process), and the answers
        # that wait for it. The next group is applied meanwhile.
        inflight: _Inflight | None = None
        waiting: list[tuple[asyncio.Future[Applied], Applied]] = []
        batch: list[tuple[AnyCommand, asyncio.Future[Applied], bool]] = []
        done: list[tuple[asyncio.Future[Applied], Applied]] = []
        getter: asyncio.Future[tuple[AnyCommand, asyncio.Future[Applied], bool]] | None = None
        try:
            while True:
                if inflight is None:
                    batch = [await queue.get()]
                elif queue.empty():
                    # Whichever comes first: a command to apply during the commit, or
                    # the commit (whose answers must not wait for the next command).
                    getter = asyncio.ensure_future(queue.get())
                    await asyncio.wait(
                        (inflight.future, getter), return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter.done():
                        batch = [getter.result()]
                    else:
                        getter.cancel()
                        batch = []
                    getter = None
                else:
                    batch = []
                while len(batch) < self.max_batch and not queue.empty():
                    batch.append(queue.get_nowait())
                done = []
                for start in range(0, len(batch), OVERLAP_CHUNK):
                    done += self._apply(batch[start : start + OVERLAP_CHUNK])
                    if inflight is not None and inflight.done():
                        # The previous group is durable: answer it now rather than after
                        # the rest of this batch (a chunk's apply is all it waited).
                        await inflight.future
                        inflight = None
                        self._answer(waiting)
                        waiting = []
                if inflight is not None:
                    await inflight.future  # the previous group is durable: answer it
                    inflight = None
                    self._answer(waiting)
                    waiting = []
                if not done:
                    continue
                if jcore.snapshot_due:
                    # Commit, then snapshot, with nothing applied meanwhile.
                    await asyncio.to_thread(jcore.flush)
                    self._answer(done)
                elif len(batch) == 1 and queue.empty():
                    jcore.flush()  # alone: no round trip to the helper for one fsync
                    self._answer(done)
                else:
                    jcore.start_commit()
                    inflight = _Inflight(jcore)
                    waiting = done
                done = []
        except BaseException as e:
            # The core may be ahead of the disk now: nothing more can be acknowledged.
            if getter is not None:
                getter.cancel()
            if inflight is not None:
                inflight.cancel()
            self._failed = e
            futs = [f for _, f, _ in batch] + [f for f, _ in done] + [f for f, _ in waiting]
            for cmd_fut in futs:
                if not cmd_fut.done():
                    cmd_fut.set_exception(CoreUnavailable(f"journal failed: {e}"))
            raise

    def _apply(
        self, batch: list[tuple[AnyCommand, asyncio.Future[Applied], bool]]
    ) -> list[tuple[asyncio.Future[Applied], Applied]]:
        """Stamps and submits (journal buffer + apply) each command of the batch."""
        jcore = self.jcore
        done: list[tuple[asyncio.Future[Applied], Applied]] = []
        for cmd, fut, validated in batch:
            seq = jcore.last_seq + 1
            ts = max(self.clock_ms(), jcore.core.ts)
            if type(cmd) is Place and cmd.id == 0:
                cmd = msgspec.structs.replace(cmd, seq=seq, ts=ts, id=seq)
            else:
                cmd = msgspec.structs.replace(cmd, seq=seq, ts=ts)
            try:
                events = jcore.submit(cmd, validated=validated)
            except ValueError as e:  # fails the schema: never journaled
                if not fut.done():  # the submitter may have given up waiting
                    fut.set_exception(e)
                continue
            done.append((fut, Applied(seq, ts, cmd, events)))
        return done

    def _answer(self, done: list[tuple[asyncio.Future[Applied], Applied]]) -> None:
        """Publishes and answers commands whose group commit returned, in seq order."""
        for fut, applied in done:
            if self.publish is not None:
                self.publish(applied.seq, applied.ts, applied.events)
            if not fut.done():
                fut.set_result(applied)
        if done and self.group_published is not None:
            self.group_published()
