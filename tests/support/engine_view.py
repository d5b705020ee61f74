"""Read-only views of a :class:`~tradewind.core.engine.Core` for tests, in the same shapes
as the naive reference model's views, plus helpers that turn events into comparable
records."""

from __future__ import annotations

import msgspec

from tests.support.naive_matcher import (
    BookEntry,
    NaiveAmended,
    NaiveCancel,
    NaiveReject,
    NaiveTrade,
)
from tradewind.core.engine import Core
from tradewind.core.events import Event, OrderAmended, OrderCancelled, Rejected, Trade


def balance_view(core: Core) -> dict[tuple[int, str], tuple[int, int]]:
    """Non-zero balances as ``{(user, asset): (available, locked)}``."""
    return {
        (user, asset): (b.available, b.locked)
        for user, acct in core.accounts.items()
        for asset, b in acct.items()
        if b.available or b.locked
    }


def book_view(core: Core) -> list[BookEntry]:
    """Resting orders per symbol and side, in matching priority (best price, then FIFO)."""
    out: list[BookEntry] = []
    for symbol in sorted(core.markets):
        book = core.markets[symbol].book
        for buy, side in ((True, "buy"), (False, "sell")):
            for price, orders in book.side_levels(buy):
                out.extend(
                    BookEntry(symbol, side, price, o.id, o.user, o.qty, o.visible) for o in orders
                )
    return out


def trades_of(events: list[Event]) -> list[NaiveTrade]:
    return [NaiveTrade(**msgspec.structs.asdict(e)) for e in events if isinstance(e, Trade)]


def cancels_of(events: list[Event]) -> list[NaiveCancel]:
    return [
        NaiveCancel(e.id, e.user, e.symbol, e.left, e.unlocked, e.reason)
        for e in events
        if isinstance(e, OrderCancelled)
    ]


def rejects_of(events: list[Event]) -> list[NaiveReject]:
    return [NaiveReject(e.op, e.id, e.user, e.reason) for e in events if isinstance(e, Rejected)]


def amends_of(events: list[Event]) -> list[NaiveAmended]:
    return [
        NaiveAmended(e.id, e.user, e.symbol, e.price, e.qty, e.locked, e.kept_priority)
        for e in events
        if isinstance(e, OrderAmended)
    ]
