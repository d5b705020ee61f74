"""The market catalog (assets, symbols with their filters and last prices) in Redis, so
API replicas can convert decimals and check symbols without the core's memory.

The core writes it (:class:`RedisCatalogWriter`) on start and after every command that
changed it; each API replica keeps a copy in memory (:class:`RedisCatalog`, a
``MarketCatalog``) that it reloads every ``refresh_s`` and at once when the event stream
shows a catalog change, and whose last prices follow the trades of the stream.

Key: ``P:catalog`` (string): msgpack :class:`CatalogSnapshot`.

Invariants:
- the snapshot is written whole by one ``SET`` (a reader never sees half of one);
- a replica's copy never goes back: a snapshot older (by ``seq``) than the copy is
  ignored, and a last price from a trade on the stream is kept over a snapshot's older
  one;
- reads (``markets``, ``market``, ``assets``, ``asset``) are synchronous and never do
  I/O: the REST edge calls them on every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Sequence

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tradewind.core.events import (
    AssetAdded,
    Event,
    SymbolAdded,
    SymbolHalted,
    SymbolResumed,
    Trade,
)
from tradewind.services.catalog import AssetInfo, MarketInfo

log = logging.getLogger(__name__)

CATALOG_EVENTS = (AssetAdded, SymbolAdded, SymbolHalted, SymbolResumed)
"""Events after which the core rewrites the catalog."""


class CatalogSnapshot(msgspec.Struct, frozen=True):
    seq: int
    assets: list[AssetInfo]
    markets: list[MarketInfo]


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(CatalogSnapshot).decode


def catalog_key(prefix: str) -> str:
    return f"{prefix}:catalog"


def changes_catalog(events: Sequence[Event]) -> bool:
    return any(isinstance(e, CATALOG_EVENTS) for e in events)


class RedisCatalogWriter:
    """Writes the core's catalog (the core process)."""

    def __init__(self, redis: Redis, *, prefix: str = "tw") -> None:
        self.redis = redis
        self.key = catalog_key(prefix)

    async def write(
        self, seq: int, assets: Sequence[AssetInfo], markets: Sequence[MarketInfo]
    ) -> None:
        await self.redis.set(self.key, _encode(CatalogSnapshot(seq, list(assets), list(markets))))


class RedisCatalog:
    """``MarketCatalog`` of an API replica: an in-memory copy of the core's catalog."""

    def __init__(self, redis: Redis, *, prefix: str = "tw", refresh_s: float = 2.0) -> None:
        self.redis = redis
        self.key = catalog_key(prefix)
        self.refresh_s = refresh_s
        self.seq = -1
        self._markets: dict[str, MarketInfo] = {}
        self._assets: dict[str, AssetInfo] = {}
        self._price_seq: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.loaded = False

    # -- reads (MarketCatalog) ----------------------------------------------------------

    def markets(self) -> list[MarketInfo]:
        return [self._markets[s] for s in sorted(self._markets)]

    def market(self, symbol: str) -> MarketInfo | None:
        return self._markets.get(symbol)

    def assets(self) -> list[AssetInfo]:
        return [self._assets[a] for a in sorted(self._assets)]

    def asset(self, name: str) -> AssetInfo | None:
        return self._assets.get(name)

    # -- updates ------------------------------------------------------------------------

    async def refresh(self) -> bool:
        """Load the stored snapshot; ``True`` if it was newer than the copy."""
        raw = await self.redis.get(self.key)
        if raw is None:
            return False
        snap = _decode(raw if isinstance(raw, bytes) else raw.encode())
        self.loaded = True
        if snap.seq < self.seq:
            return False
        markets: dict[str, MarketInfo] = {}
        for m in snap.markets:
            current = self._markets.get(m.symbol)
            if current is not None and self._price_seq.get(m.symbol, -1) > snap.seq:
                m = dataclasses.replace(m, last_price=current.last_price)
            markets[m.symbol] = m
        self._markets = markets
        self._assets = {a.name: a for a in snap.assets}
        self.seq = snap.seq
        return True

    def on_events(self, seq: int, ts: int, events: Sequence[Event]) -> None:
        """Follow the event stream: last prices at once, a reload on catalog changes."""
        for e in events:
            if type(e) is Trade:
                m = self._markets.get(e.symbol)
                if m is not None and seq >= self._price_seq.get(e.symbol, -1):
                    self._markets[e.symbol] = dataclasses.replace(m, last_price=e.price)
                    self._price_seq[e.symbol] = seq
            elif isinstance(e, CATALOG_EVENTS):
                self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="catalog")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.refresh_s)
            self._wake.clear()
            try:
                await self.refresh()
            except (RedisError, OSError, msgspec.DecodeError) as exc:
                log.warning("catalog refresh failed: %s", exc)
