"""Brute-force protection of the login: failures counted per account and per address.

Why this shape:
- the account counter is keyed by a hash of the *normalised email as typed*, not by a
  user id, so an unknown email locks exactly like a real one and a lockout says nothing
  about whether an account exists;
- the address counter catches credential stuffing across many accounts from one place;
  its threshold is higher because many users can share an address (NAT, offices);
- lockouts grow: after ``free`` failures each further one doubles the lock, up to a
  cap, and a lock is checked *before* any argon2 work, so hammering a locked account
  costs the server nothing (argon2 is the expensive part of a login);
- a successful login clears the account counter (not the address one), and failures
  older than ``forget_after_ms`` no longer count.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tradewind.services.identity_errors import LoginLocked
from tradewind.services.identity_ports import LoginThrottleRepository


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Failures allowed before locking, and the first lock's length."""

    free: int
    base_lock_ms: int
    max_lock_ms: int = 3600 * 1000
    forget_after_ms: int = 24 * 3600 * 1000

    def lock_ms(self, failures: int) -> int:
        """How long to lock after the ``failures``-th failure (0: not locked)."""
        over = failures - self.free
        if over <= 0:
            return 0
        return min(self.max_lock_ms, self.base_lock_ms << min(over - 1, 30))


ACCOUNT_POLICY = ThrottlePolicy(free=5, base_lock_ms=30_000)
ADDRESS_POLICY = ThrottlePolicy(free=20, base_lock_ms=60_000)
SECOND_FACTOR_POLICY = ThrottlePolicy(free=5, base_lock_ms=30_000)


def account_key(email_as_typed: str) -> str:
    digest = hashlib.sha256(email_as_typed.strip().lower().encode("utf-8", "replace"))
    return "email:" + digest.hexdigest()[:40]


def address_key(ip: str) -> str:
    return "ip:" + ip[:45]


def second_factor_key(user_id: int) -> str:
    return f"2fa:{user_id}"


class LoginThrottle:
    """Checks and counts failures for a set of (key, policy) pairs."""

    def __init__(self, store: LoginThrottleRepository) -> None:
        self._store = store

    async def check(self, keys: list[tuple[str, ThrottlePolicy]], now_ms: int) -> None:
        """Raise :class:`LoginLocked` with the longest remaining lock, if any."""
        remaining = 0
        for key, _ in keys:
            state = await self._store.get(key)
            if state is not None and state.locked_until_ms > now_ms:
                remaining = max(remaining, state.locked_until_ms - now_ms)
        if remaining:
            raise LoginLocked(remaining)

    async def fail(self, keys: list[tuple[str, ThrottlePolicy]], now_ms: int) -> None:
        for key, policy in keys:
            failures = await self._store.add_failure(key, now_ms, now_ms - policy.forget_after_ms)
            lock = policy.lock_ms(failures)
            if lock:
                await self._store.lock(key, now_ms + lock)

    async def clear(self, key: str) -> None:
        await self._store.clear(key)
