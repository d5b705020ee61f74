"""The events are a complete ledger: every account's available and locked, per asset,
rebuilt from events alone, equals the core's balances after every command.

Money moves only through ``Deposited``, ``ExpensePaid``, ``WithdrawalHeld`` / ``Released`` /
``Settled``,
``Transferred``, ``OrderAccepted.locked``, ``Trade`` (fees to account 0),
``OrderCancelled.unlocked``, ``OrderReleased.amount`` and ``OrderAmended.locked``. The
ledger also follows each order's hold: it only ever shrinks through trades, cancels and
releases (or changes with an amendment), and an order that is over holds nothing.

Without ``OrderReleased`` (as before it existed, when a taker's price improvement and a
market buy's unused band went back silently) every command that releases would leave
the ledger off by exactly the released amounts: too little available, too much locked.
(Later the error can partly hide: ``OrderAmended.locked`` is absolute, so an amendment
of an order whose release was missed re-syncs that order's hold.)
"""

from __future__ import annotations

import copy
import random
from collections import defaultdict
from typing import Any

from tests.unit.helpers import (
    LOT,
    START,
    USERS,
    Cmd,
    Exchange,
    amend,
    brief,
    buy,
    cancel,
    limit,
    market,
    sell,
    stop,
    tick,
)
from tradewind.core.events import (
    AssetAdded,
    Deposited,
    Event,
    ExpensePaid,
    FeesSet,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderReleased,
    OrderTriggered,
    Rejected,
    SymbolAdded,
    SymbolHalted,
    SymbolResumed,
    TierSet,
    Trade,
    Transferred,
    WithdrawalHeld,
    WithdrawalReleased,
    WithdrawalSettled,
)

U, B, E = "USDT", "BTC", "ETH"
BTC, ETH = "BTC-USDT", "ETH-USDT"
FEES = 0  # the fee account
# Events that move no money; any other event type fails the ledger, so that a new event
# that moves money cannot go unaccounted.
NO_MONEY = (AssetAdded, FeesSet, TierSet, Rejected, OrderTriggered, SymbolHalted, SymbolResumed)


class Hold:
    """What one open order (or untriggered stop) holds, as seen from events."""

    __slots__ = ("amount", "asset", "user")

    def __init__(self, user: int, asset: str, amount: int) -> None:
        self.user, self.asset, self.amount = user, asset, amount


