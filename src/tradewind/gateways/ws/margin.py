"""The private ``margin`` WebSocket channel: margin-level updates and notices.

Invariants:
- a message goes only to the owner of the wallet (``user`` of the margin event, or the
  owner the state reader names for a wallet id in a trade);
- notices (``margin_call``, ``liquidation_started``, ``liquidation_fill``,
  ``liquidation_finished``) are sent at once, in event order, with the event's figures;
- level updates are coalesced: an event that may change a user's level (a mark of a
  margin symbol, a trade of one of their wallets, interest, a borrow, repay or
  transfer) only marks the user; :meth:`MarginChannel.flush` (every ``interval_s``,
  driven by the runtime) sends each marked, subscribed user one ``level`` message, and
  only if a figure changed since the last one sent: a busy market costs one message
  per user per interval at most;
- nothing is computed for users who are not subscribed; levels are the core's own
  figures (the state reader), so the channel never disagrees with ``GET /margin/account``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

import structlog

from tradewind.core.events import (
    Borrowed,
    Event,
    InterestCharged,
    LiquidationFill,
    LiquidationFinished,
    LiquidationStarted,
    MarginCall,
    MarginTransferred,
    MarkPrice,
    Repaid,
    Trade,
)
from tradewind.gateways.ws.format import Formatter
from tradewind.services.margin import MarginStateReader, MarginUnavailable, WalletState

log = structlog.get_logger(__name__)

CHANNEL = "margin"


class PrivateSink(Protocol):
    def subscribed(self, channel: str, user: int) -> bool: ...

    def subscribers(self, channel: str) -> list[int]: ...

    def send_private(self, channel: str, user: int, data: dict[str, Any]) -> bool: ...


def level_text(value: int | None) -> str | None:
    """A level in 1/10000 as a decimal string with four decimals (``12500`` -> ``1.2500``)."""
    if value is None:
        return None
    whole, frac = divmod(value, 10_000)
    return f"{whole}.{frac:04d}"


class MarginChannel:
    """Feeds the ``margin`` channel from the core's events (a fan-out consumer)."""

    def __init__(
        self,
        sink: PrivateSink,
        state: MarginStateReader,
        fmt: Formatter,
        owner_of: Callable[[int], int | None] | None = None,
        prefetch: Callable[[list[int]], Awaitable[None]] | None = None,
    ) -> None:
        """``prefetch``: loads the figures of the users about to be flushed (a replica,
        whose state reader answers from published figures, ADR 0033)."""
        self.sink = sink
        self._prefetch = prefetch
        self.state = state
        self.fmt = fmt
        self._owner_of = owner_of
        self._dirty: set[int] = set()
        self._all_dirty = False
        self._last: dict[int, list[dict[str, Any]]] = {}
        self.sent_levels = 0
        self.sent_notices = 0

    def _owner(self, account: int) -> int | None:
        if account >= 0 or self._owner_of is None:
            return None
        return self._owner_of(account)

    def apply(self, seq: int, ts: int, events: Sequence[Event]) -> None:
        sink = self.sink
        for e in events:
            if isinstance(e, MarkPrice):
                self._all_dirty = True
            elif isinstance(e, Trade):
                for acct in (e.maker_user, e.taker_user):
                    owner = self._owner(acct)
                    if owner is not None:
                        self._dirty.add(owner)
            elif isinstance(e, InterestCharged | Borrowed | Repaid | MarginTransferred):
                self._dirty.add(e.user)
            elif isinstance(
                e, MarginCall | LiquidationStarted | LiquidationFill | LiquidationFinished
            ):
                self._dirty.add(e.user)
                if sink.subscribed(CHANNEL, e.user):
                    data = self._notice(seq, ts, e)
                    if sink.send_private(CHANNEL, e.user, data):
                        self.sent_notices += 1

    def touch(self, users: Iterable[int], marks_moved: bool = False) -> None:
        """Mark users (or, with ``marks_moved``, everyone) for the next flush: a
        replica's change notices from the core process."""
        self._dirty.update(users)
        if marks_moved:
            self._all_dirty = True

    def _notice(self, seq: int, ts: int, e: Event) -> dict[str, Any]:
        fmt = self.fmt
        wallet = self._wallet_name(e.wallet)  # type: ignore[attr-defined]
        out: dict[str, Any] = {"type": "", "seq": seq, "ts": ts, **wallet}
        if isinstance(e, MarginCall):
            out.update(
                type="margin_call",
                margin_level=level_text(e.level),
                margin_call_level=level_text(e.margin_call_level),
                liquidation_level=level_text(e.liquidation_level),
            )
        elif isinstance(e, LiquidationStarted):
            out.update(
                type="liquidation_started",
                margin_level=level_text(e.level),
                liquidation_level=level_text(e.liquidation_level),
                assets_value=fmt.amount(e.valuation_asset, e.assets),
                liabilities_value=fmt.amount(e.valuation_asset, e.liabilities),
                valuation_asset=e.valuation_asset,
            )
        elif isinstance(e, LiquidationFill):
            out.update(
                type="liquidation_fill",
                order_id=e.order_id,
                order_symbol=e.symbol,
                side=e.side,
                limit=fmt.price(e.symbol, e.limit),
                qty=fmt.qty(e.symbol, e.qty),
                filled=fmt.qty(e.symbol, e.filled),
            )
        elif isinstance(e, LiquidationFinished):
            valuation = self._valuation()
            out.update(
                type="liquidation_finished",
                fee=e.fee if valuation is None else fmt.amount(valuation, e.fee),
                fee_asset=valuation,
                taken_over={a: fmt.amount(a, v) for a, v in sorted(e.taken_over.items())},
                insurance_paid={a: fmt.amount(a, v) for a, v in sorted(e.insurance_paid.items())},
                pool_loss={a: fmt.amount(a, v) for a, v in sorted(e.pool_loss.items())},
                left={a: fmt.amount(a, v) for a, v in sorted(e.left.items())},
            )
        return out

    def _valuation(self) -> str | None:
        try:
            return self.state.config().valuation_asset
        except Exception:
            return None

    def _wallet_name(self, wallet: int) -> dict[str, Any]:
        owner = self._owner(wallet)
        if owner is not None:
            try:
                for w in self.state.wallets(owner):
                    if w.wallet == wallet:
                        return {"wallet": w.kind, "symbol": w.symbol}
            except Exception:
                pass
        return {"wallet": None, "symbol": None}

    def _levels(self, wallets: list[WalletState], valuation: str | None) -> list[dict[str, Any]]:
        fmt = self.fmt
        val = valuation or ""
        out = []
        for w in wallets:
            liq = None
            if w.liquidation is not None:
                sym, direction, price = w.liquidation
                liq = {
                    "symbol": sym,
                    "when_mark": "at_or_below" if direction > 0 else "at_or_above",
                    "price": fmt.price(sym, price),
                }
            out.append(
                {
                    "wallet": w.kind,
                    "symbol": w.symbol,
                    "margin_level": level_text(w.level),
                    "assets_value": fmt.amount(val, w.assets_value),
                    "liabilities_value": fmt.amount(val, w.liabilities_value),
                    "margin_call": w.called,
                    "liquidation_price": liq,
                }
            )
        return out

    def due(self) -> list[int]:
        """The subscribed users to flush now (taken: marks cleared)."""
        sink = self.sink
        if self._all_dirty:
            users = set(sink.subscribers(CHANNEL))
        else:
            users = {u for u in self._dirty if sink.subscribed(CHANNEL, u)}
            # a new subscription gets its first update at the next flush
            users.update(u for u in sink.subscribers(CHANNEL) if u not in self._last)
        self._dirty.clear()
        self._all_dirty = False
        return sorted(users)

    def flush(self) -> int:
        """Send the coalesced level updates; returns how many messages went out."""
        return self.send(self.due())

    def send(self, users: list[int]) -> int:
        """Send ``users`` their level update where a figure changed."""
        sink = self.sink
        if not users or not self.state.available:
            return 0
        valuation = self._valuation()
        sent = 0
        for user in users:
            try:
                state = self.state.wallets(user)
            except MarginUnavailable:
                self._dirty.add(user)  # not loaded (a replica): the next flush
                continue
            wallets = self._levels(state, valuation)
            if self._last.get(user) == wallets:
                continue
            self._last[user] = wallets
            if sink.send_private(CHANNEL, user, {"type": "level", "wallets": wallets}):
                sent += 1
        # forget users who left, so a new subscription gets a first update
        listening = set(sink.subscribers(CHANNEL))
        for user in [u for u in self._last if u not in listening]:
            del self._last[user]
        self.sent_levels += sent
        return sent

    async def run(self, interval_s: float) -> None:
        """Flush every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                users = self.due()
                if self._prefetch is not None and users:
                    await self._prefetch(users)
                self.send(users)
            except Exception:
                log.exception("margin channel flush failed")
