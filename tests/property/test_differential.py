"""Differential tests: the core against a naive reference matcher.

Random streams of deposits, limit orders (GTC, IOC, FOK, GTD; post-only; icebergs) and
market orders (by quantity and by quote amount) at prices in a narrow band so that they
cross often, every self-trade prevention mode, fee changes, cancels and amends (of live,
closed, unknown and other users' orders) go to both the real core and
:mod:`tests.support.naive_matcher`. After every command the trades (all fields, fees
included), cancellations (expiries included), releases of funds a taker no longer needs,
amendments and rejections must be identical, and trades, releases, amendments and
rejections must come in the same order; at the end, so must every balance, the fee
account's included, and every resting order, in queue order, with its shown quantity.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.engine_view import (
    amends_of,
    balance_view,
    book_view,
    cancels_of,
    outcomes_of,
    rejects_of,
    releases_of,
    trades_of,
)
from tests.support.naive_matcher import (
    FEE_ACCOUNT,
    QUOTE_TAKER_LEFT,
    NaiveAmended,
    NaiveCancel,
    NaiveExchange,
    NaiveReject,
    NaiveReleased,
    NaiveTrade,
    Outcome,
)
from tradewind.core.commands import (
    AddAsset,
    AddSymbol,
    Amend,
    Cancel,
    Command,
    Deposit,
    Place,
    SetFees,
    Stp,
    TimeInForce,
)
from tradewind.core.engine import Core
from tradewind.core.events import OrderCancelled, Rejected

# ------------------------------------------------------------------ the market set-up

USERS = (1, 2, 3, 4)
ASSETS = ("BTC", "ETH", "USDT")
# BTC-USDT: 1 tick = 0.01 USDT per BTC, 1 lot = 0.0001 BTC → a lot at price p costs p quote
# minor units (k = 1). ETH-USDT: k = 100 * 1000 // 10**4 = 10.
SETUP: tuple[Command, ...] = (
    AddAsset(asset="BTC", decimals=8),
    AddAsset(asset="ETH", decimals=4),
    AddAsset(asset="USDT", decimals=6),
    AddSymbol(symbol="BTC-USDT", base="BTC", quote="USDT", tick_size=10_000, lot_size=10_000),
    AddSymbol(symbol="ETH-USDT", base="ETH", quote="USDT", tick_size=100, lot_size=1_000),
)
SYMBOLS = ("BTC-USDT", "ETH-USDT")
MID_PRICE = {"BTC-USDT": 100, "ETH-USDT": 50}
NOTIONAL = {"BTC-USDT": 1, "ETH-USDT": 10}
# Deposits come in units that buy a few lots, so that balances run short now and then.
DEPOSIT_UNIT = {"BTC": 10_000, "ETH": 1_000, "USDT": 250}
TIFS: tuple[TimeInForce, ...] = ("GTC", "GTC", "IOC", "FOK", "GTD")
STPS: tuple[Stp, ...] = ("cancel_taker", "cancel_maker", "cancel_both", "none")
FEE_BPS = (0, 1, 7, 10, 25, 33, 100, 2_500, 10_000)
UNKNOWN_ID_BASE = 10_000_000


# ------------------------------------------------------------------ abstract actions


@dataclass(frozen=True)
class DepositAction:
    user: int
    asset: str
    units: int


@dataclass(frozen=True)
class PlaceAction:
    user: int
    symbol: str
    side: str
    offset: int
    qty: int
    tif: TimeInForce
    stp: Stp
    display: int | None = None
    """Iceberg slice; dropped where it would be invalid (IOC/FOK, or not below qty)."""
    post_only: bool = False
    """Dropped on IOC/FOK."""
    expire_in: int = 10
    """For GTD: ``expire_ts`` is this many ms after the command's ``ts`` (1 per command)."""


