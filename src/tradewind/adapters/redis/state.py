"""Small shared state of the API replicas in Redis: the signature replay cache and the
users' write marks (read-your-writes across replicas).

Keys under the prefix ``P`` (setting ``redis_prefix``):

| key | type | holds |
|---|---|---|
| ``P:replay:<key>`` | string, ``PX`` = its time to live | a signature already accepted |
| ``P:mark:<user>`` | string, ``PX`` = ``mark_ttl_ms`` | seq of their last acknowledged command |

Invariants:
- :meth:`RedisReplayCache.remember` is one ``SET key 1 NX PX ttl``: atomic across every
  replica, so a signature is accepted at most once while its entry lives (Redis keeps the
  time; the caller's ``now_ms`` is not used). A Redis failure raises: the request is
  refused rather than let a replay through;
- a write mark only grows (a Lua max); a Redis failure degrades to the marks of this
  process, never fails the write that is being acknowledged.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_MAX_LUA: Final = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local seq = tonumber(ARGV[1])
if seq > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return seq
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return cur
"""


class RedisReplayCache:
    """``ReplayCache`` shared by every API replica."""

    def __init__(self, redis: Redis, *, prefix: str = "tw") -> None:
        self.redis = redis
        self._prefix = f"{prefix}:replay:"

    async def remember(self, key: str, now_ms: int, ttl_ms: int) -> bool:
        if ttl_ms <= 0:
            raise ValueError("ttl_ms must be positive")
        stored = await self.redis.set(self._prefix + key, b"1", nx=True, px=ttl_ms)
        return bool(stored)


class RedisWriteMarks:
    """``WriteMarks`` shared by every API replica (with this process's own as a floor)."""

    def __init__(self, redis: Redis, *, prefix: str = "tw", mark_ttl_ms: int = 3_600_000) -> None:
        self.redis = redis
        self._prefix = f"{prefix}:mark:"
        self.mark_ttl_ms = mark_ttl_ms
        self._local: dict[int, int] = {}
        self._script: Any = redis.register_script(_MAX_LUA)

    async def note(self, user: int, seq: int) -> None:
        if seq > self._local.get(user, 0):
            self._local[user] = seq
        try:
            await self._script(keys=[f"{self._prefix}{user}"], args=[seq, self.mark_ttl_ms])
        except (RedisError, OSError) as exc:
            log.warning("write mark not shared (%s): read-your-writes is per replica", exc)

    async def last(self, user: int) -> int:
        local = self._local.get(user, 0)
        try:
            raw = await self.redis.get(f"{self._prefix}{user}")
        except (RedisError, OSError) as exc:
            log.warning("write mark not readable (%s)", exc)
            return local
        return max(local, int(raw) if raw is not None else 0)
