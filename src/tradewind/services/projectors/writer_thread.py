"""A thread with its own event loop, where the projectors write.

Why: in embedded mode the projectors' SQL writes (statement building, the driver, the
commit's fsync) ran on the event loop that also serves HTTP, and were its largest
consumer (docs/performance.md). Run here, on a store whose awaits never suspend (a
plain synchronous SQLite connection, :mod:`tradewind.adapters.sql.projection_writer`),
they cost no thread hop per statement, and the C parts (SQLite, the fsync) release the
GIL and overlap with request handling.

Invariants: a coroutine handed to :meth:`WriterThread.run` runs to completion on this
thread's loop, one at a time in submission order as far as the caller awaits each; the
caller's loop is never blocked (it awaits a future); objects a coroutine touches there
(projector caches, the store's connections) must be touched nowhere else.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class WriterThread:
    """One daemon thread running an event loop; ``await run(coro)`` from any other loop."""

    def __init__(self, name: str = "projector-writer") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the writer thread and return (or raise) what it does."""
        if self._loop.is_closed():
            coro.close()
            raise RuntimeError("the projector writer thread is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop the loop and join the thread (what is running finishes first)."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
