"""API keys and frozen flags remembered on each API replica (distributed mode, ADR 0045).

Every signed request looks its key up and every order checks its account's frozen flag;
without this each is an SQL read on the replica. Several replicas (and the admin API on
any of them) write those tables, so a replica's memory is kept exact by PostgreSQL
``NOTIFY``: the SQL adapters send ``key:<key_id>`` / ``user:<id>`` on
:data:`~tradewind.adapters.sql.auth_notify.AUTH_CHANNEL` in the writing transaction,
and the replica's ``LISTEN`` connection hands each one to :meth:`AuthInvalidations.notified`.

Invariants:
- while not :attr:`AuthInvalidations.listening` (not connected yet, connection lost)
  nothing is served from memory nor stored: every lookup reads SQL; listening starting
  or stopping forgets everything (a change made while nobody listened was not heard);
- a notification drops its entry, and a lookup that was running when the entry was
  dropped (or when listening started or stopped) does not store what it read (an epoch
  counter, as in runtime/keycache.py): a change committed before the notification
  arrived cannot be cached after it;
- an entry lives at most ``ttl_s`` (a safety net for a lost notification or a silently
  dead connection), at most ``max_entries`` of them, least recently used first out;
- an unparseable payload forgets everything.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

from tradewind.services.ports import ApiKeyRecord, ApiKeyRepository

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ListenedCache(Generic[K, V]):
    """A read-through cache that serves only while its invalidations are heard."""

    def __init__(
        self,
        *,
        ttl_s: float = 30.0,
        max_entries: int = 100_000,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or ttl_s <= 0:
            raise ValueError("max_entries and ttl_s must be positive")
        self._ttl = ttl_s
        self._max = max_entries
        self._now = now
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._epoch = 0
        self._listening = False

    @property
    def listening(self) -> bool:
        return self._listening

    @listening.setter
    def listening(self, value: bool) -> None:
        self._listening = value
        self.clear()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(
        self,
        key: K,
        load: Callable[[], Awaitable[V]],
        keep: Callable[[V], bool] = lambda _: True,
    ) -> V:
        """The value of ``key``: from memory while listening and fresh, else ``load()``
        (stored if ``keep(value)`` and nothing was forgotten meanwhile)."""
        if not self._listening:
            return await load()
        entries = self._entries
        hit = entries.get(key)
        if hit is not None:
            if self._now() < hit[1]:
                entries.move_to_end(key)
                return hit[0]
            del entries[key]
        epoch = self._epoch
        value = await load()
        if epoch == self._epoch and self._listening and keep(value):
            entries[key] = (value, self._now() + self._ttl)
            if len(entries) > self._max:
                entries.popitem(last=False)
        return value

    def forget(self, key: K) -> None:
        self._epoch += 1
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._epoch += 1
        self._entries.clear()


class AuthInvalidations:
    """The replica's two caches and the ``LISTEN`` side that keeps them exact."""

    def __init__(
        self,
        *,
        ttl_s: float = 30.0,
        max_entries: int = 100_000,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys: ListenedCache[str, ApiKeyRecord | None] = ListenedCache(
            ttl_s=ttl_s, max_entries=max_entries, now=now
        )
        self.frozen: ListenedCache[int, bool] = ListenedCache(
            ttl_s=ttl_s, max_entries=max_entries, now=now
        )

    @property
    def listening(self) -> bool:
        return self.keys.listening

    @listening.setter
    def listening(self, value: bool) -> None:
        """Set once ``LISTEN`` is in effect, cleared as soon as the connection is lost."""
        self.keys.listening = value
        self.frozen.listening = value

    def notified(self, payload: str | None) -> None:
        """One notification of :data:`~tradewind.adapters.sql.auth_notify.AUTH_CHANNEL`."""
        kind, _, ident = (payload or "").partition(":")
        if kind == "key" and ident:
            self.keys.forget(ident)
            return
        if kind == "user":
            try:
                user_id = int(ident)
            except ValueError:
                pass
            else:
                self.frozen.forget(user_id)
                return
        self.keys.clear()
        self.frozen.clear()


class ListenedApiKeyRepository:
    """An :class:`~tradewind.services.ports.ApiKeyRepository` whose ``get`` is answered
    from an :class:`AuthInvalidations` key cache (existing keys only: an unknown id is
    asked again each time, so random ids cannot fill it)."""

    def __init__(
        self, inner: ApiKeyRepository, cache: ListenedCache[str, ApiKeyRecord | None]
    ) -> None:
        self._inner = inner
        self._cache = cache

    async def add(
        self,
        *,
        key_id: str,
        user_id: int,
        label: str,
        permissions: frozenset[str],
        ip_allowlist: tuple[str, ...] | None,
        secret_sealed: bytes,
        created_at_ms: int,
        expires_at_ms: int | None = None,
        key_type: str = "hmac",
        public_key: bytes | None = None,
    ) -> ApiKeyRecord:
        return await self._inner.add(
            key_id=key_id,
            user_id=user_id,
            label=label,
            permissions=permissions,
            ip_allowlist=ip_allowlist,
            secret_sealed=secret_sealed,
            created_at_ms=created_at_ms,
            expires_at_ms=expires_at_ms,
            key_type=key_type,
            public_key=public_key,
        )

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        inner = self._inner
        return await self._cache.get(key_id, lambda: inner.get(key_id), _exists)

    async def list_active(self, user_id: int) -> Sequence[ApiKeyRecord]:
        return await self._inner.list_active(user_id)

    async def count_active(self, user_id: int) -> int:
        return await self._inner.count_active(user_id)

    async def revoke(self, user_id: int, key_id: str, revoked_at_ms: int) -> bool:
        # this replica forgets at once; the others when the NOTIFY of the write arrives
        self._cache.forget(key_id)
        try:
            return await self._inner.revoke(user_id, key_id, revoked_at_ms)
        finally:
            self._cache.forget(key_id)


def _exists(record: ApiKeyRecord | None) -> bool:
    return record is not None
