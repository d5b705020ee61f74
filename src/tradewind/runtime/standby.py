"""Hot standby of the trading core: leadership by lease, fenced journal (ADR 0010).

Every ``tradewind core`` process first takes the core lease in Redis
(:class:`~tradewind.adapters.redis.lease.RedisLease`); while another core holds it, it
stands by, asking again every ``POLL_S``. The cores share one data directory on one
machine (the journal is the source of truth; nothing is replicated), so taking over is a
normal recovery: newest snapshot plus the journal after it.

Two fences keep a second writer out, each enough on its own for the journal:

1. the journal's ``flock`` (:mod:`tradewind.journal.journal`): the kernel lets only one
   process hold it and releases it when that process dies. A new leader waits for it
   before recovering, so it reads the journal only once the old leader can no longer
   append to it, and therefore sees every record the old leader made durable, hence
   everything it acknowledged;
2. the lease deadline: :class:`FencedJournaledCore` refuses to commit a group once the
   lease's local validity (:attr:`RedisLease.valid_until`) has passed. A leader that was
   paused (SIGSTOP, a long GC, a frozen VM) past its lease wakes up unable to write, its
   runner fails, its clients are told the commands were not applied (503), and it exits.

A leader whose lease is taken, or lapses before it could renew it (Redis unreachable for
longer than the lease), stops at once (:func:`fail_stop`: exit code ``EXIT_LEASE_LOST``)
rather than trying to wind down: whatever it had not committed is lost exactly as in a
kill, which the rest of the system already handles (the clients got 503/504, the
projector replays from the journal). Run a standby, or a supervisor that restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from redis.exceptions import RedisError

from tradewind.adapters.redis.lease import RedisLease
from tradewind.journal.journal import JOURNAL_FILE, JournalError, JournalLockedError, fsync_dir
from tradewind.journal.recovery import JournaledCore

if TYPE_CHECKING:
    from tradewind.runtime.config import Settings

log = structlog.get_logger(__name__)

FENCE_FILE = "core.fence"
"""In the data dir: the highest lease token a core of this data dir ever held."""
EXIT_LEASE_LOST = 3
POLL_S = 0.1
"""How often a standby asks for the lease (and probes the journal lock)."""


class LeaseLost(JournalError):
    """This process is no longer the leader: it must not write the journal."""


class FencedJournaledCore(JournaledCore):
    """A :class:`JournaledCore` that commits only while ``guard()`` passes (it raises
    :class:`LeaseLost` otherwise). The check comes before the write: a group refused here
    was never written, so its commands are answered "not applied"."""

    def __init__(self, data_dir: Path, *, guard: Callable[[], None], snapshot_every: int) -> None:
        self._guard = guard
        super().__init__(data_dir, snapshot_every=snapshot_every)

    def flush(self) -> int:
        self._guard()
        return super().flush()

    def start_commit(self) -> int:
        self._guard()
        return super().start_commit()


def lease_guard(lease: RedisLease) -> Callable[[], None]:
    def guard() -> None:
        if not lease.held:
            raise LeaseLost(
                f"the core lease (token {lease.token}) lapsed before it was renewed: "
                "another core may be the leader now"
            )

    return guard


def read_fence(data_dir: Path) -> int:
    try:
        return int((data_dir / FENCE_FILE).read_text().strip() or "0")
    except (FileNotFoundError, ValueError):
        return 0


def write_fence(data_dir: Path, token: int) -> None:
    """Remember ``token`` in the data dir (atomic, durable), so that tokens keep growing
    even if Redis forgets its counter."""
    tmp = data_dir / f".{FENCE_FILE}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{token}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, data_dir / FENCE_FILE)
    fsync_dir(data_dir)


def journal_locked(data_dir: Path) -> bool:
    """Whether another process holds the journal's lock now."""
    try:
        fd = os.open(data_dir / JOURNAL_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        raise
    finally:
        os.close(fd)  # releases our probe lock, if we got it
    return False


async def acquire(lease: RedisLease, data_dir: Path, *, poll_s: float = POLL_S) -> int:
    """Wait (standing by) until this process holds the lease; returns its token."""
    announced: int | None = None
    while True:
        try:
            other = await lease.try_acquire(floor=read_fence(data_dir))
        except (RedisError, OSError) as e:
            log.warning("core lease: Redis unreachable; retrying", error=repr(e))
            await asyncio.sleep(max(poll_s, 0.5))
            continue
        if other is None:
            await asyncio.to_thread(write_fence, data_dir, lease.token)
            log.info("core lease acquired", token=lease.token, holder=lease.holder)
            return lease.token
        if announced != other.token:
            announced = other.token
            log.info("standing by", leader=other.holder, leader_token=other.token)
        await asyncio.sleep(poll_s)


async def wait_for_journal(lease: RedisLease, data_dir: Path, *, poll_s: float = POLL_S) -> None:
    """Wait until no process holds the journal's lock (an old leader that lost the lease
    but still runs, e.g. paused, holds it until it exits). Raises :class:`LeaseLost` if
    our own lease lapses meanwhile."""
    waited = False
    while await asyncio.to_thread(journal_locked, data_dir):
        if not lease.held:
            raise LeaseLost("the core lease lapsed while waiting for the journal")
        if not waited:
            waited = True
            log.warning("waiting for the previous core to release the journal")
        await asyncio.sleep(poll_s)
    if waited:
        log.info("journal released by the previous core")


async def open_fenced_core(
    lease: RedisLease, data_dir: Path, *, snapshot_every: int
) -> FencedJournaledCore:
    """Recover the shared data dir as the leader (waiting for the journal lock first)."""
    while True:
        await wait_for_journal(lease, data_dir)
        try:
            return await asyncio.to_thread(
                FencedJournaledCore,
                data_dir,
                guard=lease_guard(lease),
                snapshot_every=snapshot_every,
            )
        except JournalLockedError:
            await asyncio.sleep(POLL_S)  # taken between the probe and the open: wait again


async def hold(lease: RedisLease, on_lost: Callable[[str], None]) -> None:
    """Renew the lease every third of its time until cancelled; ``on_lost(reason)`` (on
    the caller's event loop) when it is taken by another core or lapses before a renewal
    succeeded.

    The renewals run on a thread of their own with a synchronous Redis client, not on the
    caller's event loop: work that holds that loop for a while (a migration run through
    SQLAlchemy's greenlet bridge, a replay, imports) would otherwise delay them past the
    lease on a loaded machine, and a healthy leader would lose its lease to its standby
    (and stop). A paused process (SIGSTOP, a frozen VM) pauses this thread too, so the
    fence on :attr:`RedisLease.valid_until` still holds."""
    loop = asyncio.get_running_loop()
    lost: asyncio.Future[str] = loop.create_future()
    stopping = threading.Event()

    def report(reason: str) -> None:
        def settle() -> None:
            if not lost.done():
                lost.set_result(reason)

        loop.call_soon_threadsafe(settle)

    renewer = threading.Thread(
        target=_renew_until_stopped,
        args=(lease, stopping, report),
        name="lease-renewer",
        daemon=True,
    )
    renewer.start()
    try:
        reason = await lost
    finally:
        stopping.set()
        # joined, so that no renewal is in flight when the caller releases the lease
        await asyncio.shield(asyncio.to_thread(renewer.join))
    on_lost(reason)


def _renew_until_stopped(
    lease: RedisLease, stopping: threading.Event, report: Callable[[str], None]
) -> None:
    period = lease.ttl_ms / 3000
    client = lease.blocking_client()
    try:
        # renew at once, then every period: the time between acquiring the lease and
        # calling hold (start-up work of the process) may already have used most of it
        while True:
            while not stopping.is_set():
                if not lease.held:
                    report("the core lease lapsed before it could be renewed")
                    return
                try:
                    renewed = lease.renew_blocking(client)
                except (RedisError, OSError) as e:
                    log.warning("core lease not renewed yet; retrying", error=repr(e))
                    stopping.wait(min(0.1, period))
                    continue
                if not renewed:
                    report("the core lease is held by another core")
                    return
                break
            if stopping.wait(period):
                return
    finally:
        client.close()


def fail_stop(reason: str) -> None:
    """Leave at once, without committing or publishing anything more: the kernel releases
    the journal lock, and the new leader recovers what was durable."""
    log.critical("core lease lost: stopping at once", reason=reason)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(EXIT_LEASE_LOST)


# -- the processes ------------------------------------------------------------------------


async def serve_standing_by(
    start: Callable[[], Coroutine[Any, Any, None]],
    stop: Callable[[], Awaitable[None]],
    waiting: str,
    running: Callable[[], str],
) -> None:
    """Print ``waiting``, run ``start()`` (which stands by for a lease first), print
    ``running()``, and wait for SIGINT/SIGTERM; a signal while standing by ends the wait
    at once. ``stop()`` in every case."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    print(waiting, flush=True)
    starting = asyncio.create_task(start(), name="process-start")
    stopping = asyncio.create_task(done.wait(), name="process-signal")
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # raises what start-up raised
            print(running(), flush=True)
            await stopping
    finally:
        for task in (starting, stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await stop()


async def _serve_core(settings: Settings) -> None:
    from tradewind.runtime.bootstrap import CoreProcess

    core = CoreProcess(settings)
    await serve_standing_by(
        core.start,
        core.stop,
        f"Tradewind core waiting for the lease (data dir {core.data_dir}, "
        f"holder {core.lease.holder})",
        lambda: (
            f"Tradewind core running (data dir {core.data_dir}, queues "
            f"{core.names.prefix}.*, lease token {core.lease.token})"
        ),
    )


def run_core(settings: Settings) -> int:
    """``tradewind core``: stand by until this process holds the lease, then run the core
    until interrupted (or until the lease is lost: exit code ``EXIT_LEASE_LOST``)."""
    from tradewind.runtime.server import _run

    start = time.monotonic()
    code = _run(lambda: _serve_core(settings))
    log.info("core process ended", seconds=round(time.monotonic() - start, 3), code=code)
    return code


async def _serve_projector(settings: Settings) -> None:
    from tradewind.runtime.bootstrap import ProjectorProcess

    projector = ProjectorProcess(settings)
    await serve_standing_by(
        projector.start,
        projector.stop,
        "Tradewind projector waiting for its lease"
        if projector.lease is not None
        else "Tradewind projector starting",
        lambda: f"Tradewind projector running (queue {projector.consumer.queue_name})",
    )


def run_projector(settings: Settings) -> int:
    """``tradewind projector``: with Redis, stand by until this process holds the
    projector lease; then follow the event stream until interrupted."""
    from tradewind.runtime.server import _run

    return _run(lambda: _serve_projector(settings))
