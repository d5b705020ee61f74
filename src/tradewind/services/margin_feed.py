"""The mark-price feeder: periodically sends the core a ``mark`` command per margin
symbol, with the external index prices of its configured :class:`PriceFeed` s.

Invariants:
- the core computes the index and the mark (median of its own book's mid and the fresh
  feeds, move-limited: docs/margin.md "Marks"); the feeder only gathers feed prices,
  converts them to ticks (rounded down, exact ``Decimal`` arithmetic, never ``float``)
  and stamps each with the time the feed reports (the core drops stale ones);
- one feeder per deployment (the embedded process, or next to the core in distributed
  mode): marks are commands, so a doubled feeder would only add commands, never a
  wrong state, but it is wasteful;
- a failing or slow feed (``timeout_s``) is skipped for that round, never blocks the
  others or the core; a rejected mark (``no_index_price``: no book and no feed) is
  logged and retried at the next round;
- a round sends a symbol's mark only when it would change it (previewed with the
  core's own functions where the core is in this process), so an idle exchange is not
  filled with no-op commands; interest is charged by the core at every hour boundary a
  command's ts crosses, and when nothing else crossed it the feeder sends a ``tick``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Protocol

import structlog

from tradewind.core.commands import MAX_INT, Mark, Tick
from tradewind.core.events import MarkPrice, Rejected
from tradewind.services.catalog import MarketInfo
from tradewind.services.trading import CommandBus, CoreFailure

log = structlog.get_logger(__name__)

MAX_FEEDS = 16


@dataclass(frozen=True, slots=True)
class FeedPrice:
    price: Decimal
    """In quote units per base unit (e.g. ``65000.12`` USDT per BTC)."""
    ts_ms: int
    """When the feed observed it (ms since the epoch)."""


class PriceFeed(Protocol):
    """An external index price source."""

    @property
    def name(self) -> str: ...

    async def price(self, symbol: str) -> FeedPrice | None:
        """The feed's price of ``symbol`` now, or ``None`` if it has none."""
        ...


class MarginFeedError(ValueError):
    """The ``[margin]`` config table is malformed (the message names the key)."""


@dataclass(frozen=True, slots=True)
class MarginFeedConfig:
    """The ``[margin]`` table: ``mark_interval_ms`` and ``feeds`` per symbol, each a
    ``"static:<price>"`` or an ``http(s)://`` URL answering JSON (``#field`` picks the
    field holding the price, default ``price``; ``{symbol}`` in the URL is replaced)."""

    mark_interval_ms: int = 2_000
    feeds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    feed_timeout_ms: int = 1_000


def parse_margin_config(table: Mapping[str, object]) -> MarginFeedConfig:
    unknown = sorted(set(table) - {"mark_interval_ms", "feeds", "feed_timeout_ms"})
    if unknown:
        raise MarginFeedError(f"margin.{unknown[0]}: unknown key")

    def ms(key: str, default: int) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 10 <= value <= 3_600_000:
            raise MarginFeedError(f"margin.{key}: an integer of ms from 10 to 3600000")
        return value

    feeds: dict[str, tuple[str, ...]] = {}
    raw = table.get("feeds", {})
    if not isinstance(raw, Mapping):
        raise MarginFeedError("margin.feeds: a table of symbol = [feed, ...]")
    for symbol, specs in raw.items():
        if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
            raise MarginFeedError(f"margin.feeds.{symbol}: a list of feed strings")
        if len(specs) > MAX_FEEDS:
            raise MarginFeedError(f"margin.feeds.{symbol}: at most {MAX_FEEDS} feeds")
        for spec in specs:
            if spec.startswith("static:"):
                try:
                    if Decimal(spec[7:]) <= 0:
                        raise InvalidOperation
                except InvalidOperation:
                    raise MarginFeedError(
                        f"margin.feeds.{symbol}: {spec!r} needs a positive price"
                    ) from None
            elif not spec.startswith(("http://", "https://")):
                raise MarginFeedError(
                    f"margin.feeds.{symbol}: {spec!r} is neither static:<price> nor a URL"
                )
        feeds[str(symbol)] = tuple(specs)
    return MarginFeedConfig(
        mark_interval_ms=ms("mark_interval_ms", 2_000),
        feeds=feeds,
        feed_timeout_ms=ms("feed_timeout_ms", 1_000),
    )