@dataclass(frozen=True)
class MarketAction:
    user: int
    symbol: str
    side: str
    qty: int
    """Lots; for a buy by quote amount, the number of lots at the mid price it pays for."""
    by_quote: bool
    """A buy by ``quote_qty`` (ignored on sells)."""
    extra: int
    """Quote minor units added to a ``quote_qty``, so that budgets leave remainders."""
    stp: Stp


@dataclass(frozen=True)
class CancelAction:
    age: int
    """Which placed order: 0 is the latest, 1 the one before, and so on (modulo)."""
    mode: str  # "own": a placed order by its owner; "other": by another user; "unknown"


@dataclass(frozen=True)
class AmendAction:
    age: int
    """Which placed order, as for :class:`CancelAction`."""
    qty: int
    offset: int | None
    """New price as an offset from the mid, or None to keep the price."""
    by_owner: bool


@dataclass(frozen=True)
class FeesAction:
    maker_bps: int
    taker_bps: int


Action = DepositAction | PlaceAction | MarketAction | CancelAction | AmendAction | FeesAction


class StreamBuilder:
    """Turns abstract actions into stamped commands: increasing ``seq``, non-decreasing
    ``ts``, fresh order ids, cancels aimed at orders placed earlier."""

    def __init__(self) -> None:
        self.seq = 0
        self.next_id = 1
        self.placed: list[tuple[int, int, str]] = []  # (id, user, symbol)

    def _stamp(self) -> tuple[int, int]:
        self.seq += 1
        return self.seq, 1_000 + self.seq

    def setup(self, deposits: list[tuple[int, str, int]], fees: FeesAction) -> list[Command]:
        cmds: list[Command] = []
        for c in SETUP:
            seq, ts = self._stamp()
            cmds.append(msgspec.structs.replace(c, seq=seq, ts=ts))
        cmds.append(self.build(fees))
        for user, asset, units in deposits:
            if units:
                cmds.append(self.build(DepositAction(user, asset, units)))
        return cmds

    def build(self, action: Action) -> Command:
        seq, ts = self._stamp()
        if isinstance(action, DepositAction):
            amount = action.units * DEPOSIT_UNIT[action.asset]
            return Deposit(seq=seq, ts=ts, user=action.user, asset=action.asset, amount=amount)
        if isinstance(action, FeesAction):
            return SetFees(seq=seq, ts=ts, maker_bps=action.maker_bps, taker_bps=action.taker_bps)
        if isinstance(action, PlaceAction):
            oid = self.next_id
            self.next_id += 1
            self.placed.append((oid, action.user, action.symbol))
            resting = action.tif in ("GTC", "GTD")
            display = action.display if resting else None
            return Place(
                seq=seq,
                ts=ts,
                id=oid,
                user=action.user,
                symbol=action.symbol,
                side="buy" if action.side == "buy" else "sell",
                type="limit",
                price=MID_PRICE[action.symbol] + action.offset,
                qty=action.qty,
                tif=action.tif,
                stp=action.stp,
                display_qty=display if display is not None and display < action.qty else None,
                post_only=action.post_only and resting,
                expire_ts=ts + action.expire_in if action.tif == "GTD" else None,
            )
        if isinstance(action, MarketAction):
            oid = self.next_id
            self.next_id += 1
            self.placed.append((oid, action.user, action.symbol))
            by_quote = action.by_quote and action.side == "buy"
            lot_cost = MID_PRICE[action.symbol] * NOTIONAL[action.symbol]
            return Place(
                seq=seq,
                ts=ts,
                id=oid,
                user=action.user,
                symbol=action.symbol,
                side="buy" if action.side == "buy" else "sell",
                type="market",
                qty=None if by_quote else action.qty,
                quote_qty=action.qty * lot_cost + action.extra if by_quote else None,
                stp=action.stp,
            )
        if isinstance(action, AmendAction):
            if not self.placed:
                return Amend(seq=seq, ts=ts, id=UNKNOWN_ID_BASE, user=1, symbol=SYMBOLS[0], qty=1)
            oid, owner, symbol = self.placed[-1 - action.age % len(self.placed)]
            user = owner if action.by_owner else USERS[(USERS.index(owner) + 1) % len(USERS)]
            price = None if action.offset is None else MID_PRICE[symbol] + action.offset
            return Amend(
                seq=seq, ts=ts, id=oid, user=user, symbol=symbol, qty=action.qty, price=price
            )
        if action.mode == "unknown" or not self.placed:
            symbol = SYMBOLS[action.age % len(SYMBOLS)]
            user = USERS[action.age % len(USERS)]
            return Cancel(seq=seq, ts=ts, id=UNKNOWN_ID_BASE + action.age, user=user, symbol=symbol)
        oid, owner, symbol = self.placed[-1 - action.age % len(self.placed)]
        user = owner if action.mode == "own" else USERS[(USERS.index(owner) + 1) % len(USERS)]
        return Cancel(seq=seq, ts=ts, id=oid, user=user, symbol=symbol)


