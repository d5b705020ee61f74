"""How far the projectors are, read from their offsets in SQL (distributed mode).

An API replica does not run the projectors, so its read-your-writes watermark is the
lowest stored offset of the projectors it reads from, polled while someone waits.

Invariants:
- :attr:`ProjectionProgress.applied_seq` never goes back and is never ahead of what a
  read in a new transaction will see (it is read from committed offsets);
- one poller per process, only while there are waiters, at most every ``poll_s``; a
  waiter never waits longer than its own timeout (the caller's ``wait_for`` deadline);
- while :attr:`ProjectionProgress.listening` (PostgreSQL: the projector's transaction
  sends ``NOTIFY`` :data:`PROJECTED_CHANNEL`, delivered at its commit, ADR 0041), the
  poller reads the offsets when :meth:`ProjectionProgress.nudge` says they moved, and
  otherwise only every ``listen_poll_s`` (a lost notification costs that much delay).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping

log = logging.getLogger(__name__)

PROJECTED_CHANNEL = "tradewind_projected"
"""The PostgreSQL ``NOTIFY`` channel of projector commits (channels are per database)."""


class ProjectionProgress:
    """The ``applied_seq`` / ``wait_for`` watermark ``ProjectedHistory`` needs."""

    def __init__(
        self,
        offsets: Callable[[], Awaitable[Mapping[str, int]]],
        names: Collection[str] = ("ledger", "orders", "trades"),
        *,
        poll_s: float = 0.005,
        listen_poll_s: float = 0.1,
    ) -> None:
        self._offsets = offsets
        self.names = tuple(names)
        self.poll_s = poll_s
        self.listen_poll_s = listen_poll_s
        self.listening = False
        """Set while something calls :meth:`nudge` at each projector commit."""
        self._nudged = asyncio.Event()
        self._seq = 0
        self._waiters = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def applied_seq(self) -> int:
        return self._seq

    async def refresh(self) -> int:
        stored = await self._offsets()
        low = min((stored.get(n, 0) for n in self.names), default=0)
        if low > self._seq:
            self._seq = low
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()
        return self._seq

    async def wait_for(self, seq: int) -> None:
        """Return once every projector has applied ``seq`` (the caller bounds the wait)."""
        if self._seq >= seq:
            return
        self._waiters += 1
        try:
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(
                    self._poll(), name="projection-progress"
                )
            while self._seq < seq:
                await self._changed.wait()
        finally:
            self._waiters -= 1

    def nudge(self) -> None:
        """The stored offsets moved (a projector committed): read them again now."""
        self._nudged.set()

    async def _poll(self) -> None:
        while self._waiters > 0:
            self._nudged.clear()  # before the read: a commit after it is not missed
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("projector offsets not readable: %s", exc)
                await asyncio.sleep(0.1)
            if not self.listening:
                await asyncio.sleep(self.poll_s)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudged.wait(), self.listen_poll_s)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
