"""Rate limits: token buckets with request weights, per IP, user, API key and account.

Why token buckets: a client may burst up to a bucket's ``limit`` and is then held to
its refill rate (``limit`` per ``window_ms``), which is what bots expect from exchanges
(Binance-style weights) and what protects the CPU (argon2 at login, the core's queue).

Invariants:
- arithmetic is exact integers: a bucket's level is kept in *token-milliseconds*
  (``tokens * window_ms``); it refills by ``limit`` units per millisecond and never
  above ``limit * window_ms``; a request of weight ``w`` needs ``w * window_ms`` units;
- a request checked against several buckets (IP, user, key) is charged to all of them
  or to none: if any bucket is short, nothing is taken, so a refused request never
  drains a bucket (a client that waits ``retry_after_ms`` is then served);
- a refusal is :class:`RateLimited` (``429 rate_limited``) carrying ``retry_after_ms``
  and the numbers for the ``X-RateLimit-*`` headers;
- a weight above a bucket's ``limit`` can never pass: such a rule is refused at
  construction of the policy, not discovered at request time.

The buckets live behind :class:`BucketStore`: :class:`MemoryBuckets` here (embedded
mode, tests) and ``tradewind.adapters.redis.ratelimit.RedisBuckets`` (distributed mode,
the same algorithm as one atomic Lua script, shared by every API replica).
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tradewind.services.errors import ServiceError
from tradewind.services.ports import Clock

SCOPES = ("ip", "user", "key", "auth", "orders")
"""``ip``/``user``/``key``: every request's weight; ``auth``: login, registration and
other password-hashing routes per IP; ``orders``: order commands per account (in the
trading path, whatever the gateway)."""

_RULE = re.compile(r"^\s*([a-z]+)\s*=\s*([0-9]{1,9})\s*/\s*([0-9]{1,7})\s*(ms|s|m|h)?\s*$")
MAX_BUCKET = 2**50
"""Largest ``limit * window_ms``: exact in the doubles of Redis's Lua, too."""
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


@dataclass(frozen=True, slots=True)
class Rule:
    """``limit`` tokens per ``window_ms``; a full bucket holds ``limit`` tokens."""

    limit: int
    window_ms: int

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_ms < 1:
            raise ValueError("a rate rule needs a positive limit and window")
        if self.limit * self.window_ms > MAX_BUCKET:
            raise ValueError("a rate rule's limit * window_ms must stay below 2**50")

    def __str__(self) -> str:
        return f"{self.limit}/{self.window_ms}ms"


DEFAULT_RULES: Mapping[str, Rule] = {
    "ip": Rule(6000, 60_000),
    "user": Rule(6000, 60_000),
    "key": Rule(3000, 60_000),
    "auth": Rule(100, 60_000),
    "orders": Rule(100, 10_000),
}
"""The documented defaults (docs/security.md): an IP may spend 6000 weight a minute
(100 a second sustained), a key 3000, an account 6000; 100 password checks a minute per
IP; 100 order commands per 10 s per account."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one take, for the most constrained bucket involved."""

    allowed: bool
    limit: int
    remaining: int
    """Whole tokens left in that bucket after this request."""
    reset_ms: int
    """Milliseconds until that bucket is full again."""
    retry_after_ms: int
    """0 when allowed; else how long until the request would pass."""
    scope: str