class EventLedger:
    """Balances and order holds rebuilt from events alone."""

    def __init__(self, *, with_releases: bool = True) -> None:
        self.with_releases = with_releases
        self.symbols: dict[str, tuple[str, str]] = {}  # symbol -> (base, quote)
        self.bal: defaultdict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
        self.holds: dict[int, Hold] = {}
        self.over: set[int] = set()  # orders that ended in the current command

    def apply(self, events: list[Event]) -> None:
        for e in events:
            self._apply(e)
        # Filled or cancelled: by the end of the command the order holds nothing.
        for oid in sorted(self.over):
            h = self.holds.pop(oid)
            if self.with_releases:
                assert h.amount == 0, f"order {oid} ended holding {h.amount} {h.asset}"
        self.over.clear()

    def balances(self) -> dict[tuple[int, str], tuple[int, int]]:
        return {k: (a, lk) for k, (a, lk) in self.bal.items() if a or lk}

    def _move(self, user: int, asset: str, available: int = 0, locked: int = 0) -> None:
        b = self.bal[user, asset]
        b[0] += available
        b[1] += locked
        assert b[0] >= 0 and b[1] >= 0, f"negative {user}/{asset}: {b}"

    def _unhold(self, oid: int, amount: int, asset: str | None = None) -> Hold:
        """``amount`` of order ``oid``'s hold leaves it (to a trade or back to available)."""
        h = self.holds[oid]
        assert asset is None or h.asset == asset, f"order {oid} holds {h.asset}, not {asset}"
        h.amount -= amount
        assert h.amount >= 0, f"order {oid} paid {amount} more than it held"
        self._move(h.user, h.asset, locked=-amount)
        return h

    def _apply(self, e: Event) -> None:
        if isinstance(e, NO_MONEY):
            return
        if isinstance(e, SymbolAdded):
            self.symbols[e.symbol] = (e.base, e.quote)
        elif isinstance(e, Deposited):
            self._move(e.user, e.asset, available=e.amount)
        elif isinstance(e, WithdrawalHeld):
            self._move(e.user, e.asset, available=-e.amount, locked=e.amount)
        elif isinstance(e, WithdrawalReleased):
            self._move(e.user, e.asset, available=e.amount, locked=-e.amount)
        elif isinstance(e, WithdrawalSettled):
            self._move(e.user, e.asset, locked=-e.amount)
        elif isinstance(e, ExpensePaid):
            self._move(e.user, e.asset, available=-e.amount)
        elif isinstance(e, Transferred):
            self._move(e.user, e.asset, available=-e.amount)
            self._move(e.to, e.asset, available=e.amount)
        elif isinstance(e, OrderAccepted):
            base, quote = self.symbols[e.symbol]
            asset = quote if e.side == "buy" else base
            assert e.id not in self.holds, f"order {e.id} accepted twice"
            self.holds[e.id] = Hold(e.user, asset, e.locked)
            self._move(e.user, asset, available=-e.locked, locked=e.locked)
        elif isinstance(e, Trade):
            base, quote = self.symbols[e.symbol]
            if e.taker_side == "buy":
                buyer, bought, buyer_fee = e.taker_user, e.taker_id, e.taker_fee
                seller, sold, seller_fee = e.maker_user, e.maker_id, e.maker_fee
            else:
                buyer, bought, buyer_fee = e.maker_user, e.maker_id, e.maker_fee
                seller, sold, seller_fee = e.taker_user, e.taker_id, e.taker_fee
            self._unhold(bought, e.quote, quote)
            self._move(buyer, base, available=e.base - buyer_fee)
            self._unhold(sold, e.base, base)
            self._move(seller, quote, available=e.quote - seller_fee)
            self._move(FEES, base, available=buyer_fee)
            self._move(FEES, quote, available=seller_fee)
            if not e.maker_left:
                self.over.add(e.maker_id)
            if not e.taker_left:  # a market buy by quote amount: 0 after each level
                self.over.add(e.taker_id)
        elif isinstance(e, OrderCancelled):
            h = self._unhold(e.id, e.unlocked)
            self._move(h.user, h.asset, available=e.unlocked)
            self.over.add(e.id)
        elif isinstance(e, OrderReleased):
            if self.with_releases:
                h = self._unhold(e.id, e.amount)
                assert h.user == e.user
                self._move(h.user, h.asset, available=e.amount)
        elif isinstance(e, OrderAmended):
            h = self.holds[e.id]
            delta = e.locked - h.amount
            h.amount = e.locked
            self._move(h.user, h.asset, available=-delta, locked=delta)
        else:
            raise AssertionError(f"the ledger does not know {e!r}")


