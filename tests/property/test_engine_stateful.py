"""Stateful property test of the core: random sequences of every command, with the core's
invariants checked after each step.

After every command:

* ``check_invariants(core)`` reports nothing;
* a rejected command yields one ``Rejected`` event and leaves ``state_hash`` unchanged
  (beyond the GTD expiries its later ``ts`` brings, which must equal those of a ``tick``);
* checked independently of ``check_invariants``: per asset, available + locked over all
  accounts (the fee account included) equals deposits minus settled withdrawals and
  expenses (``Expense``: what the exchange pays out itself, once per ref); no
  balance is negative; no book is crossed.

A ``snapshot_restore`` step checks that a restored snapshot has the same state hash and
continues on the restored core. At teardown, replaying every command on a fresh core gives
identical events and the same state hash (determinism).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from tests.support.engine_view import balance_view, book_view
from tradewind.core.commands import (
    AddAsset,
    AddSymbol,
    Amend,
    Cancel,
    CancelAll,
    Command,
    Deposit,
    Expense,
    Freeze,
    Halt,
    Place,
    Resume,
    SetFees,
    SetTier,
    Tick,
    Transfer,
    Unfreeze,
    WithdrawHold,
    WithdrawRelease,
    WithdrawSettle,
)
from tradewind.core.engine import Core
from tradewind.core.events import (
    Deposited,
    Event,
    ExpensePaid,
    OrderCancelled,
    Rejected,
    WithdrawalSettled,
)
from tradewind.core.invariants import check_invariants

USERS = (1, 2, 3, 4)
ACCOUNTS = (0, *USERS)  # 0 is the fee account
ASSETS = ("BTC", "ETH", "USDT")
SYMBOLS = ("BTC-USDT", "ETH-USDT", "ETH-BTC")
MID_PRICE = {"BTC-USDT": 100, "ETH-USDT": 50, "ETH-BTC": 40}
UNIT = {"BTC": 10_000, "ETH": 1_000, "USDT": 500}
SETUP: tuple[Command, ...] = (
    AddAsset(asset="BTC", decimals=8),
    AddAsset(asset="ETH", decimals=4),
    AddAsset(asset="USDT", decimals=6),
    # k = 1: a lot at price p costs p USDT minor units.
    AddSymbol(symbol="BTC-USDT", base="BTC", quote="USDT", tick_size=10_000, lot_size=10_000),
    # k = 10, with every filter: lots 2..40, notional >= 1200, limit prices within 5% of
    # the last price, market orders within 3%.
    AddSymbol(
        symbol="ETH-USDT",
        base="ETH",
        quote="USDT",
        tick_size=100,
        lot_size=1_000,
        min_qty=2,
        max_qty=40,
        min_notional=1_200,
        price_band_bps=500,
        market_band_bps=300,
    ),
    # k = 1: tick 100 BTC minor units per ETH, lot 100 ETH minor units.
    AddSymbol(symbol="ETH-BTC", base="ETH", quote="BTC", tick_size=100, lot_size=100),
    SetFees(maker_bps=10, taker_bps=20),
    SetFees(tier=1, maker_bps=0, taker_bps=5),
    # Everyone starts with 200 units of each asset: enough for dozens of orders.
    *(Deposit(user=u, asset=a, amount=200 * UNIT[a]) for u in USERS for a in ASSETS),
)

FEE_BPS = st.sampled_from((0, 1, 10, 25, 100, 10_000))
TYPES = ("limit", "market", "stop_market", "stop_limit", "take_profit", "take_profit_limit")
STPS = ("cancel_taker", "cancel_maker", "cancel_both", "none")


@st.composite
def order_specs(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """Fields of a ``place`` (without seq, ts, id); ``expire_in`` is relative to now.

    ``kind`` picks the family: ``limit`` (GTC/IOC/FOK/GTD), ``passive`` (post-only and
    icebergs), ``market`` (by qty or by quote amount), ``stop`` (the four trigger types)
    or ``wild`` (a random mix of fields, mostly rejected: exercises the checks)."""
    # Mostly one symbol, so that its book gets deep and orders cross often.
    symbol = draw(st.sampled_from((SYMBOLS[0], SYMBOLS[0], SYMBOLS[0], *SYMBOLS[1:])))
    mid = MID_PRICE[symbol]
    prices = st.integers(min_value=mid - 4, max_value=mid + 4)
    side = draw(st.sampled_from(("buy", "sell")))
    spec: dict[str, Any] = {
        "user": draw(st.sampled_from(USERS)),
        "symbol": symbol,
        "side": side,
        "stp": draw(st.sampled_from(STPS)),
    }
    qty = draw(st.integers(min_value=1, max_value=12))
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        # Few distinct ids, so that some collide with a live order's (rejected).
        spec["client_id"] = draw(st.sampled_from(("a", "b", "c")))
    if kind == "wild":
        spec["type"] = draw(st.sampled_from(TYPES))
        spec.update(
            draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "price": prices,
                        "qty": st.just(qty),
                        "quote_qty": st.integers(min_value=1, max_value=5_000),
                        "tif": st.sampled_from(("GTC", "IOC", "FOK", "GTD")),
                        "expire_in": st.integers(min_value=-5, max_value=5_000),
                        "post_only": st.booleans(),
                        "stop_price": prices,
                        "display_qty": st.integers(min_value=1, max_value=4),
                    },
                )
            )
        )
    elif kind == "limit":
        spec.update(type="limit", price=draw(prices), qty=qty)
        tif = draw(st.sampled_from(("GTC", "IOC", "FOK", "GTD")))
        spec["tif"] = tif
        if tif == "GTD":
            spec["expire_in"] = draw(st.integers(min_value=1, max_value=5_000))
    elif kind == "passive":
        spec.update(type="limit", price=draw(prices), qty=qty)
        if draw(st.booleans()):
            spec["tif"] = "GTD"
            spec["expire_in"] = draw(st.integers(min_value=1, max_value=5_000))
        spec["post_only"] = draw(st.booleans())
        if qty > 1 and draw(st.booleans()):
            spec["display_qty"] = draw(st.integers(min_value=1, max_value=qty - 1))
    elif kind == "market":
        spec["type"] = "market"
        if side == "buy" and draw(st.booleans()):
            spec["quote_qty"] = draw(st.integers(min_value=1, max_value=12)) * mid * 10
        else:
            spec["qty"] = qty
    else:
        type_ = draw(st.sampled_from(TYPES[2:]))
        spec.update(type=type_, stop_price=draw(prices), qty=qty)
        if type_ in ("stop_limit", "take_profit_limit"):
            spec["price"] = draw(prices)
        spec["tif"] = draw(st.sampled_from(("GTC", "IOC")))
    return spec


class CoreMachine(RuleBasedStateMachine):
    orders = Bundle("orders")
    withdrawals = Bundle("withdrawals")

    def __init__(self) -> None:
        super().__init__()
        self.core = Core()
        self.seq = 0
        self.ts = 1_000
        self.next_order_id = 1
        self.next_withdrawal_id = 1
        self.log: list[tuple[Command, list[Event]]] = []
        self.deposited: Counter[str] = Counter()
        self.settled: Counter[str] = Counter()
        self.expensed: Counter[str] = Counter()
        self.expense_refs: set[str] = set()
        for cmd in SETUP:
            events = self.apply(type(cmd), **_fields(cmd))
            assert not any(isinstance(e, Rejected) for e in events), events

    # ------------------------------------------------------------- plumbing

    def apply(self, kind: type[Command], **fields: Any) -> list[Event]:
        self.seq += 1
        cmd = kind(seq=self.seq, ts=self.ts, **fields)
        before = self.core.snapshot()
        events = self.core.apply(cmd)
        self.log.append((cmd, events))
        if any(isinstance(e, Rejected) for e in events):
            self.check_rejection_changed_nothing(cmd, events, before)
        for e in events:
            if isinstance(e, Deposited):
                self.deposited[e.asset] += e.amount
            elif isinstance(e, WithdrawalSettled):
                self.settled[e.asset] += e.amount
            elif isinstance(e, ExpensePaid):
                assert e.ref not in self.expense_refs, f"expense {e.ref} paid twice"
                self.expense_refs.add(e.ref)
                self.expensed[e.asset] += e.amount
        return events

    def check_rejection_changed_nothing(
        self, cmd: Command, events: list[Event], before: bytes
    ) -> None:
        """A rejected command yields one ``Rejected``, last, and changes nothing.

        The one exception the core makes: GTD orders due at the command's (later) ``ts``
        expire first, whatever the command then does. So whatever comes before the
        ``Rejected`` must be exactly what a ``tick`` at that ``ts`` would do, and the
        state must be what that tick would leave."""
        *first, last = events
        assert isinstance(last, Rejected), f"{cmd!r} gave {events!r}"
        assert not any(isinstance(e, Rejected) for e in first), f"{cmd!r} gave {events!r}"
        reference = Core.restore(before)
        if first:
            assert reference.apply(Tick(seq=cmd.seq, ts=cmd.ts)) == first, (
                f"{cmd!r} was rejected but did more than expiring orders: {events!r}"
            )
        assert self.core.state_hash() == reference.state_hash(), f"rejected {cmd!r} changed state"

    # ------------------------------------------------------------- rules

    @initialize(target=orders)
    def seed_books(self) -> MultipleResults[tuple[int, int, str]]:
        """Start every book with a ladder: each user bids 1-4 ticks below the mid and
        asks 1-4 ticks above it, so that crossing orders and market orders trade."""
        placed = []
        for symbol in SYMBOLS:
            mid = MID_PRICE[symbol]
            for user in USERS:
                for side, price in (("buy", mid - user), ("sell", mid + user)):
                    placed.append(
                        self.place(
                            {"user": user, "symbol": symbol, "side": side, "price": price, "qty": 3}
                        )
                    )
        return multiple(*placed)

    @rule(
        user=st.sampled_from(ACCOUNTS),
        asset=st.sampled_from(ASSETS),
        units=st.integers(min_value=1, max_value=100),
    )
    def deposit(self, user: int, asset: str, units: int) -> None:
        self.apply(Deposit, user=user, asset=asset, amount=units * UNIT[asset])

    # Placing is the heart of it, so it gets several rules (hypothesis picks rules
    # uniformly): plain limits thrice, then each other family once.
    @rule(target=orders, spec=order_specs("limit"))
    def place_limit(self, spec: dict[str, Any]) -> tuple[int, int, str]:
        return self.place(spec)

    @rule(target=orders, spec=order_specs("limit"))
    def place_limit_again(self, spec: dict[str, Any]) -> tuple[int, int, str]:
        return self.place(spec)

    @rule(target=orders, spec=order_specs("limit"))
    def place_limit_once_more(self, spec: dict[str, Any]) -> tuple[int, int, str]:
        return self.place(spec)

    @rule(target=orders, spec=order_specs("passive"))
    def place_post_only_or_iceberg(self, spec: dict[str, Any]) -> tuple[int, int, str]:
        return self.place(spec)

    @rule(target=orders, spec=order_specs("market"))
    def place_market(self, spec: dict[str, Any]) -> tuple[int, int, str]:
        return self.place(spec)

    @rule(target=orders, spec=order_specs("stop"))
    def place_stop(self, spec: dict[str, Any]) -> tuple[int, int, str]:
        return self.place(spec)

    @rule(target=orders, spec=order_specs("wild"))
    def place_wild(self, spec: dict[str, Any]) -> tuple[int, int, str]:
        return self.place(spec)

    def place(self, spec: dict[str, Any]) -> tuple[int, int, str]:
        oid = self.next_order_id
        self.next_order_id += 1
        expire_in = spec.pop("expire_in", None)
        if expire_in is not None:
            spec["expire_ts"] = max(0, self.ts + expire_in)
        self.apply(Place, id=oid, **spec)
        return oid, spec["user"], spec["symbol"]

    @rule(
        order=orders,
        qty=st.integers(min_value=1, max_value=12),
        price_move=st.none() | st.integers(min_value=-3, max_value=3),
    )
    def amend(self, order: tuple[int, int, str], qty: int, price_move: int | None) -> None:
        oid, user, symbol = order
        price = None if price_move is None else MID_PRICE[symbol] + price_move
        self.apply(Amend, id=oid, user=user, symbol=symbol, qty=qty, price=price)

    @rule(order=orders, by_owner=st.booleans())
    def cancel(self, order: tuple[int, int, str], by_owner: bool) -> None:
        oid, user, symbol = order
        if not by_owner:
            user = USERS[(USERS.index(user) + 1) % len(USERS)]
        self.apply(Cancel, id=oid, user=user, symbol=symbol)

    @rule(
        target=withdrawals,
        user=st.sampled_from(ACCOUNTS),
        asset=st.sampled_from(ASSETS),
        units=st.integers(min_value=1, max_value=60),
    )
    def withdraw_hold(self, user: int, asset: str, units: int) -> int:
        wid = self.next_withdrawal_id
        self.next_withdrawal_id += 1
        self.apply(WithdrawHold, id=wid, user=user, asset=asset, amount=units * UNIT[asset])
        return wid

    @rule(wid=withdrawals, settle=st.booleans())
    def withdraw_finish(self, wid: int, settle: bool) -> None:
        # A withdrawal may be picked again: a second release/settle must be rejected.
        self.apply(WithdrawSettle if settle else WithdrawRelease, id=wid)

    @rule(
        user=st.sampled_from(ACCOUNTS),
        to=st.sampled_from(ACCOUNTS),
        asset=st.sampled_from(ASSETS),
        units=st.integers(min_value=1, max_value=60),
    )
    def transfer(self, user: int, to: int, asset: str, units: int) -> None:
        self.apply(Transfer, user=user, to=to, asset=asset, amount=units * UNIT[asset])

    @rule(
        user=st.sampled_from(ACCOUNTS),
        asset=st.sampled_from(ASSETS),
        units=st.integers(min_value=1, max_value=60),
        ref=st.integers(min_value=1, max_value=6),
    )
    def expense(self, user: int, asset: str, units: int, ref: int) -> None:
        # Few refs, so that a ref is often paid already (``duplicate_expense``).
        ref_text = f"network-fee:custody:{ref}"
        self.apply(Expense, user=user, asset=asset, amount=units * UNIT[asset], ref=ref_text)

    @rule(advance=st.integers(min_value=0, max_value=3_000))
    def tick(self, advance: int) -> None:
        self.ts += advance
        self.apply(Tick)

    @rule(advance=st.integers(min_value=1, max_value=3_000))
    def let_time_pass(self, advance: int) -> None:
        """The next command, whatever it is, carries a later ``ts``."""
        self.ts += advance

    # Rare operations share one rule so that they do not crowd out trading (and so that
    # a halted symbol is resumed more often than not, and books are not wiped often).
    @rule(
        op=st.sampled_from(
            ("cancel_all", "halt", "resume", "resume", "fees", "tier", "freeze", "unfreeze")
        ),
        user=st.sampled_from(USERS),
        symbol=st.none() | st.sampled_from(SYMBOLS),
        tier=st.integers(min_value=0, max_value=2),
        maker=FEE_BPS,
        taker=FEE_BPS,
    )
    def rare(
        self, op: str, user: int, symbol: str | None, tier: int, maker: int, taker: int
    ) -> None:
        if op == "cancel_all":
            self.apply(CancelAll, user=user, symbol=symbol)
        elif op in ("halt", "resume"):
            self.apply(Halt if op == "halt" else Resume, symbol=symbol or SYMBOLS[0])
        elif op == "fees":
            self.apply(SetFees, tier=tier, maker_bps=maker, taker_bps=taker)
        elif op in ("freeze", "unfreeze"):  # ADR 0031
            self.apply(Freeze if op == "freeze" else Unfreeze, user=user)
        else:
            self.apply(SetTier, user=user, tier=tier)

    @rule()
    def snapshot_restore(self) -> None:
        restored = Core.restore(self.core.snapshot())
        assert restored.state_hash() == self.core.state_hash()
        assert (restored.seq, restored.ts) == (self.core.seq, self.core.ts)
        self.core = restored

    # ------------------------------------------------------------- invariants

    @invariant()
    def core_invariants_hold(self) -> None:
        assert check_invariants(self.core) == []

    @invariant()
    def money_is_conserved_and_never_negative(self) -> None:
        balances = balance_view(self.core)
        totals: Counter[str] = Counter()
        for (user, asset), (available, locked) in balances.items():
            assert available >= 0 and locked >= 0, f"negative balance of {user} in {asset}"
            totals[asset] += available + locked
        for asset in ASSETS:
            expected = self.deposited[asset] - self.settled[asset] - self.expensed[asset]
            assert totals[asset] == expected, f"{asset}: {totals[asset]} != {expected}"

    @invariant()
    def frozen_accounts_hold_no_orders(self) -> None:
        """A freeze cancels everything of the user and the core refuses new orders."""
        for user in self.core.frozen:
            assert not self.core.user_orders.get(user), f"frozen user {user} has orders"

    @invariant()
    def no_book_is_crossed(self) -> None:
        for symbol in SYMBOLS:
            entries = [e for e in book_view(self.core) if e.symbol == symbol]
            bids = [e.price for e in entries if e.side == "buy"]
            asks = [e.price for e in entries if e.side == "sell"]
            if bids and asks:
                assert max(bids) < min(asks), f"{symbol} crossed: {max(bids)} >= {min(asks)}"
            assert all(e.qty > 0 for e in entries)

    def teardown(self) -> None:
        fresh = Core()
        for cmd, events in self.log:
            assert fresh.apply(cmd) == events, f"replay of {cmd!r} differs"
        assert fresh.state_hash() == self.core.state_hash()
        assert fresh.snapshot() == self.core.snapshot()


def _fields(c: Command) -> dict[str, Any]:
    return {f: getattr(c, f) for f in c.__struct_fields__ if f not in ("seq", "ts")}


CoreMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCoreMachine = CoreMachine.TestCase


def test_rejected_command_at_a_later_ts_expires_due_orders_and_does_nothing_else() -> None:
    """docs/core.md: a GTD order is cancelled "by the first command whose ts >= expire_ts,
    before that command runs" -- a rejected one included. Besides those expiries the
    rejected command changes nothing: the state equals that after a bare tick."""
    setup: list[Command] = [
        AddAsset(seq=1, ts=1_000, asset="BTC", decimals=8),
        AddAsset(seq=2, ts=1_000, asset="USDT", decimals=6),
        AddSymbol(
            seq=3, ts=1_000, symbol="BTC-USDT", base="BTC", quote="USDT", tick_size=10_000,
            lot_size=10_000,
        ),
        Deposit(seq=4, ts=1_000, user=1, asset="USDT", amount=1_000),
        Place(
            seq=5, ts=1_000, id=1, user=1, symbol="BTC-USDT", side="buy", price=100, qty=1,
            tif="GTD", expire_ts=2_000,
        ),
    ]  # fmt: skip
    core, ticked = Core(), Core()
    for cmd in setup:
        assert not any(isinstance(e, Rejected) for e in core.apply(cmd))
        ticked.apply(cmd)
    events = core.apply(Cancel(seq=6, ts=3_000, id=99, user=1, symbol="BTC-USDT"))
    tick_events = ticked.apply(Tick(seq=6, ts=3_000))
    assert [type(e) for e in events] == [OrderCancelled, Rejected]
    assert events[:1] == tick_events
    assert isinstance(events[0], OrderCancelled) and events[0].reason == "expired"
    assert core.state_hash() == ticked.state_hash()
