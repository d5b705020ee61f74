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
  otherwise only every ``listen_poll_s`` (a lost notification costs that much delay);
- a notification's payload is the offsets as that transaction commits them (ADR 0043):
  :meth:`ProjectionProgress.nudge` applies them at once, and once one has been applied
  since listening began, a waiter does not read the offsets from SQL first (every later
  commit announces itself); without a payload, or while not listening, it reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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
        self._listening = False
        self._fed = False
        """Offsets came with a notification since listening began: ``_seq`` is current."""
        self._nudged = asyncio.Event()
        self._seq = 0
        self._waiters = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def applied_seq(self) -> int:
        return self._seq

    @property
    def listening(self) -> bool:
        """Set while something calls :meth:`nudge` at each projector commit."""
        return self._listening

    @listening.setter
    def listening(self, value: bool) -> None:
        self._listening = value
        self._fed = False  # commits before (or while not) listening were not announced

    async def refresh(self) -> int:
        return self._advance(await self._offsets())

    def _advance(self, stored: Mapping[str, int]) -> int:
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

    def nudge(self, payload: str | None = None) -> None:
        """The stored offsets moved (a projector committed). ``payload``: the offsets
        that commit stored, as a JSON object ``{name: seq}``; taken at once, with no read.
        Without one (or unreadable), the poller reads them again now."""
        stored = _offsets_of(payload)
        if stored is not None:
            self._advance(stored)
            if self._listening:
                self._fed = True
        self._nudged.set()

    async def _poll(self) -> None:
        # fed by notifications, ``_seq`` already shows every announced commit: the
        # first read would only repeat it (ADR 0043)
        read = not (self._listening and self._fed)
        while self._waiters > 0:
            self._nudged.clear()  # before the read: a commit after it is not missed
            if read:
                try:
                    await self.refresh()
                except Exception as exc:
                    log.warning("projector offsets not readable: %s", exc)
                    await asyncio.sleep(0.1)
            read = True
            if not self._listening:
                await asyncio.sleep(self.poll_s)
                continue
            try:
                await asyncio.wait_for(self._nudged.wait(), self.listen_poll_s)
            except TimeoutError:
                continue  # the safety poll: read
            read = not self._fed  # a nudge with offsets was applied already

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _offsets_of(payload: str | None) -> dict[str, int] | None:
    """The ``{name: seq}`` of a notification's payload, or None."""
    if not payload:
        return None
    try:
        raw = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    out: dict[str, int] = {}
    for name, seq in raw.items():
        if isinstance(seq, int) and not isinstance(seq, bool):
            out[str(name)] = seq
    return out


NOTIFY_OFFSETS_SQL = (
    f"SELECT pg_notify('{PROJECTED_CHANNEL}', "
    "(SELECT coalesce(json_object_agg(name, last_seq), '{}')::text FROM projector_offsets))"
)
"""Run last in the projector's transaction: the notification, delivered at commit,
carries the offsets that transaction stores (its own writes are visible to it)."""
