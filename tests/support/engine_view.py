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
    NaiveReleased,
    NaiveTrade,
    Outcome,
)
from tradewind.core.engine import Core
from tradewind.core.events import (
    Event,
    OrderAmended,
    OrderCancelled,
    OrderReleased,
    Rejected,
    Trade,
)


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


def releases_of(events: list[Event]) -> list[NaiveReleased]:
    return [
        NaiveReleased(e.id, e.user, e.symbol, e.amount)
        for e in events
        if isinstance(e, OrderReleased)
    ]


def rejects_of(events: list[Event]) -> list[NaiveReject]:
    return [NaiveReject(e.op, e.id, e.user, e.reason) for e in events if isinstance(e, Rejected)]


def amends_of(events: list[Event]) -> list[NaiveAmended]:
    return [
        NaiveAmended(e.id, e.user, e.symbol, e.price, e.qty, e.locked, e.kept_priority)
        for e in events
        if isinstance(e, OrderAmended)
    ]


def outcomes_of(events: list[Event]) -> list[Outcome]:
    """The events the reference model knows, as its outcomes, in the engine's order."""
    out: list[Outcome] = []
    for e in events:
        if isinstance(e, Trade):
            out.extend(trades_of([e]))
        elif isinstance(e, OrderCancelled):
            out.extend(cancels_of([e]))
        elif isinstance(e, OrderReleased):
            out.extend(releases_of([e]))
        elif isinstance(e, OrderAmended):
            out.extend(amends_of([e]))
        elif isinstance(e, Rejected):
            out.extend(rejects_of([e]))
    return out