# ------------------------------------------------------------------ the comparison


@dataclass
class DiffRun:
    core: Core
    naive: NaiveExchange
    outcomes: list[list[Outcome]]
    """The reference model's outcomes per command (equal to the engine's, once checked)."""


def run_differential(commands: list[Command]) -> DiffRun:
    """Feeds ``commands`` to both and compares after every command and at the end."""
    run = DiffRun(Core(), NaiveExchange(), [])
    by_quote: set[int] = set()  # market buys by quote amount: no open qty in lots
    for i, cmd in enumerate(commands):
        if isinstance(cmd, Place) and cmd.quote_qty is not None:
            by_quote.add(cmd.id)
        events = run.core.apply(cmd)
        expected = run.naive.apply(cmd)
        run.outcomes.append(expected)
        where = f"command #{i}: {cmd!r}\nengine events: {events!r}"
        assert rejects_of(events) == [o for o in expected if isinstance(o, NaiveReject)], where
        if any(isinstance(e, Rejected) for e in events):
            # Alone, or after the expiries due at the command's ts (checked below).
            assert isinstance(events[-1], Rejected), where
            assert all(isinstance(e, OrderCancelled) for e in events[:-1]), where
        trades = [
            dataclasses.replace(t, taker_left=QUOTE_TAKER_LEFT) if t.taker_id in by_quote else t
            for t in trades_of(events)
        ]
        assert trades == [o for o in expected if isinstance(o, NaiveTrade)], where
        assert sorted(cancels_of(events)) == sorted(
            o for o in expected if isinstance(o, NaiveCancel)
        ), where
        assert amends_of(events) == [o for o in expected if isinstance(o, NaiveAmended)], where
        assert releases_of(events) == [o for o in expected if isinstance(o, NaiveReleased)], where
        # Where a release stands matters to a consumer (it follows its taker's trades):
        # trades, releases, amendments and rejections must also agree in order.
        ordered = [
            dataclasses.replace(o, taker_left=QUOTE_TAKER_LEFT)
            if isinstance(o, NaiveTrade) and o.taker_id in by_quote
            else o
            for o in outcomes_of(events)
            if not isinstance(o, NaiveCancel)
        ]
        assert ordered == [o for o in expected if not isinstance(o, NaiveCancel)], where
    assert balance_view(run.core) == run.naive.balance_view()
    assert book_view(run.core) == run.naive.book_view()
    return run


# ------------------------------------------------------------------ hypothesis streams