class RateLimited(ServiceError):
    code = "rate_limited"
    status_hint = 429
    default_message = "too many requests"

    def __init__(self, decision: Decision, message: str | None = None) -> None:
        seconds = max(1, -(-decision.retry_after_ms // 1000))
        super().__init__(
            message or f"{decision.scope} rate limit exceeded; retry after {seconds} s"
        )
        self.decision = decision

    @property
    def retry_after_s(self) -> int:
        """Whole seconds, rounded up, never 0 (the ``Retry-After`` header)."""
        return max(1, -(-self.decision.retry_after_ms // 1000))


class BucketStore(Protocol):
    async def take(
        self, keys: Sequence[str], rules: Sequence[Rule], weight: int, now_ms: int
    ) -> list[tuple[bool, int, int]]:
        """All-or-nothing: charge ``weight`` to every bucket ``keys[i]`` (under
        ``rules[i]``) if each has enough, else to none. Returns, per bucket,
        ``(had_enough, level_after, refill_ms_missing)`` where ``level_after`` is in
        token-milliseconds and ``refill_ms_missing`` is 0 or how long until it has
        enough. Backends with their own clock (Redis ``TIME``) may ignore ``now_ms``."""
        ...


def refill(level: int, last_ms: int, now_ms: int, rule: Rule) -> int:
    """A bucket's level at ``now_ms`` (time never runs backwards here)."""
    full = rule.limit * rule.window_ms
    elapsed = max(0, now_ms - last_ms)
    return min(full, level + elapsed * rule.limit)


def missing_ms(level: int, weight: int, rule: Rule) -> int:
    """Milliseconds of refill until ``level`` covers ``weight`` (0 if it does)."""
    need = weight * rule.window_ms - level
    return 0 if need <= 0 else -(-need // rule.limit)


class MemoryBuckets:
    """:class:`BucketStore` of one process; bounded (least recently used buckets go
    first, and a forgotten bucket is simply full again, i.e. lenient, never stricter)."""

    def __init__(self, *, max_buckets: int = 100_000) -> None:
        self._buckets: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._max = max_buckets
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    async def take(
        self, keys: Sequence[str], rules: Sequence[Rule], weight: int, now_ms: int
    ) -> list[tuple[bool, int, int]]:
        # No await inside: the check and the charge are one step for the event loop.
        buckets = self._buckets
        levels: list[int] = []
        for key, rule in zip(keys, rules, strict=True):
            state = buckets.get(key)
            full = rule.limit * rule.window_ms
            levels.append(full if state is None else refill(state[0], state[1], now_ms, rule))
        short = [missing_ms(lv, weight, r) for lv, r in zip(levels, rules, strict=True)]
        ok = not any(short)
        out: list[tuple[bool, int, int]] = []
        for key, rule, level, miss in zip(keys, rules, levels, short, strict=True):
            after = level - weight * rule.window_ms if ok else level
            buckets[key] = (after, now_ms)
            buckets.move_to_end(key)
            out.append((miss == 0, after, miss))
        while len(buckets) > self._max:
            buckets.popitem(last=False)
        return out


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """Which rules apply; a scope absent from ``rules`` is not limited."""

    rules: Mapping[str, Rule] = field(default_factory=lambda: dict(DEFAULT_RULES))

    def rule(self, scope: str) -> Rule | None:
        return self.rules.get(scope)


def parse_rules(text: str) -> RatePolicy:
    """Parse the ``rate_limits`` setting: ``""`` (defaults), ``"off"`` (no limits) or
    ``"scope=LIMIT/WINDOW[unit],..."`` overriding some defaults (unit ms, s, m or h;
    default s), e.g. ``"ip=1200/60s,orders=off"``. Raises ``ValueError`` naming the bad part.
    """
    stripped = text.strip().lower()
    if stripped == "off":
        return RatePolicy({})
    rules = dict(DEFAULT_RULES)
    if not stripped:
        return RatePolicy(rules)
    for part in stripped.split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in SCOPES:
            raise ValueError(f"unknown rate-limit scope {name!r} (known: {', '.join(SCOPES)})")
        if value.strip() == "off":
            rules.pop(name, None)
            continue
        match = _RULE.match(part)
        if match is None:
            raise ValueError(f"{part.strip()!r} is not scope=LIMIT/WINDOW (e.g. ip=1200/60s)")
        limit, window, unit = int(match.group(2)), int(match.group(3)), match.group(4) or "s"
        if limit < 1 or window < 1:
            raise ValueError(f"{part.strip()!r}: limit and window must be positive")
        rules[name] = Rule(limit, window * _UNIT_MS[unit])
    return RatePolicy(rules)


class RateLimiter:
    """Charges requests to the buckets of the policy; the gateways and the trading
    service call it, so every way in (REST, WebSocket, FIX) shares the same buckets."""

    def __init__(
        self, store: BucketStore, clock: Clock, policy: RatePolicy | None = None, prefix: str = ""
    ) -> None:
        self._store = store
        self._clock = clock
        self.policy = policy or RatePolicy()
        self._prefix = prefix

    @property
    def enabled(self) -> bool:
        return bool(self.policy.rules)

    async def take(self, weight: int, **subjects: str | int | None) -> Decision | None:
        """Charge ``weight`` to the bucket of each given subject (``ip=...``,
        ``user=...``, ``key=...``, ``auth=...``, ``orders=...``; ``None`` skips one).

        Returns the decision of the most constrained bucket (``None`` if no rule
        applies); raises :class:`RateLimited` when any bucket is short."""
        keys: list[str] = []
        rules: list[Rule] = []
        scopes: list[str] = []
        for scope, subject in subjects.items():
            if subject is None:
                continue
            rule = self.policy.rule(scope)
            if rule is None:
                continue
            keys.append(f"{self._prefix}{scope}:{subject}")
            rules.append(rule)
            scopes.append(scope)
        if not keys:
            return None
        if weight < 1:
            raise ValueError("a request weighs at least 1")
        results = await self._store.take(keys, rules, weight, self._clock.now_ms())
        allowed = all(ok for ok, _, _ in results)
        worst = 0
        if allowed:
            # the bucket with the fewest whole tokens left speaks for the request
            worst = min(range(len(keys)), key=lambda i: results[i][1] // rules[i].window_ms)
        else:
            worst = max(range(len(keys)), key=lambda i: results[i][2])
        _, level, miss = results[worst]
        rule = rules[worst]
        full = rule.limit * rule.window_ms
        decision = Decision(
            allowed=allowed,
            limit=rule.limit,
            remaining=max(0, level // rule.window_ms),
            reset_ms=-(-(full - level) // rule.limit),
            retry_after_ms=0 if allowed else miss,
            scope=scopes[worst],
        )
        if not allowed:
            raise RateLimited(decision)
        return decision


class OrderRateGuard:
    """Order commands per account, in the trading path (whatever gateway they came from)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    async def check_order(self, user: int) -> None:
        await self._limiter.take(1, orders=user)