def to_ticks(price: Decimal, market: MarketInfo) -> int | None:
    """``price`` (quote per base unit) in ticks of ``market``, rounded down; ``None``
    if below one tick or not a finite positive number."""
    if not price.is_finite() or price <= 0:
        return None
    ticks = int(price.scaleb(market.quote_decimals) // market.tick_size)
    return ticks if 1 <= ticks <= MAX_INT else None


class MarkFeeder:
    """Sends ``mark`` commands for the margin symbols ``symbols()`` names."""

    def __init__(
        self,
        bus: CommandBus,
        symbols: Callable[[], Sequence[str]],
        market: Callable[[str], MarketInfo | None],
        feeds: Mapping[str, Sequence[PriceFeed]],
        *,
        interval_s: float = 2.0,
        timeout_s: float = 1.0,
        now_ms: Callable[[], int] | None = None,
        preview: Callable[[str, tuple[tuple[int, int], ...], int], int | None] | None = None,
        current: Callable[[str], int | None] | None = None,
        interest_due: Callable[[int], bool] | None = None,
    ) -> None:
        """With ``preview`` (the mark a command would set), ``current`` (the mark now)
        and ``now_ms``, a round sends a symbol's mark only when it would change it, and
        a ``tick`` when only interest is due (``interest_due``): an idle exchange is not
        filled with commands that change nothing."""
        self._bus = bus
        self._symbols = symbols
        self._market = market
        self._feeds = feeds
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._now_ms = now_ms
        self._preview = preview
        self._current = current
        self._interest_due = interest_due
        self.marks_sent = 0
        self.ticks_sent = 0
        self.rejected = 0
        self.last_marks: dict[str, int] = {}

    async def _ask(self, feed: PriceFeed, symbol: str) -> FeedPrice | None:
        try:
            return await asyncio.wait_for(feed.price(symbol), self.timeout_s)
        except Exception as e:  # a feed failing is routine: skip it this round
            log.warning("price feed failed", feed=feed.name, symbol=symbol, error=repr(e))
            return None

    async def feed_prices(self, symbol: str) -> tuple[tuple[int, int], ...]:
        market = self._market(symbol)
        feeds = self._feeds.get(symbol, ())
        if market is None or not feeds:
            return ()
        got = await asyncio.gather(*(self._ask(f, symbol) for f in feeds))
        out: list[tuple[int, int]] = []
        for p in got:
            if p is None:
                continue
            ticks = to_ticks(p.price, market)
            if ticks is not None and 0 <= p.ts_ms <= MAX_INT:
                out.append((ticks, p.ts_ms))
        return tuple(out[:MAX_FEEDS])

    async def round(self) -> int:
        """One mark per margin symbol; returns how many the core accepted."""
        if not self._bus.available:
            return 0
        accepted = 0
        sent = False
        for symbol in self._symbols():
            feeds = await self.feed_prices(symbol)
            if self._preview is not None and self._current is not None and self._now_ms:
                new = self._preview(symbol, feeds, self._now_ms())
                if new is None or new == self._current(symbol):
                    continue  # would be rejected, or would change nothing
            sent = True
            try:
                applied = await self._bus.submit(Mark(symbol=symbol, feeds=feeds))
            except CoreFailure as e:
                log.warning("mark not sent", symbol=symbol, error=e.code)
                continue
            for ev in applied.events:
                if isinstance(ev, MarkPrice):
                    self.last_marks[symbol] = ev.mark
                    accepted += 1
                elif isinstance(ev, Rejected):
                    self.rejected += 1
                    log.debug("mark rejected", symbol=symbol, reason=ev.reason)
        self.marks_sent += accepted
        due = self._interest_due
        if not sent and due is not None and self._now_ms is not None and due(self._now_ms()):
            try:
                await self._bus.submit(Tick())
                self.ticks_sent += 1
            except CoreFailure as e:
                log.warning("interest tick not sent", error=e.code)
        return accepted

    async def run(self) -> None:
        """Rounds every ``interval_s`` until cancelled."""
        while True:
            try:
                await self.round()
            except Exception:
                log.exception("mark feeder round failed")
            await asyncio.sleep(self.interval_s)