users = st.sampled_from(USERS)
deposit_actions = st.builds(
    DepositAction, users, st.sampled_from(ASSETS), st.integers(min_value=1, max_value=30)
)
place_actions = st.builds(
    PlaceAction,
    users,
    st.sampled_from(SYMBOLS),
    st.sampled_from(("buy", "sell")),
    st.integers(min_value=-3, max_value=3),
    st.integers(min_value=1, max_value=8),
    st.sampled_from(TIFS),
    st.sampled_from(STPS),
    st.none() | st.integers(min_value=1, max_value=3),
    st.booleans(),
    st.integers(min_value=-1, max_value=60),
)
cancel_actions = st.builds(
    CancelAction,
    st.integers(min_value=0, max_value=30),
    st.sampled_from(("own", "own", "own", "other", "unknown")),
)
amend_actions = st.builds(
    AmendAction,
    st.integers(min_value=0, max_value=30),
    st.integers(min_value=1, max_value=8),
    st.none() | st.integers(min_value=-3, max_value=3),
    st.sampled_from((True, True, True, False)),
)
market_actions = st.builds(
    MarketAction,
    users,
    st.sampled_from(SYMBOLS),
    st.sampled_from(("buy", "sell")),
    st.integers(min_value=1, max_value=8),
    st.booleans(),
    st.integers(min_value=0, max_value=600),
    st.sampled_from(STPS),
)
fee_actions = st.builds(FeesAction, st.sampled_from(FEE_BPS), st.sampled_from(FEE_BPS))


@st.composite
def actions(draw: st.DrawFn) -> Action:
    """Mostly orders, then cancels, amends, deposits and now and then a fee change."""
    kind = draw(st.integers(min_value=0, max_value=23))
    if kind < 13:
        return draw(place_actions)
    if kind < 15:
        return draw(market_actions)
    if kind < 18:
        return draw(cancel_actions)
    if kind < 21:
        return draw(amend_actions)
    if kind < 23:
        return draw(deposit_actions)
    return draw(fee_actions)


@st.composite
def command_streams(draw: st.DrawFn) -> list[Command]:
    builder = StreamBuilder()
    # Everyone starts with a few lots' worth (0 lets balances run short sooner).
    deposits = [
        (user, asset, draw(st.sampled_from((0, 10, 30)), label=f"{user} {asset}"))
        for user in USERS
        for asset in ASSETS
    ]
    cmds = builder.setup(deposits, draw(fee_actions))
    # Hypothesis keeps lists short on average; choosing the length first gives long
    # streams (books several orders deep) while still shrinking to short ones.
    n = draw(st.integers(min_value=0, max_value=150), label="number of actions")
    cmds.extend(builder.build(a) for a in draw(st.lists(actions(), min_size=n, max_size=n)))
    return cmds


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command_streams())
def test_engine_agrees_with_naive_matcher(commands: list[Command]) -> None:
    run_differential(commands)


# ------------------------------------------------------------------ a long fixed-seed run


def random_stream(seed: int, n: int, *, icebergs: bool = True) -> list[Command]:
    rng = random.Random(seed)
    builder = StreamBuilder()
    deposits = [(u, a, rng.randint(0, 40)) for u in USERS for a in ASSETS]
    cmds = builder.setup(deposits, FeesAction(10, 20))
    while len(cmds) < n:
        r = rng.random()
        action: Action
        if r < 0.06:
            action = MarketAction(
                rng.choice(USERS),
                rng.choice(SYMBOLS),
                rng.choice(("buy", "sell")),
                rng.randint(1, 8),
                rng.random() < 0.5,
                rng.randint(0, 600),
                rng.choice(STPS),
            )
        elif r < 0.62:
            action = PlaceAction(
                rng.choice(USERS),
                rng.choice(SYMBOLS),
                rng.choice(("buy", "sell")),
                rng.randint(-3, 3),
                rng.randint(1, 8),
                rng.choice(TIFS),
                rng.choice(STPS),
                rng.randint(1, 3) if icebergs and rng.random() < 0.3 else None,
                rng.random() < 0.15,
                rng.randint(-1, 300),
            )
        elif r < 0.76:
            mode = rng.choice(("own", "own", "own", "own", "other", "unknown"))
            # Mostly aim at recent orders, which are more often still open.
            action = CancelAction(int(rng.expovariate(1 / 10)), mode)
        elif r < 0.85:
            offset = None if rng.random() < 0.4 else rng.randint(-3, 3)
            action = AmendAction(
                int(rng.expovariate(1 / 10)), rng.randint(1, 8), offset, rng.random() < 0.9
            )
        elif r < 0.93:
            action = DepositAction(rng.choice(USERS), rng.choice(ASSETS), rng.randint(1, 20))
        else:
            action = FeesAction(rng.choice(FEE_BPS), rng.choice(FEE_BPS))
        cmds.append(builder.build(action))
    return cmds


