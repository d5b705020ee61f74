"""Feeding core events to the projectors, live and from the journal.

Invariants:
- every projector gets every batch in seq order, each projector in its own transaction
  with its own offset (:mod:`tradewind.services.projectors.base`); a failing projector
  does not hold back the others, and the first failure is raised after all were tried;
- re-feeding batches a projector already applied is a no-op, so feeding is safe to
  repeat after any crash or error; a hole is a :class:`SeqGap`, never skipped;
- :func:`journal_batches` re-derives a command's events by replaying the journal
  through a fresh :class:`~tradewind.core.engine.Core` (from the newest snapshot at or
  before the requested seq): the core is deterministic, so these are the very events
  the live core published;
- in background mode (:meth:`ProjectorRunner.publish` as the core runner's publisher),
  a batch is retried until it is applied; memory holds what is not applied yet, and the
  journal (``journal_dir``) is the source of truth after a restart or a gap;
- in background mode, batches are gathered for up to ``linger_s`` before a chunk is
  written (fewer, larger transactions: a transaction's fixed cost, a commit with its
  fsync and a thread hop per statement, dominated when chunks held one command), except
  while someone waits in :meth:`wait_for` (a read-your-writes read): then at once;
- with a ``writer`` (:class:`~tradewind.services.projectors.writer_thread.WriterThread`),
  the projectors' reads and writes run on that thread, one chunk at a time, and the
  offsets they reach are recorded (and waiters woken) back on the caller's loop; the
  projectors and their store must then be used through this runner only;
- with a ``transaction`` (e.g. :meth:`~tradewind.adapters.sql.engine.Database.one_transaction`,
  distributed mode), a chunk is first applied by every projector in that one
  transaction (one ``BEGIN``/``COMMIT`` for all, not one each); if any projector fails
  there, nothing of it is committed and the chunk is applied again one transaction per
  projector, so a failing projector still does not hold back the others. Each offset
  still commits with its rows. Only for projectors whose caches are tagged with the
  offset they reflect (:mod:`~tradewind.services.projectors.base`): a lazy margin
  offset, advanced in memory, would outlive a rolled-back shared transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from itertools import islice
from pathlib import Path

import msgspec
import structlog

from tradewind.core.codec import decode_command
from tradewind.core.engine import Core
from tradewind.core.events import Event
from tradewind.journal.journal import JOURNAL_FILE, JournalSeqError, read_journal
from tradewind.journal.snapshot import SnapshotError, list_snapshots, read_snapshot
from tradewind.services.projectors.base import Projector, SeqGap
from tradewind.services.projectors.ports import Batch
from tradewind.services.projectors.writer_thread import WriterThread

log = structlog.get_logger(__name__)

DEFAULT_MAX_CHUNK = 1000
"""Batches per transaction (bounds a transaction's size and the ``IN`` lists it uses)."""
DEFAULT_LINGER_S = 0.05
"""How long background feeding gathers batches before writing, when nobody waits."""


def journal_batches(data_dir: Path, *, after: int = 0, until: int | None = None) -> Iterator[Batch]:
    """The batches of commands ``after + 1 .. until`` (or to the journal's end), derived
    by replaying ``data_dir``'s journal through a core restored from the newest valid
    snapshot whose seq is at most ``after`` (or a fresh core if there is none).

    Reads only: safe while a live writer appends (a torn tail ends the iteration). Raises
    :class:`~tradewind.journal.journal.JournalSeqError` if the journal does not reach
    back to the chosen snapshot (or to seq 1).
    """
    return _replay(_restored(data_dir, after), data_dir, after, until)


def core_at(data_dir: Path, seq: int) -> Core:
    """The core as it was right after command ``seq`` (read only, like
    :func:`journal_batches`), for comparing it with a projection at that seq. Raises
    :class:`~tradewind.journal.journal.JournalSeqError` if the journal ends before."""
    core = _restored(data_dir, seq)
    for _ in _replay(core, data_dir, seq, seq):
        pass
    if core.seq != seq:
        raise JournalSeqError(
            data_dir / JOURNAL_FILE, 0, f"the journal ends at seq {core.seq}, before seq {seq}"
        )
    return core


def _restored(data_dir: Path, at_most: int) -> Core:
    for seq, path in list_snapshots(data_dir):
        if seq > at_most:
            continue
        try:
            return Core.restore(read_snapshot(path).state)
        except (SnapshotError, OSError, ValueError, TypeError, KeyError, msgspec.DecodeError) as e:
            log.warning("snapshot skipped for projector replay", path=str(path), error=str(e))
    return Core()


def _replay(core: Core, data_dir: Path, after: int, until: int | None) -> Iterator[Batch]:
    journal = data_dir / JOURNAL_FILE
    expected = core.seq + 1
    for offset, seq, payload in read_journal(journal):
        if seq < expected:
            continue
        if seq != expected:
            raise JournalSeqError(
                journal, offset, f"journal resumes at seq {seq}, replay needs seq {expected}"
            )
        if until is not None and seq > until:
            return
        cmd = decode_command(payload)
        events = core.apply(cmd)
        expected += 1
        if seq > after:
            yield Batch(seq, cmd.ts, events)


def _take(batches: Iterator[Batch], n: int) -> list[Batch]:
    return list(islice(batches, n))


class ProjectorRunner:
    """Feeds batches ``(seq, ts, events)`` to several projectors.

    Direct use: ``await apply_batch(seq, ts, events)`` / ``await apply_batches(batches)``.
    Background use: ``start()``, then pass :meth:`publish` to the core runner as its
    publisher; :meth:`wait_for` waits until every projector applied a seq; ``stop()``.
    Either way, first :meth:`catch_up` from the journal.
    """

    def __init__(
        self,
        projectors: Sequence[Projector],
        *,
        journal_dir: Path | None = None,
        max_chunk: int = DEFAULT_MAX_CHUNK,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 10.0,
        linger_s: float = DEFAULT_LINGER_S,
        writer: WriterThread | None = None,
        transaction: Callable[[], AbstractAsyncContextManager[object]] | None = None,
    ) -> None:
        names = [p.name for p in projectors]
        if len(set(names)) != len(names):
            raise ValueError(f"projector names must be unique: {names}")
        if max_chunk < 1:
            raise ValueError("max_chunk must be at least 1")
        self.projectors = tuple(projectors)
        self.journal_dir = journal_dir
        self.max_chunk = max_chunk
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.linger_s = linger_s
        self.writer = writer
        self.transaction = transaction
        self.shared_failures = 0
        """Chunks whose shared transaction failed and were applied one by one."""
        self._waiters = 0
        self._wake = asyncio.Event()
        self._applied: dict[str, int] = {}
        self._queue: asyncio.Queue[Batch] = asyncio.Queue()
        self._published = 0
        self._task: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None
        self._progress = asyncio.Event()

    # -- direct feeding ---------------------------------------------------------------

    async def offsets(self) -> dict[str, int]:
        """Every projector's stored offset (read from its store)."""
        if self.writer is None:
            found = await self._read_offsets()
        else:
            found = await self.writer.run(self._read_offsets())
        self._applied.update(found)
        self._notify()
        return dict(self._applied)

    @property
    def applied_seq(self) -> int:
        """The lowest offset among the projectors, as far as this runner has seen."""
        if len(self._applied) < len(self.projectors):
            return 0
        return min(self._applied.values())

    async def apply_batch(self, seq: int, ts: int, events: Sequence[Event]) -> None:
        """Apply one command's events to every projector (each in its own transaction)."""
        await self.apply_batches((Batch(seq, ts, events),))

    async def apply_batches(self, batches: Sequence[Batch]) -> None:
        """Apply consecutive batches to every projector, each in one transaction.

        Batches at or below a projector's offset are skipped by it. Raises the first
        failure (:class:`SeqGap` if a projector is behind the first batch) after every
        projector was tried.
        """
        if not batches:
            return
        if self.writer is None:
            reached, first = await self._apply_all(batches)
        else:
            reached, first = await self.writer.run(self._apply_all(batches))
        self._applied.update(reached)
        self._notify()
        if first is not None:
            raise first

    async def _read_offsets(self) -> dict[str, int]:
        return {p.name: await p.offset() for p in self.projectors}

    async def _apply_all(
        self, batches: Sequence[Batch]
    ) -> tuple[dict[str, int], BaseException | None]:
        """Each projector's new offset and the first failure (on the writer if any)."""
        if self.transaction is not None:
            shared: dict[str, int] = {}
            try:
                async with self.transaction():
                    for p in self.projectors:
                        shared[p.name] = await p.apply(batches)
            except Exception as e:
                self.shared_failures += 1
                log.warning("shared projector transaction failed, one by one", error=repr(e))
            else:
                return shared, None
        reached: dict[str, int] = {}
        first: BaseException | None = None
        for p in self.projectors:
            try:
                reached[p.name] = await p.apply(batches)
            except Exception as e:
                log.warning("projector failed", projector=p.name, error=repr(e))
                first = first or e
        return reached, first

    async def catch_up(
        self, source: Path | Iterable[Batch] | None = None, *, until_seq: int | None = None
    ) -> int:
        """Feed every projector what it misses, up to ``until_seq`` (or the end).

        ``source`` is a data directory (its journal and snapshots; default
        ``journal_dir``) or batches in seq order. Returns the lowest offset afterwards.
        Journal replay runs in a worker thread, a chunk at a time.
        """
        if source is None:
            source = self.journal_dir
        if source is None:
            raise ValueError("catch_up needs a data directory or batches")
        low = min((await self.offsets()).values(), default=0)
        if until_seq is not None and until_seq <= low:
            return low
        if isinstance(source, Path):
            replay = journal_batches(source, after=low, until=until_seq)
            while chunk := await asyncio.to_thread(_take, replay, self.max_chunk):
                await self.apply_batches(chunk)
        else:
            chunk = []
            for batch in source:
                if until_seq is not None and batch.seq > until_seq:
                    break
                if batch.seq <= low:
                    continue
                chunk.append(batch)
                if len(chunk) >= self.max_chunk:
                    await self.apply_batches(chunk)
                    chunk = []
            await self.apply_batches(chunk)
        return self.applied_seq

    # -- background feeding -----------------------------------------------------------

    def publish(self, seq: int, ts: int, events: list[Event]) -> None:
        """Queue one command's events (never blocks: the core runner's publisher)."""
        if self._failed is not None:
            return  # stopped for good; a restart catches up from the journal
        self._published = seq
        self._queue.put_nowait(Batch(seq, ts, events))

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def failed(self) -> BaseException | None:
        """Why the background task stopped, if it did."""
        return self._failed

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="projectors")

    async def stop(self, *, timeout: float | None = 10.0) -> None:
        """Apply what is queued (waiting at most ``timeout`` seconds), then stop."""
        if self._task is None:
            return
        if self._failed is None and self._published:
            with contextlib.suppress(TimeoutError, Exception):
                await asyncio.wait_for(self.wait_for(self._published), timeout)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._task = None

    async def wait_for(self, seq: int) -> None:
        """Return once every projector has applied ``seq``; raise if the runner failed."""
        self._waiters += 1
        self._wake.set()  # cut a lingering chunk short
        try:
            while True:
                if self._failed is not None:
                    raise RuntimeError(f"projectors stopped: {self._failed!r}") from self._failed
                if self.applied_seq >= seq:
                    return
                await self._progress.wait()
        finally:
            self._waiters -= 1

    def _notify(self) -> None:
        progress, self._progress = self._progress, asyncio.Event()
        progress.set()

    async def _run(self) -> None:
        queue = self._queue
        try:
            while True:
                chunk = [await queue.get()]
                if self.linger_s > 0 and not self._waiters and queue.qsize() < self.max_chunk:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.linger_s)
                while len(chunk) < self.max_chunk and not queue.empty():
                    chunk.append(queue.get_nowait())
                await self._apply_until_done(chunk)
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            self._failed = e
            log.error("projectors stopped", error=repr(e))
            self._notify()
            raise

    async def _apply_until_done(self, chunk: list[Batch]) -> None:
        delay = self.retry_initial_s
        replay = False  # a projector is behind the chunk: replay the journal first
        replayed = False
        while True:
            try:
                if replay and self.journal_dir is not None:
                    await self.catch_up(self.journal_dir, until_seq=chunk[-1].seq)
                    replay, replayed = False, True
                await self.apply_batches(chunk)
                return
            except SeqGap as gap:
                if self.journal_dir is None or replayed:
                    raise  # the journal cannot fill the hole: nothing to retry
                log.warning("projector behind, replaying the journal", error=str(gap))
                replay = True
            except Exception as e:
                log.error("projector batch failed, retrying", error=repr(e), delay_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
