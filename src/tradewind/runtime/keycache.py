"""API keys remembered in memory for the embedded exchange.

Every signed request looks its key up by id; without this that is one SQL transaction
per request. In embedded mode this process is the only one that writes the ``api_keys``
table, and every change of a key goes through the repository the accounts service was
given (this wrapper), so the cache can be exact rather than a TTL.

Invariants:
- after :meth:`CachedApiKeyRepository.revoke` returns, the cache never serves the key as
  it was before the revocation: the entry is dropped before and after the write, and a
  lookup that was running meanwhile does not store what it read (an epoch counter);
- only keys that exist are cached (an unknown id is asked again each time, so random
  ids cannot grow it), at most ``max_entries`` of them, least recently used first out;
- records are immutable (frozen), so a cached record cannot be changed by its reader.

Not for distributed mode: there several API processes share the table and a revocation
on one would not reach the others' caches; the replicas use runtime/authcache.py, kept
exact by PostgreSQL ``NOTIFY`` (ADR 0045).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from tradewind.services.ports import ApiKeyRecord, ApiKeyRepository


class CachedApiKeyRepository:
    """An :class:`~tradewind.services.ports.ApiKeyRepository` that answers ``get`` from
    memory once a key has been read; everything else goes to ``inner``."""

    def __init__(self, inner: ApiKeyRepository, *, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._inner = inner
        self._max = max_entries
        self._keys: OrderedDict[str, ApiKeyRecord] = OrderedDict()
        self._epoch = 0

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
        keys = self._keys
        record = keys.get(key_id)
        if record is not None:
            keys.move_to_end(key_id)
            return record
        epoch = self._epoch
        record = await self._inner.get(key_id)
        if record is not None and epoch == self._epoch:
            keys[key_id] = record
            if len(keys) > self._max:
                keys.popitem(last=False)
        return record

    async def list_active(self, user_id: int) -> Sequence[ApiKeyRecord]:
        return await self._inner.list_active(user_id)

    async def count_active(self, user_id: int) -> int:
        return await self._inner.count_active(user_id)

    async def revoke(self, user_id: int, key_id: str, revoked_at_ms: int) -> bool:
        self._forget(key_id)
        try:
            return await self._inner.revoke(user_id, key_id, revoked_at_ms)
        finally:
            self._forget(key_id)

    def _forget(self, key_id: str) -> None:
        self._epoch += 1
        self._keys.pop(key_id, None)