@pytest.mark.parametrize("icebergs", [True, False], ids=["with-icebergs", "no-icebergs"])
def test_long_fixed_seed_stream_agrees_with_naive_matcher(icebergs: bool) -> None:
    commands = random_stream(seed=20_240_601, n=20_000, icebergs=icebergs)
    naive = run_differential(commands).naive
    # The stream must actually exercise the interesting paths.
    assert len(naive.trades) > 3_000
    assert sum(1 for t in naive.trades if t.maker_user == t.taker_user) > 50
    assert naive.balance_view().get((FEE_ACCOUNT, "USDT"), (0, 0))[0] > 0


# ------------------------------------------------------------------ hand-computed cases
# These pin the reference model itself to numbers worked out by hand.


def _stamped(cmds: list[Command]) -> list[Command]:
    return [msgspec.structs.replace(c, seq=i, ts=i) for i, c in enumerate(cmds, 1)]


def _place(oid: int, user: int, side: str, price: int, qty: int, **kw: object) -> Place:
    return Place(
        id=oid,
        user=user,
        symbol="BTC-USDT",
        side="buy" if side == "buy" else "sell",
        price=price,
        qty=qty,
        **kw,  # type: ignore[arg-type]
    )


def test_hand_computed_fills_fees_and_price_improvement() -> None:
    cmds = _stamped(
        [
            *SETUP,
            SetFees(maker_bps=10, taker_bps=20),
            Deposit(user=1, asset="BTC", amount=100_000),  # 10 lots
            Deposit(user=2, asset="USDT", amount=10_000),
            _place(1, 1, "sell", 101, 3),
            _place(2, 1, "sell", 100, 2),
            _place(3, 2, "buy", 102, 4),  # takes 2 @ 100 then 2 @ 101
        ]
    )
    run = run_differential(cmds)
    naive = run.naive
    t1, t2 = naive.trades
    assert (t1.maker_id, t1.price, t1.qty, t1.quote, t1.base) == (2, 100, 2, 200, 20_000)
    assert (t2.maker_id, t2.price, t2.qty, t2.maker_left, t2.taker_left) == (1, 101, 2, 1, 0)
    # Taker buyer pays 20 bps of 20_000 base = 40 per fill; maker seller 10 bps of
    # 200 quote = 0.2 → rounded up to 1; of 202 → 1.
    assert (t1.taker_fee, t1.maker_fee, t2.taker_fee, t2.maker_fee) == (40, 1, 40, 1)
    # Filled in full: the 408 - 402 = 6 of price improvement is released, after the trades.
    assert run.outcomes[-1] == [t1, t2, NaiveReleased(3, 2, "BTC-USDT", 6)]
    assert naive.balance_view() == {
        # Locked 408 at 102, paid 402; the 6 of price improvement came back.
        (2, "USDT"): (10_000 - 402, 0),
        (2, "BTC"): (40_000 - 80, 0),
        (1, "BTC"): (100_000 - 50_000, 10_000),
        (1, "USDT"): (402 - 2, 0),
        (FEE_ACCOUNT, "BTC"): (80, 0),
        (FEE_ACCOUNT, "USDT"): (2, 0),
    }