class LedgerExchange(Exchange):
    """An :class:`Exchange` whose every command's events also go to event ledgers, which
    must agree with the core after every command."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = EventLedger()
        self.events: list[Event] = []
        self.releasing_commands = 0
        self.released_resting = 0  # releases of a taker that then rests
        self.released_done = 0  # releases of a taker that filled completely

    def do(self, cmd: Cmd, ts: int | None = None) -> list[Event]:
        events = super().do(cmd, ts)
        self.events.extend(events)
        if any(isinstance(e, OrderReleased) for e in events):
            silent = copy.deepcopy(self.ledger)
            silent.with_releases = False
            silent.apply(events)
        else:
            silent = None
        self.ledger.apply(events)
        core = self.core_balances()
        assert self.ledger.balances() == core, f"after {cmd!r}: {events!r}"
        held = {oid: h.amount for oid, h in self.ledger.holds.items()}
        assert held == self.core_holds(), f"after {cmd!r}: {events!r}"
        if silent is not None:
            self.assert_off_by_the_releases(silent, events, core)
        for e in events:
            if isinstance(e, OrderReleased):
                if e.id in self.core.orders:
                    self.released_resting += 1
                else:
                    self.released_done += 1
        return events

    def core_balances(self) -> dict[tuple[int, str], tuple[int, int]]:
        return {
            (user, asset): (b.available, b.locked)
            for user, acct in self.core.accounts.items()
            for asset, b in acct.items()
            if b.available or b.locked
        }

    def core_holds(self) -> dict[int, int]:
        core = self.core
        return {oid: o.locked for oid, o in core.orders.items()} | {
            sid: s.locked for sid, s in core.stops.items()
        }

    def released(self) -> list[tuple[int, int, int]]:
        """Every release so far as ``(id, user, amount)``."""
        return [(e.id, e.user, e.amount) for e in self.events if isinstance(e, OrderReleased)]

    def assert_off_by_the_releases(
        self,
        silent: EventLedger,
        events: list[Event],
        core: dict[tuple[int, str], tuple[int, int]],
    ) -> None:
        """``silent`` saw this command's events but ignored its releases: each user's
        quote is short in available and over in locked by exactly what was released to
        them, and nothing else differs."""
        off: defaultdict[tuple[int, str], int] = defaultdict(int)
        for e in events:
            if isinstance(e, OrderReleased):
                off[e.user, self.ledger.symbols[e.symbol][1]] += e.amount
        got = silent.balances()
        assert got != core
        fixed = {}
        for key in set(got) | set(off):
            a, lk = got.get(key, (0, 0))
            fixed[key] = (a + off[key], lk - off[key])
        assert {k: v for k, v in fixed.items() if v != (0, 0)} == core, events
        self.releasing_commands += 1


def eth(id: int, user: int, side: str, price: int, qty: int, **kw: Any) -> dict[str, Any]:
    return limit(id, user, side, price, qty, symbol=ETH, **kw)


def setup() -> LedgerExchange:
    """The standard BTC-USDT market (notional 1) plus ETH-USDT with notional 10: ETH with
    4 decimals, tick 100, lot 1000, so a lot at price p costs 10 * p USDT minor units.
    Fees: 10 bps maker, 20 bps taker; user 4 is on tier 1 (0 maker, 50 taker)."""
    ex = LedgerExchange()
    for asset, decimals in ((B, 8), (E, 4), (U, 6)):
        ex.ok({"op": "asset", "asset": asset, "decimals": decimals})
    for symbol, base, tick_size, lot_size in ((BTC, B, 10_000, LOT), (ETH, E, 100, 1_000)):
        ex.ok(
            {
                "op": "symbol",
                "symbol": symbol,
                "base": base,
                "quote": U,
                "tick_size": tick_size,
                "lot_size": lot_size,
            }
        )
    ex.ok({"op": "fees", "maker_bps": 10, "taker_bps": 20})
    ex.ok({"op": "fees", "tier": 1, "maker_bps": 0, "taker_bps": 50})
    ex.ok({"op": "tier", "user": 4, "tier": 1})
    for u in USERS:
        for asset in (B, E, U):
            ex.ok({"op": "deposit", "user": u, "asset": asset, "amount": START})
    return ex


def test_ledger_from_events_matches_the_core_over_a_mixed_scenario():
    ex = setup()
    # Each row: command and the events it must give; amounts worked out by hand. A buy
    # of q lots at limit p locks p * q (BTC-USDT) and pays the maker's price per lot.
    ex.run(
        [
            (sell(1, 1, 100, 2), None),
            (sell(2, 1, 101, 3), None),
            # limit taker that rests: locks 103 * 6 = 618, pays 2 * 100 + 3 * 101 = 503,
            # rests 1 at 103 holding 103: 618 - 503 - 103 = 12 released
            (
                buy(3, 2, 103, 6),
                [
                    ("accepted", 3, 618, "new"),
                    ("trade", 1, 3, 100, 2),
                    ("trade", 2, 3, 101, 3),
                    ("released", 3, 12),
                ],
            ),
            (sell(4, 3, 104, 2), None),
            # IOC filled in full: locks 212, pays 208, 4 released
            (
                buy(5, 4, 106, 2, tif="IOC"),
                [("accepted", 5, 212, "new"), ("trade", 4, 5, 104, 2), ("released", 5, 4)],
            ),
            (sell(6, 1, 105, 1), None),
            # IOC remainder: locks 321, pays 105, the cancel unlocks 216 (no release)
            (
                buy(7, 2, 107, 3, tif="IOC"),
                [
                    ("accepted", 7, 321, "new"),
                    ("trade", 6, 7, 105, 1),
                    ("cancelled", 7, 2, 216, "ioc"),
                ],
            ),
            (sell(8, 3, 110, 3), None),
            # market buy by qty: cap floor(110 * 1.05) = 115, locks 230, pays 220: the
            # unused band of 10 is released
            (
                market(9, 4, "buy", qty=2),
                [("accepted", 9, 230, "new"), ("trade", 8, 9, 110, 2), ("released", 9, 10)],
            ),
            # the book runs out: locks 345, pays 110, the remainder's cancel unlocks 235
            (
                market(10, 2, "buy", qty=3),
                [
                    ("accepted", 10, 345, "new"),
                    ("trade", 8, 10, 110, 1),
                    ("cancelled", 10, 2, 235, "market_remainder"),
                ],
            ),
            (sell(11, 1, 108, 2), None),
            # market buy by quote amount: 2 lots at 108 = 216 of 250; 34 back by cancel
            (
                market(12, 3, "buy", quote_qty=250),
                [
                    ("accepted", 12, 250, "new"),
                    ("trade", 11, 12, 108, 2),
                    ("cancelled", 12, 0, 34, "market_remainder"),
                ],
            ),
            # a market sell hits the resting 1 at 103 of order 3: sells release nothing
            (
                market(13, 1, "sell", qty=1),
                [("accepted", 13, 10_000, "new"), ("trade", 3, 13, 103, 1)],
            ),
            # stop-market buy: limit floor(105 * 1.05) = 110, locks 220
            (stop(14, 2, "buy", "stop_market", 105, 2), [("accepted", 14, 220, "untriggered")]),
            (sell(15, 3, 105, 1), None),
            (sell(16, 3, 106, 2), None),
            # 105 fires it; cap min(110, floor(106 * 1.05) = 111) = 110; pays 212: 8 back
            (
                buy(17, 4, 105, 1),
                [
                    ("accepted", 17, 105, "new"),
                    ("trade", 15, 17, 105, 1),
                    ("triggered", 14, 105),
                    ("trade", 16, 14, 106, 2),
                    ("released", 14, 8),
                ],
            ),
            # stop-limit buy at 109: locks 327; fires at 107, buys 1 at 108, rests 2 at
            # 109 holding 218: 327 - 108 - 218 = 1 released
            (
                stop(18, 1, "buy", "stop_limit", 107, 3, price=109),
                [("accepted", 18, 327, "untriggered")],
            ),
            (sell(19, 3, 107, 1), None),
            (sell(20, 3, 108, 1), None),
            (
                buy(21, 4, 107, 1),
                [
                    ("accepted", 21, 107, "new"),
                    ("trade", 19, 21, 107, 1),
                    ("triggered", 18, 107),
                    ("trade", 20, 18, 108, 1),
                    ("released", 18, 1),
                ],
            ),
            # crossing amend: 100 x 4 (400) to 112 x 4 (448); pays 2 * 111 = 222, rests 2
            # at 112 holding 224: 448 - 222 - 224 = 2 released
            (sell(22, 3, 111, 2), None),
            (buy(23, 2, 100, 4), [("accepted", 23, 400, "new")]),
            (
                amend(23, 2, 4, price=112),
                [
                    ("amended", 23, 112, 4, 448, False),
                    ("trade", 22, 23, 111, 2),
                    ("released", 23, 2),
                ],
            ),
            # amends that only move the hold: 2 at 109 down to 1 (218 -> 109); a sell up
            (amend(18, 1, 1), [("amended", 18, 109, 1, 109, True)]),
            (sell(24, 1, 120, 1), None),
            (amend(24, 1, 3), [("amended", 24, 120, 3, 30_000, False)]),
            (cancel(24, 1), [("cancelled", 24, 3, 30_000, "user")]),
            # post-only amend that would take: rejected, nothing moves
            (sell(26, 4, 118, 1), None),
            (buy(25, 3, 90, 1, post_only=True), None),
            (amend(25, 3, 1, price=118), [("rejected", "post_only_would_take")]),
            # self-trade prevention cancels the own maker, then a fill at 116 of a 117
            # limit: locks 234, pays 116, rests 1 holding 117: 1 released
            (sell(27, 2, 116, 1), None),
            (sell(29, 1, 116, 1), None),
            (
                buy(28, 2, 117, 2, stp="cancel_maker"),
                [
                    ("accepted", 28, 234, "new"),
                    ("cancelled", 27, 1, 10_000, "stp"),
                    ("trade", 29, 28, 116, 1),
                    ("released", 28, 1),
                ],
            ),
            # FOK filled in full at 118 of 120: 2 released
            (
                buy(36, 3, 120, 1, tif="FOK"),
                [("accepted", 36, 120, "new"), ("trade", 26, 36, 118, 1), ("released", 36, 2)],
            ),
            # ETH-USDT, notional 10: locks 52 * 3 * 10 = 1560, pays 2 * 50 * 10 = 1000,
            # rests 1 holding 520: 40 released
            (eth(31, 1, "sell", 50, 2), None),
            (
                eth(32, 3, "buy", 52, 3),
                [("accepted", 32, 1_560, "new"), ("trade", 31, 32, 50, 2), ("released", 32, 40)],
            ),
            # funds: withdrawals held, released, settled; a transfer to a new account
            ({"op": "withdraw_hold", "id": 1, "user": 1, "asset": U, "amount": 5_000}, None),
            ({"op": "withdraw_release", "id": 1}, None),
            ({"op": "withdraw_hold", "id": 2, "user": 2, "asset": B, "amount": 10_000}, None),
            ({"op": "withdraw_settle", "id": 2}, None),
            ({"op": "transfer", "user": 3, "to": 9, "asset": U, "amount": 1_234}, None),
            # user 9's market buy on ETH: cap floor(60 * 1.05) = 63, locks 630, pays 600
            (eth(34, 1, "sell", 60, 1), None),
            (
                market(33, 9, "buy", symbol=ETH, qty=1),
                [("accepted", 33, 630, "new"), ("trade", 34, 33, 60, 1), ("released", 33, 30)],
            ),
            ({"op": "halt", "symbol": ETH}, None),
            ({"op": "resume", "symbol": ETH}, None),
            # GTD expiry, an untriggered stop, then cancel_all of user 1
            (buy(30, 3, 95, 1, tif="GTD", expire_ts=2_000), None),
            (stop(35, 1, "sell", "stop_market", 80, 1), None),
            (tick(2_000), [("cancelled", 30, 1, 95, "expired")]),
            (
                {"op": "cancel_all", "user": 1},
                [("cancelled", 18, 1, 109, "user"), ("cancelled", 35, 1, 10_000, "user")],
            ),
        ]
    )
    assert ex.released() == [
        (3, 2, 12),
        (5, 4, 4),
        (9, 4, 10),
        (14, 2, 8),
        (18, 1, 1),
        (23, 2, 2),
        (28, 2, 1),
        (36, 3, 2),
        (32, 3, 40),
        (33, 9, 30),
    ]
    assert sum(1 for e in ex.events if isinstance(e, Trade) and (e.maker_fee or e.taker_fee))
    assert ex.ledger.balances()[FEES, B] == ex.core_balances()[FEES, B]
    assert ex.releasing_commands == 10
    assert (ex.released_resting, ex.released_done) == (5, 5)


def random_commands(rng: random.Random, n: int) -> list[tuple[dict[str, Any], int]]:
    """``n`` commands (with their ts) over both symbols: every order type and time in
    force, post-only, icebergs, every STP mode, cancels, amends, cancel_all, withdrawals,
    transfers, fee changes and ticks, at prices close enough to cross often."""
    out: list[tuple[dict[str, Any], int]] = []
    mid = {BTC: 100, ETH: 50}
    placed: list[tuple[int, int, str]] = []
    ts = 1_000
    next_wid = 1
    for oid in range(1, n + 1):
        ts += rng.randint(0, 3)
        user = rng.choice(USERS)
        sym = rng.choice((BTC, ETH))
        side = rng.choice(("buy", "sell"))
        price = mid[sym] + rng.randint(-4, 4)
        qty = rng.randint(1, 6)
        stp = rng.choice(("cancel_taker", "cancel_maker", "cancel_both", "none"))
        r = rng.random()
        cmd: dict[str, Any]
        if r < 0.45:
            tif = rng.choice(("GTC", "GTC", "IOC", "FOK", "GTD"))
            kw: dict[str, Any] = {"tif": tif, "stp": stp}
            if tif == "GTD":
                kw["expire_ts"] = ts + rng.randint(1, 40)
            if tif in ("GTC", "GTD") and rng.random() < 0.2:
                kw["display_qty"] = rng.randint(1, 3)
            if tif in ("GTC", "GTD") and rng.random() < 0.15:
                kw["post_only"] = True
            cmd = limit(oid, user, side, price, qty, symbol=sym, **kw)
            placed.append((oid, user, sym))
        elif r < 0.53:
            if side == "buy" and rng.random() < 0.5:
                cmd = market(oid, user, side, symbol=sym, quote_qty=qty * mid[sym] * 7, stp=stp)
            else:
                cmd = market(oid, user, side, symbol=sym, qty=qty, stp=stp)
        elif r < 0.60:
            typ = rng.choice(("stop_market", "stop_limit", "take_profit", "take_profit_limit"))
            kw = {"symbol": sym, "stp": stp, "tif": rng.choice(("GTC", "IOC"))}
            if typ.endswith("limit"):
                kw["price"] = price + rng.randint(-2, 2)
            trigger = mid[sym] + rng.randint(-3, 3)
            cmd = stop(oid, user, side, typ, trigger, qty, **kw)
            placed.append((oid, user, sym))
        elif r < 0.72 and placed:
            pid, owner, psym = placed[-1 - min(int(rng.expovariate(1 / 6)), len(placed) - 1)]
            cmd = {"op": "cancel", "id": pid, "user": owner, "symbol": psym}
        elif r < 0.84 and placed:
            pid, owner, psym = placed[-1 - min(int(rng.expovariate(1 / 6)), len(placed) - 1)]
            cmd = {"op": "amend", "id": pid, "user": owner, "symbol": psym, "qty": qty}
            if rng.random() < 0.6:
                cmd["price"] = mid[psym] + rng.randint(-4, 4)
        elif r < 0.87:
            cmd = {"op": "cancel_all", "user": user}
            if rng.random() < 0.5:
                cmd["symbol"] = sym
        elif r < 0.91:
            asset = rng.choice((B, E, U))
            amount = rng.randint(1, 50_000)
            if rng.random() < 0.5:
                cmd = {"op": "withdraw_hold", "id": next_wid, "user": user, "asset": asset}
                cmd["amount"] = amount
                next_wid += 1
            else:
                op = rng.choice(("withdraw_release", "withdraw_settle"))
                cmd = {"op": op, "id": rng.randint(max(1, next_wid - 4), next_wid)}
        elif r < 0.915:  # few refs: some are paid already (duplicate_expense)
            cmd = {"op": "expense", "user": rng.choice((0, 9, *USERS)), "asset": rng.choice((B, U))}
            cmd["amount"] = rng.randint(1, 20_000)
            cmd["ref"] = f"network-fee:custody:{rng.randrange(40)}"
        elif r < 0.94:
            to = rng.choice((*USERS, 9))
            cmd = {"op": "transfer", "user": user, "to": to, "asset": rng.choice((B, E, U))}
            cmd["amount"] = rng.randint(1, 20_000)
        elif r < 0.97:
            cmd = {"op": "deposit", "user": rng.choice((*USERS, 9)), "asset": rng.choice((B, U))}
            cmd["amount"] = rng.randint(1, 100_000)
        elif r < 0.985:
            bps = (0, 1, 10, 25, 100)
            cmd = {"op": "fees", "maker_bps": rng.choice(bps), "taker_bps": rng.choice(bps)}
            cmd["tier"] = rng.choice((0, 1))
        else:
            cmd = tick(ts)
        out.append((cmd, ts))
    return out


def test_ledger_from_events_matches_the_core_over_a_random_stream():
    ex = setup()
    for cmd, ts in random_commands(random.Random(20_240_611), 6_000):
        ex.do(cmd, ts)
    kinds = [brief(e)[0] for e in ex.events]
    # The stream must exercise what the ledger is about.
    assert kinds.count("trade") > 800
    assert kinds.count("released") > 150
    assert ex.released_resting > 20 and ex.released_done > 100
    assert kinds.count("amended") > 100
    assert kinds.count("triggered") > 20
    released = {e.id: e for e in ex.events if isinstance(e, OrderReleased)}
    accepted = {e.id: e for e in ex.events if isinstance(e, OrderAccepted)}
    kinds_released = {(accepted[i].type, accepted[i].tif) for i in released}
    assert {("limit", "GTC"), ("limit", "IOC"), ("limit", "FOK"), ("market", "IOC")} <= (
        kinds_released
    )
    assert {"stop_market", "stop_limit"} <= {t for t, _ in kinds_released}
    assert any(isinstance(e, WithdrawalSettled) for e in ex.events)
    assert any(isinstance(e, Transferred) for e in ex.events)
    assert any(isinstance(e, ExpensePaid) for e in ex.events)
    assert ex.releasing_commands > 150
