"""Token buckets in Redis, shared by every API replica (distributed mode).

Keys ``P:rl:<scope>:<subject>`` (prefix ``P`` = setting ``redis_prefix``) are hashes
``{l: level in token-ms, t: last refill in ms}`` that expire once they would be full
again (an absent bucket is full), so idle clients cost no memory.

Invariants:
- one Lua script does the refill, the all-or-nothing check and the charge of every
  bucket of a request: atomic across replicas, no lost update, no partial charge;
- time is Redis's own ``TIME``, one clock for every replica (their clocks may drift);
- the arithmetic is the same as :class:`tradewind.services.ratelimit.MemoryBuckets`
  (integers in token-milliseconds; the largest value, ``limit * window_ms``, is far
  below 2**53, so Lua's doubles hold it exactly; the rules' parser caps both);
- a Redis failure raises: the gateway answers 503 rather than serve without limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from redis.asyncio import Redis

from tradewind.services.ratelimit import Rule

_TAKE_LUA: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local weight = tonumber(ARGV[1])
local n = #KEYS
local levels = {}
local missing = {}
local ok = 1
for i = 1, n do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  local full = limit * window
  local state = redis.call('HMGET', KEYS[i], 'l', 't')
  local level = full
  if state[1] then
    local elapsed = now - tonumber(state[2])
    if elapsed < 0 then elapsed = 0 end
    level = math.min(full, tonumber(state[1]) + elapsed * limit)
  end
  local need = weight * window - level
  local miss = 0
  if need > 0 then
    miss = math.floor((need + limit - 1) / limit)
    ok = 0
  end
  levels[i] = level
  missing[i] = miss
end
local out = {}
for i = 1, n do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  local level = levels[i]
  if ok == 1 then level = level - weight * window end
  local to_full = math.floor((limit * window - level + limit - 1) / limit)
  if to_full > 0 then
    redis.call('HSET', KEYS[i], 'l', string.format('%d', level), 't', string.format('%d', now))
    redis.call('PEXPIRE', KEYS[i], to_full + 1000)
  else
    redis.call('DEL', KEYS[i])
  end
  out[3 * i - 2] = (missing[i] == 0) and 1 or 0
  out[3 * i - 1] = string.format('%d', level)
  out[3 * i] = missing[i]
end
return out
"""


class RedisBuckets:
    """:class:`~tradewind.services.ratelimit.BucketStore` in Redis (``now_ms`` ignored:
    Redis's clock is used)."""

    def __init__(self, redis: Redis, *, prefix: str = "tw") -> None:
        self.redis = redis
        self._prefix = f"{prefix}:rl:"
        self._script: Any = redis.register_script(_TAKE_LUA)

    async def take(
        self, keys: Sequence[str], rules: Sequence[Rule], weight: int, now_ms: int
    ) -> list[tuple[bool, int, int]]:
        if len(keys) != len(rules):
            raise ValueError("one rule per key")
        args: list[int] = [weight]
        for rule in rules:
            args += [rule.limit, rule.window_ms]
        raw = await self._script(keys=[self._prefix + k for k in keys], args=args)
        return [
            (int(raw[3 * i]) == 1, int(raw[3 * i + 1]), int(raw[3 * i + 2]))
            for i in range(len(keys))
        ]