@pytest.mark.parametrize(
    ("stp", "expected_trades", "expected_cancels", "resting_ids"),
    [
        # Taker 4 (user 1) meets its own resting order 2 between orders 1 and 3 of user 2.
        ("cancel_taker", [1], [(4, "stp")], [2, 3]),
        ("cancel_maker", [1, 3], [(2, "stp")], []),
        ("cancel_both", [1], [(2, "stp"), (4, "stp")], [3]),
        ("none", [1, 2], [], [3]),
    ],
)
def test_hand_computed_self_trade_prevention(
    stp: Stp,
    expected_trades: list[int],
    expected_cancels: list[tuple[int, str]],
    resting_ids: list[int],
) -> None:
    cmds = _stamped(
        [
            *SETUP,
            Deposit(user=1, asset="BTC", amount=100_000),
            Deposit(user=1, asset="USDT", amount=10_000),
            Deposit(user=2, asset="BTC", amount=100_000),
            _place(1, 2, "sell", 100, 1),
            _place(2, 1, "sell", 100, 1),
            _place(3, 2, "sell", 100, 1),
            _place(4, 1, "buy", 100, 2, stp=stp),
        ]
    )
    run = run_differential(cmds)
    assert [t.maker_id for t in run.naive.trades] == expected_trades
    cancels = sorted((c.id, c.reason) for c in run.outcomes[-1] if isinstance(c, NaiveCancel))
    assert cancels == expected_cancels
    assert [e.id for e in run.naive.book_view()] == resting_ids


def test_hand_computed_cancel_of_unknown_closed_or_foreign_order_is_rejected() -> None:
    cmds = _stamped(
        [
            *SETUP,
            Deposit(user=1, asset="BTC", amount=100_000),
            Deposit(user=2, asset="USDT", amount=10_000),
            _place(1, 1, "sell", 100, 2),
            _place(2, 2, "buy", 100, 2),  # fills order 1 completely
            _place(3, 1, "sell", 100, 2),
            Cancel(id=999, user=1, symbol="BTC-USDT"),  # unknown
            Cancel(id=1, user=1, symbol="BTC-USDT"),  # closed (filled)
            Cancel(id=3, user=2, symbol="BTC-USDT"),  # someone else's
            Cancel(id=3, user=1, symbol="BTC-USDT"),  # fine
            Cancel(id=3, user=1, symbol="BTC-USDT"),  # closed (cancelled)
        ]
    )
    run = run_differential(cmds)
    assert [o for out in run.outcomes[-5:] for o in out] == [
        NaiveReject("cancel", 999, 1, "unknown_order"),
        NaiveReject("cancel", 1, 1, "unknown_order"),
        NaiveReject("cancel", 3, 2, "unknown_order"),
        NaiveCancel(3, 1, "BTC-USDT", 2, 20_000, "user"),
        NaiveReject("cancel", 3, 1, "unknown_order"),
    ]


def test_hand_computed_fok_is_all_or_nothing() -> None:
    cmds = _stamped(
        [
            *SETUP,
            Deposit(user=1, asset="BTC", amount=100_000),
            Deposit(user=2, asset="USDT", amount=10_000),
            _place(1, 1, "sell", 100, 2),
            _place(2, 1, "sell", 103, 5),
            _place(3, 2, "buy", 102, 3, tif="FOK"),  # only 2 lots at or below 102
            _place(4, 2, "buy", 103, 3, tif="FOK"),  # 2 @ 100 + 1 @ 103
            _place(5, 2, "buy", 99, 1, tif="IOC"),  # nothing to take
        ]
    )
    naive = run_differential(cmds).naive
    assert [(t.maker_id, t.taker_id, t.price, t.qty) for t in naive.trades] == [
        (1, 4, 100, 2),
        (2, 4, 103, 1),
    ]
    assert [e.id for e in naive.book_view()] == [2]


