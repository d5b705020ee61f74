"""Port implementations that need no external service (embedded mode, tests).

Invariant: :class:`InMemoryReplayCache` answers "first time" at most once per key while
the key's time to live has not run out, and its memory is bounded by the keys still
alive (expired ones are dropped as time moves on).
"""

from __future__ import annotations

import asyncio
import heapq
import time


class SystemClock:
    """The wall clock in epoch milliseconds (``Clock`` port)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class InMemoryReplayCache:
    """``ReplayCache`` for one process. Distributed mode needs the shared Redis one,
    or a request replayed to another API replica would be accepted there."""

    def __init__(self) -> None:
        self._expiry: dict[str, int] = {}
        self._queue: list[tuple[int, str]] = []
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    async def remember(self, key: str, now_ms: int, ttl_ms: int) -> bool:
        if ttl_ms <= 0:
            raise ValueError("ttl_ms must be positive")
        async with self._lock:
            self._drop_expired(now_ms)
            if key in self._expiry:
                return False
            deadline = now_ms + ttl_ms
            self._expiry[key] = deadline
            heapq.heappush(self._queue, (deadline, key))
            return True

    def _drop_expired(self, now_ms: int) -> None:
        queue, expiry = self._queue, self._expiry
        while queue and queue[0][0] <= now_ms:
            deadline, key = heapq.heappop(queue)
            if expiry.get(key) == deadline:
                del expiry[key]
