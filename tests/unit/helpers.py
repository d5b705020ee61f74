"""Table-driven harness for the core's unit tests.

An :class:`Exchange` wraps a fresh :class:`~tradewind.core.engine.Core`, stamps every
command with an increasing ``seq`` (and the ``ts`` the row gives, else the last one),
and after *every* command asserts ``check_invariants(core) == []``. A command that is
rejected must yield exactly one :class:`Rejected` and leave ``state_hash()`` unchanged.

Commands are written as command-file dicts (``{"op": "place", ...}``), so a table row
reads like a line of the JSON command file. Events are compared in a compact tuple form
(see :func:`brief`), balances as ``{(user, asset): (available, locked)}``.

The standard market (:func:`standard`): BTC with 8 decimals, USDT with 6, BTC-USDT with
``tick_size`` 10000 (0.01 USDT) and ``lot_size`` 10000 (0.0001 BTC), so the notional
multiplier is 1: a fill of ``q`` lots at ``p`` ticks moves ``p * q`` USDT minor units and
``q * 10000`` BTC minor units. Users 1-4 each start with 1_000_000 USDT minor units and
1_000_000 BTC minor units (100 lots). Prices in the tests are small (about 100 ticks) so
that every expected amount is easy to compute by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from tradewind.core import commands as C
from tradewind.core.engine import Core
from tradewind.core.events import (
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderReleased,
    OrderTriggered,
    Rejected,
    Trade,
)
from tradewind.core.invariants import check_invariants

SYM = "BTC-USDT"
LOT = 10_000  # BTC minor units per lot
START = 1_000_000  # what each standard user starts with, in each asset
USERS = (1, 2, 3, 4)

Cmd = Mapping[str, Any] | C.Command
Balances = Mapping[tuple[int, str], tuple[int, int]]


def brief(e: Event) -> tuple[Any, ...]:
    """A compact, hand-writable form of an event.

    - ``("accepted", id, locked, status)``
    - ``("trade", maker_id, taker_id, price, qty)``
    - ``("cancelled", id, left, unlocked, reason)``
    - ``("released", id, amount)``: a hold the order no longer needs went back
    - ``("amended", id, price, qty, locked, kept_priority)``
    - ``("triggered", id, last_price)``
    - ``("rejected", reason)`` or ``("rejected", reason, filter)``
    - anything else: ``(tag, *fields)``
    """
    if isinstance(e, OrderAccepted):
        return ("accepted", e.id, e.locked, e.status)
    if isinstance(e, Trade):
        return ("trade", e.maker_id, e.taker_id, e.price, e.qty)
    if isinstance(e, OrderCancelled):
        return ("cancelled", e.id, e.left, e.unlocked, e.reason)
    if isinstance(e, OrderReleased):
        return ("released", e.id, e.amount)
    if isinstance(e, OrderAmended):
        return ("amended", e.id, e.price, e.qty, e.locked, e.kept_priority)
    if isinstance(e, OrderTriggered):
        return ("triggered", e.id, e.last_price)
    if isinstance(e, Rejected):
        if e.filter is not None:
            return ("rejected", e.reason, e.filter)
        return ("rejected", e.reason)
    tag = type(e).__struct_config__.tag
    return (tag, *msgspec.structs.astuple(e))


def to_command(cmd: Cmd) -> C.Command:
    if isinstance(cmd, C.Command):
        return cmd
    return msgspec.convert(dict(cmd), C.AnyCommand)  # type: ignore[arg-type]


class Exchange:
    """A core plus the bookkeeping every test wants checked after every command."""

    def __init__(self) -> None:
        self.core = Core()
        self.seq = 0
        self.ts = 0

    # ------------------------------------------------------------ applying commands

    def do(self, cmd: Cmd, ts: int | None = None) -> list[Event]:
        """Apply one command (stamped with the next seq and ``ts``); check invariants,
        and that a rejection is alone and changed nothing."""
        c = to_command(cmd)
        self.seq += 1
        if ts is not None:
            self.ts = ts
        elif c.ts:
            self.ts = c.ts
        c = msgspec.structs.replace(c, seq=self.seq, ts=self.ts)
        before = self.core.state_hash()
        events = self.core.apply(c)
        bad = check_invariants(self.core)
        assert bad == [], f"invariants broken after {c!r}: {bad}"
        if any(isinstance(e, Rejected) for e in events):
            # Only GTD expiries (which the command's ts causes before it is applied) may
            # precede the rejection; a rejection alone must leave the state unchanged.
            *first, last = events
            assert isinstance(last, Rejected), f"a rejection must come last: {events!r}"
            assert all(isinstance(e, OrderCancelled) and e.reason == "expired" for e in first), (
                f"a rejection must come alone: {events!r}"
            )
            if not first:
                assert self.core.state_hash() == before, f"rejected {c!r} changed the state"
        return events

    def ok(self, cmd: Cmd, ts: int | None = None) -> list[Event]:
        """Apply a command that must not be rejected."""
        events = self.do(cmd, ts)
        rej = [e for e in events if isinstance(e, Rejected)]
        assert not rej, f"unexpected rejection of {cmd!r}: {rej!r}"
        return events

    def reject(
        self, cmd: Cmd, reason: str, filter: str | None = None, ts: int | None = None
    ) -> Rejected:
        """Apply a command that must be rejected with ``reason`` (and ``filter``)."""
        events = self.do(cmd, ts)
        assert len(events) == 1 and isinstance(events[0], Rejected), events
        r = events[0]
        assert isinstance(r, Rejected)
        assert (r.reason, r.filter) == (reason, filter), r
        return r

    def run(self, rows: Iterable[Sequence[Any]]) -> None:
        """Run a table: each row is ``(command, expected_events[, expected_balances])``.

        ``expected_events`` is a list of :func:`brief` tuples (or ``None`` to skip the
        check); ``expected_balances`` maps ``(user, asset)`` to ``(available, locked)``."""
        for i, row in enumerate(rows):
            cmd, expected = row[0], row[1]
            events = self.do(cmd)
            if expected is not None:
                got = [brief(e) for e in events]
                assert got == list(expected), f"row {i}: {cmd!r}\n got {got}\nwant {expected}"
            if len(row) > 2 and row[2] is not None:
                self.assert_balances(row[2], f"row {i}: {cmd!r}")

    # ------------------------------------------------------------ views

    def bal(self, user: int, asset: str) -> tuple[int, int]:
        acct = self.core.accounts.get(user, {})
        b = acct.get(asset)
        return (0, 0) if b is None else (b.available, b.locked)

    def assert_balances(self, expected: Balances, where: str = "") -> None:
        got = {k: self.bal(*k) for k in expected}
        assert got == dict(expected), f"{where}\n got {got}\nwant {dict(expected)}"

    def book(self, symbol: str = SYM) -> tuple[list[tuple[int, int, int]], ...]:
        """``(bids, asks)``, best first, each entry ``(price, id, open qty)`` in queue
        order."""
        b = self.core.markets[symbol].book
        return tuple(
            [(p, o.id, o.qty) for p, orders in b.side_levels(buy) for o in orders]
            for buy in (True, False)
        )

    def bids(self, symbol: str = SYM) -> list[tuple[int, int, int]]:
        return self.book(symbol)[0]

    def asks(self, symbol: str = SYM) -> list[tuple[int, int, int]]:
        return self.book(symbol)[1]

    def depth(self, buy: bool, symbol: str = SYM) -> list[tuple[int, int]]:
        """Visible depth ``(price, visible qty)`` of one side, best first."""
        return self.core.markets[symbol].book.depth(buy, 0)

    def last_price(self, symbol: str = SYM) -> int | None:
        return self.core.markets[symbol].last_price

    def open_ids(self) -> set[int]:
        return set(self.core.orders) | set(self.core.stops)


def standard(**symbol: Any) -> Exchange:
    """The standard market (see the module docstring); ``symbol`` adds fields to the
    BTC-USDT ``symbol`` command (filters, ``market_band_bps``)."""
    ex = Exchange()
    ex.ok({"op": "asset", "asset": "BTC", "decimals": 8})
    ex.ok({"op": "asset", "asset": "USDT", "decimals": 6})
    ex.ok(
        {
            "op": "symbol",
            "symbol": SYM,
            "base": "BTC",
            "quote": "USDT",
            "tick_size": 10_000,
            "lot_size": LOT,
            **symbol,
        }
    )
    for u in USERS:
        ex.ok({"op": "deposit", "user": u, "asset": "BTC", "amount": START})
        ex.ok({"op": "deposit", "user": u, "asset": "USDT", "amount": START})
    return ex


# ------------------------------------------------------------ command shorthands


def limit(
    id: int, user: int, side: str, price: int, qty: int, symbol: str = SYM, **kw: Any
) -> dict[str, Any]:
    return {
        "op": "place",
        "id": id,
        "user": user,
        "symbol": symbol,
        "side": side,
        "price": price,
        "qty": qty,
        **kw,
    }


def buy(id: int, user: int, price: int, qty: int, **kw: Any) -> dict[str, Any]:
    return limit(id, user, "buy", price, qty, **kw)


def sell(id: int, user: int, price: int, qty: int, **kw: Any) -> dict[str, Any]:
    return limit(id, user, "sell", price, qty, **kw)


def market(id: int, user: int, side: str, symbol: str = SYM, **kw: Any) -> dict[str, Any]:
    return {
        "op": "place",
        "id": id,
        "user": user,
        "symbol": symbol,
        "side": side,
        "type": "market",
        **kw,
    }


def stop(
    id: int, user: int, side: str, type: str, stop_price: int, qty: int, **kw: Any
) -> dict[str, Any]:
    return {
        "op": "place",
        "id": id,
        "user": user,
        "symbol": SYM,
        "side": side,
        "type": type,
        "stop_price": stop_price,
        "qty": qty,
        **kw,
    }


def cancel(id: int, user: int, symbol: str = SYM) -> dict[str, Any]:
    return {"op": "cancel", "id": id, "user": user, "symbol": symbol}


def amend(id: int, user: int, qty: int, price: int | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"op": "amend", "id": id, "user": user, "symbol": SYM, "qty": qty}
    if price is not None:
        d["price"] = price
    return d


def tick(ts: int) -> dict[str, Any]:
    return {"op": "tick", "ts": ts}


def units(lots: int) -> int:
    """BTC minor units of ``lots`` lots."""
    return lots * LOT