def test_fok_is_all_or_nothing_when_an_iceberg_refreshes_behind_an_own_order() -> None:
    """An iceberg's next slice goes to the back of its level, which can put it behind
    one of the taker's own orders: then self-trade prevention stops the taker there, so
    an FOK that only the whole iceberg could fill must be rejected, not part-filled."""
    cmds = _stamped(
        [
            *SETUP,
            Deposit(user=1, asset="USDT", amount=10_000),
            Deposit(user=1, asset="BTC", amount=10_000),
            Deposit(user=2, asset="BTC", amount=60_000),
            _place(1, 2, "sell", 100, 6, display_qty=2),  # shows 2 of 6
            _place(2, 1, "sell", 100, 1),  # user 1's own ask, behind the iceberg
            # Takes the iceberg's slice of 2; its next slice joins the queue behind
            # order 2, which stops the taker (cancel_taker) with 2 lots unfilled.
            _place(3, 1, "buy", 100, 4, tif="FOK"),
        ]
    )
    run = run_differential(cmds)
    assert run.outcomes[-1] == [NaiveReject("place", 3, 1, "fok_not_fillable")]
    assert run.naive.trades == []


def test_hand_computed_iceberg_slices_lose_time_priority() -> None:
    cmds = _stamped(
        [
            *SETUP,
            Deposit(user=1, asset="USDT", amount=10_000),
            Deposit(user=2, asset="BTC", amount=50_000),
            Deposit(user=3, asset="BTC", amount=10_000),
            _place(1, 2, "sell", 100, 5, display_qty=2),
            _place(2, 3, "sell", 100, 1),
            # 2 from the iceberg's slice; its next slice goes behind order 2; then 1 from
            # order 2, then 1 from the iceberg's second slice.
            _place(3, 1, "buy", 100, 4),
        ]
    )
    run = run_differential(cmds)
    assert [(t.maker_id, t.qty, t.maker_left) for t in run.naive.trades] == [
        (1, 2, 3),
        (2, 1, 0),
        (1, 1, 2),
    ]
    ((order,),) = [run.naive.book_view()]
    assert (order.id, order.qty, order.visible) == (1, 2, 1)


def test_hand_computed_amend_keeps_or_loses_priority() -> None:
    cmds = _stamped(
        [
            *SETUP,
            Deposit(user=1, asset="BTC", amount=100_000),
            Deposit(user=2, asset="BTC", amount=100_000),
            Deposit(user=3, asset="USDT", amount=10_000),
            _place(1, 1, "sell", 100, 3),
            _place(2, 2, "sell", 100, 3),
            Amend(id=1, user=1, symbol="BTC-USDT", qty=2),  # smaller: keeps its place
            _place(3, 3, "buy", 100, 1),  # so this fills order 1
            Amend(id=1, user=1, symbol="BTC-USDT", qty=4),  # larger: to the back
            _place(4, 3, "buy", 100, 1),  # so this fills order 2
            Amend(id=2, user=2, symbol="BTC-USDT", qty=2, price=99),  # new price: a new level
            Amend(id=9, user=2, symbol="BTC-USDT", qty=2),  # no such order
        ]
    )
    run = run_differential(cmds)
    assert [(t.maker_id, t.taker_id) for t in run.naive.trades] == [(1, 3), (2, 4)]
    assert [o for o in run.outcomes[-2] if isinstance(o, NaiveAmended)] == [
        NaiveAmended(2, 2, "BTC-USDT", 99, 2, 20_000, False)
    ]
    assert run.outcomes[-1] == [NaiveReject("amend", 9, 2, "unknown_order")]
    assert [(e.id, e.price, e.qty) for e in run.naive.book_view()] == [(2, 99, 2), (1, 100, 4)]


