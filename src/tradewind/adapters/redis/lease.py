"""The core's leader lease in Redis, with a fencing token (hot standby, ADR 0010).

Keys under the prefix ``P`` (setting ``redis_prefix``):

| key | type | holds |
|---|---|---|
| ``P:core:lease`` | string, ``PX`` = lease time | ``<token>:<holder>`` of the writing core |
| ``P:core:fence`` | integer | the last fencing token handed out |

Invariants:
- at most one holder at any instant (as Redis orders commands): acquiring is one Lua
  script that sets the lease only if no lease exists (``SET NX PX``) and takes the next
  token from ``P:core:fence`` in the same step, so tokens strictly grow with every
  change of holder;
- renewing and releasing compare the stored value with the caller's ``<token>:<holder>``
  first (in Lua): a holder whose lease lapsed and was taken by another can neither
  extend nor delete the new holder's lease;
- tokens never go back even if Redis loses its data (this machine's Redis keeps nothing
  on disk): a caller passes ``floor``, the highest token it knows was used (the core
  keeps it in its data dir), and the counter is raised to it before the increment;
- :attr:`RedisLease.valid_until` is a *local*, conservative end of the lease: the
  monotonic time at which the last successful acquire/renew was *sent*, plus the lease
  time, minus a margin. Redis started its ``PX`` clock later than that, so while the
  local clock says valid, no other process can hold the lease. A paused process that
  wakes finds its own ``valid_until`` past and must not act as leader (the fence of the
  journal, :mod:`tradewind.runtime.standby`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import redis as blocking_redis
from redis.asyncio import Redis

_ACQUIRE_LUA: Final = """
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur} end
local fence = tonumber(redis.call('GET', KEYS[2]) or '0')
local floor = tonumber(ARGV[3])
if fence < floor then redis.call('SET', KEYS[2], floor) end
local token = redis.call('INCR', KEYS[2])
local value = token .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {token, value}
"""

_RENEW_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds the lease now (as read from Redis)."""

    token: int
    holder: str


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def parse_value(raw: bytes | str) -> LeaseHolder:
    token, _, holder = _text(raw).partition(":")
    return LeaseHolder(int(token), holder)


class RedisLease:
    """One candidate's handle on the core lease. ``holder`` names this process (it is
    shown to others, e.g. ``host:pid:instance``); ``ttl_ms`` is the lease time."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        holder: str,
        ttl_ms: int,
        margin_ms: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_ms < 10:
            raise ValueError("the lease time must be at least 10 ms")
        self.redis = redis
        self.key = f"{prefix}:core:lease"
        self.fence_key = f"{prefix}:core:fence"
        self.holder = holder
        self.ttl_ms = ttl_ms
        # local clock rate vs Redis's: leave a tenth of the lease (at most 200 ms) spare
        self.margin_s = (margin_ms if margin_ms is not None else min(200, ttl_ms // 10)) / 1000
        self._clock = clock
        self.token = 0
        self.valid_until = float("-inf")
        self._acquire = redis.register_script(_ACQUIRE_LUA)
        self._renew = redis.register_script(_RENEW_LUA)
        self._release = redis.register_script(_RELEASE_LUA)

    @property
    def value(self) -> str:
        return f"{self.token}:{self.holder}"

    @property
    def held(self) -> bool:
        """True while this process may act as the leader (local, conservative)."""
        return self.token > 0 and self._clock() < self.valid_until

    def remaining_s(self) -> float:
        return self.valid_until - self._clock() if self.token else 0.0

    async def try_acquire(self, floor: int = 0) -> LeaseHolder | None:
        """Take the lease if nobody holds it: returns None on success (``token`` is set),
        else the current holder."""
        sent = self._clock()
        token, value = await self._acquire(
            keys=[self.key, self.fence_key], args=[self.holder, self.ttl_ms, floor]
        )
        if int(token) == 0:
            return parse_value(value)
        self.token = int(token)
        self.valid_until = sent + self.ttl_ms / 1000 - self.margin_s
        return None

    async def renew(self) -> bool:
        """Extend the lease; False if it is no longer ours (lapsed, taken, deleted)."""
        if not self.token:
            return False
        sent = self._clock()
        if await self._renew(keys=[self.key], args=[self.value, self.ttl_ms]):
            self.valid_until = sent + self.ttl_ms / 1000 - self.margin_s
            return True
        self.valid_until = float("-inf")
        return False

    def blocking_client(self) -> blocking_redis.Redis:
        """A synchronous client to the same Redis server as ``redis``, for renewing from a
        thread of its own (:func:`tradewind.runtime.standby.hold`): the asynchronous client
        belongs to its event loop. Its timeouts are a third of the lease, so a renewal
        that hangs is retried while the lease is still valid."""
        pool = self.redis.connection_pool
        given = pool.connection_kwargs
        kwargs: dict[str, Any] = {k: given[k] for k in ("db", "username", "password") if k in given}
        timeout = max(self.ttl_ms / 3000, 0.05)
        kind = pool.connection_class.__name__
        if kind == "UnixDomainSocketConnection":
            kwargs["unix_socket_path"] = given["path"]
        else:
            kwargs["host"] = given.get("host", "localhost")
            kwargs["port"] = given.get("port", 6379)
            kwargs["ssl"] = kind == "SSLConnection"
        return blocking_redis.Redis(
            **kwargs, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def renew_blocking(self, client: blocking_redis.Redis) -> bool:
        """:meth:`renew` through a synchronous client (from :meth:`blocking_client`)."""
        if not self.token:
            return False
        sent = self._clock()
        if client.eval(_RENEW_LUA, 1, self.key, self.value, self.ttl_ms):
            self.valid_until = sent + self.ttl_ms / 1000 - self.margin_s
            return True
        self.valid_until = float("-inf")
        return False

    async def release(self) -> bool:
        """Give the lease up at once (a clean stop): the standby need not wait it out."""
        if not self.token:
            return False
        self.valid_until = float("-inf")
        return bool(await self._release(keys=[self.key], args=[self.value]))

    async def current(self) -> LeaseHolder | None:
        raw = await self.redis.get(self.key)
        return None if raw is None else parse_value(raw)

    def forget(self) -> None:
        """Treat the lease as lost locally (without asking Redis)."""
        self.valid_until = float("-inf")
