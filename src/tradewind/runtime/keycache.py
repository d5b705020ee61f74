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
exact by PostgreSQL ``NOTIFY`` (ADR 0045). This wrapper is theirs with a cache that always
serves and never expires.
"""

from __future__ import annotations

import math

from tradewind.runtime.authcache import ListenedApiKeyRepository, ListenedCache
from tradewind.services.ports import ApiKeyRecord, ApiKeyRepository


class CachedApiKeyRepository(ListenedApiKeyRepository):
    """An :class:`~tradewind.services.ports.ApiKeyRepository` that answers ``get`` from
    memory once a key has been read; everything else goes to ``inner``."""

    def __init__(self, inner: ApiKeyRepository, *, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        cache: ListenedCache[str, ApiKeyRecord | None] = ListenedCache(
            ttl_s=math.inf, max_entries=max_entries
        )
        cache.listening = True  # the sole writer: every change goes through revoke()
        super().__init__(inner, cache)