def test_hand_computed_gtd_expires_at_the_first_command_reaching_its_time() -> None:
    setup = _stamped([*SETUP, Deposit(user=1, asset="USDT", amount=10_000)])  # seq and ts 1..6
    cmds = [
        *setup,
        msgspec.structs.replace(_place(1, 1, "buy", 100, 1, tif="GTD", expire_ts=20), seq=7, ts=10),
        msgspec.structs.replace(_place(2, 1, "buy", 100, 1, tif="GTD", expire_ts=10), seq=8, ts=10),
        Deposit(seq=9, ts=19, user=1, asset="USDT", amount=1),  # not yet
        Deposit(seq=10, ts=20, user=1, asset="USDT", amount=1),  # now, before the deposit
    ]
    run = run_differential(cmds)
    assert run.outcomes[-4] == []
    assert run.outcomes[-3] == [NaiveReject("place", 2, 1, "already_expired")]
    assert run.outcomes[-2] == []
    assert run.outcomes[-1] == [NaiveCancel(1, 1, "BTC-USDT", 1, 100, "expired")]


def test_hand_computed_releases_of_a_resting_taker_and_a_market_buy() -> None:
    cmds = _stamped(
        [
            *SETUP,
            Deposit(user=1, asset="BTC", amount=100_000),
            Deposit(user=2, asset="USDT", amount=10_000),
            _place(1, 1, "sell", 100, 2),
            _place(2, 1, "sell", 101, 1),
            # Locks 103 * 5 = 515; takes 2 @ 100 and 1 @ 101 (301); rests 2 @ 103 holding
            # 206, so 515 - 301 - 206 = 8 is released.
            _place(3, 2, "buy", 103, 5),
            _place(4, 1, "sell", 104, 1),
            # Cap floor(104 * 1.05) = 109: locks 109, pays 104, the unused band of 5 goes.
            Place(id=5, user=2, symbol="BTC-USDT", side="buy", type="market", qty=1),
            # Nothing to release: bought at its limit; the IOC remainder's cancel unlocks.
            _place(6, 1, "sell", 105, 1),
            _place(7, 2, "buy", 105, 2, tif="IOC"),
        ]
    )
    run = run_differential(cmds)
    rest, _, market_buy, _, ioc = run.outcomes[-5:]
    assert [(type(o), getattr(o, "quote", None)) for o in rest] == [
        (NaiveTrade, 200),
        (NaiveTrade, 101),
        (NaiveReleased, None),
    ]
    assert rest[-1] == NaiveReleased(3, 2, "BTC-USDT", 8)
    assert [type(o) for o in market_buy] == [NaiveTrade, NaiveReleased]
    assert market_buy[-1] == NaiveReleased(5, 2, "BTC-USDT", 5)
    assert [type(o) for o in ioc] == [NaiveTrade, NaiveCancel]
    assert ioc[-1] == NaiveCancel(7, 2, "BTC-USDT", 1, 105, "ioc")
    # 10_000 - 301 - 206 (resting) - 104 - 105 = 9_284 available.
    assert run.naive.balance_view()[2, "USDT"] == (9_284, 206)


def test_hand_computed_post_only_amend_that_would_cross_is_rejected() -> None:
    cmds = _stamped(
        [
            *SETUP,
            Deposit(user=1, asset="USDT", amount=10_000),
            Deposit(user=2, asset="BTC", amount=10_000),
            _place(1, 1, "buy", 99, 1, post_only=True),
            _place(2, 2, "sell", 101, 1),
            Amend(id=1, user=1, symbol="BTC-USDT", qty=1, price=101),  # would take
            Amend(id=1, user=1, symbol="BTC-USDT", qty=1, price=100),  # still makes
            Amend(id=1, user=1, symbol="BTC-USDT", qty=1, price=102),  # still post-only
        ]
    )
    run = run_differential(cmds)
    assert run.outcomes[-3] == [NaiveReject("amend", 1, 1, "post_only_would_take")]
    assert run.outcomes[-2] == [NaiveAmended(1, 1, "BTC-USDT", 100, 1, 100, False)]
    assert run.outcomes[-1] == [NaiveReject("amend", 1, 1, "post_only_would_take")]
    assert run.naive.trades == []
    assert [(e.id, e.price) for e in run.naive.book_view()] == [(1, 100), (2, 101)]
