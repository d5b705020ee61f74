"""Property test of margin: random sequences of trades, mark moves, borrows, repays,
transfers, interest hours and insurance withdrawals, on two margin symbols with isolated
and cross wallets (cross wallets can hold both bases: several exposures). Margin orders
may ask for ``auto_repay`` (repaid from their fills as taker and, resting, as maker)
and are amended by their owners.

After every command:
* no account (wallets, pool, insurance included) has a negative balance, and no debt is
  negative;
* per asset, the sum of every balance equals deposits minus withdrawals (money), and
  pool cash + every wallet's debt equals net funding + interest - losses (claims);
* no wallet with debts is at or below its liquidation level at the current marks (in
  particular after every price event);
* a rejected command changed nothing;
* ``check_invariants`` reports nothing.

At the end: a restored snapshot has the same hash and, fed the same next mark, gives the
same events; replaying the commands on a fresh core gives the same events and hash.
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradewind.core import commands as C
from tradewind.core.engine import Core
from tradewind.core.events import Event, Rejected
from tradewind.core.invariants import check_invariants
from tradewind.core.margin import HOUR_MS, POOL_ACCOUNT, at_or_below
from tradewind.core.margin_ops import terms_of, values

USERS = (1, 2, 3, 4)
SYMBOLS = ("BTC-USDT", "ETH-USDT")
BASES = {"BTC-USDT": "BTC", "ETH-USDT": "ETH"}
SETUP: list[dict[str, Any]] = [
    {"op": "asset", "asset": "BTC", "decimals": 8},
    {"op": "asset", "asset": "ETH", "decimals": 8},
    {"op": "asset", "asset": "USDT", "decimals": 6},
    *(
        {
            "op": "symbol",
            "symbol": s,
            "base": BASES[s],
            "quote": "USDT",
            "tick_size": 10_000,
            "lot_size": 10_000,
        }
        for s in SYMBOLS
    ),
    {"op": "fees", "maker_bps": 10, "taker_bps": 20},
    *(
        {"op": "deposit", "user": u, "asset": a, "amount": 2_000_000 if u != 9 else 10**10}
        for u in (*USERS, 9)
        for a in ("BTC", "ETH", "USDT")
    ),
    *(
        {"op": "margin_asset", "asset": a, "hourly_rate": 500_000, "borrow_limit": 10**8}
        for a in ("BTC", "ETH", "USDT")
    ),
    *(
        {
            "op": "margin_symbol",
            "symbol": s,
            "max_leverage": 10,
            "margin_call_level": 11_050,
            "liquidation_level": 10_500,
            "liquidation_fee_bps": 50,
            "liquidation_band_bps": 1000,
            "mark_max_move_bps": 3000,
        }
        for s in SYMBOLS
    ),
    {
        "op": "margin_cross",
        "max_leverage": 5,
        "margin_call_level": 11_500,
        "liquidation_level": 11_000,
        "liquidation_fee_bps": 100,
    },
    *({"op": "pool_fund", "user": 9, "asset": a, "amount": 10**8} for a in ("BTC", "ETH", "USDT")),
    {"op": "insurance_fund", "user": 9, "asset": "USDT", "amount": 20_000},
    *({"op": "mark", "symbol": s, "feeds": [[100, 0]]} for s in SYMBOLS),
    # User 9 makes a deep market around 100 in both symbols (ids 1000+).
    *(
        {
            "op": "place",
            "id": 1000 + 100 * i + p,
            "user": 9,
            "symbol": s,
            "side": "buy" if p < 100 else "sell",
            "price": p,
            "qty": 2000,
        }
        for i, s in enumerate(SYMBOLS)
        for p in (*range(80, 100), *range(101, 121))
    ),
    # Every user starts with margin wallets holding collateral, so borrows and margin
    # orders mostly pass their checks.
    *(
        {"op": "margin_transfer", "user": u, "asset": a, "amount": 200_000, "direction": "in", **w}
        for u in USERS
        for w, a in (
            ({"wallet": "cross"}, "USDT"),
            ({"wallet": "isolated", "symbol": "BTC-USDT"}, "USDT"),
            ({"wallet": "isolated", "symbol": "ETH-USDT"}, "USDT"),
            ({"wallet": "isolated", "symbol": "ETH-USDT"}, "ETH"),
        )
    ),
]

users = st.sampled_from(USERS)
symbols = st.sampled_from(SYMBOLS)
assets = st.sampled_from(("BTC", "ETH", "USDT"))
amounts = st.integers(1, 10**7)


@st.composite
def wallet(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"wallet": "cross"}
    return {"wallet": "isolated", "symbol": draw(symbols)}


@st.composite
def commands(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            (
                "transfer",
                "transfer",
                "borrow",
                "borrow",
                "repay",
                "order",
                "order",
                "order",
                "mark",
                "mark",
                "mark",
                "hour",
                "cancel_all",
                "defund",
                "lever",
                "lever",
                "amend",
                "close",
            )
        )
    )
    if kind == "close":  # a resting margin order that repays from its fills as a maker
        w = draw(wallet())
        return {
            "op": "place",
            "id": draw(st.integers(1, 60)),
            "user": draw(users),
            "symbol": w.get("symbol") or draw(symbols),
            "side": draw(st.sampled_from(("buy", "sell"))),
            "price": 100,
            "qty": draw(st.integers(100, 5000)),
            "auto_repay": True,
            **w,
        }
    if kind == "amend":  # mostly of margin orders resting at 100 (ids are drawn again)
        return {
            "op": "amend",
            "id": draw(st.integers(1, 60)),
            "user": draw(users),
            "symbol": draw(symbols),
            "price": draw(st.sampled_from((99, 100, 100, 101))),
            "qty": draw(st.integers(1, 40)),
        }
    if kind in ("transfer", "borrow", "repay"):
        w = draw(wallet())
        asset = draw(assets)
        if w["wallet"] == "isolated" and asset not in ("USDT", BASES[w["symbol"]]):
            asset = "USDT"
        cmd = {
            "op": "margin_transfer" if kind == "transfer" else kind,
            "user": draw(users),
            "asset": asset,
            "amount": draw(amounts),
            **w,
        }
        if kind == "transfer":
            cmd["direction"] = draw(st.sampled_from(("in", "in", "out")))
        return cmd
    if kind == "order":
        sym = draw(symbols)
        order: dict[str, Any] = {
            "op": "place",
            "id": draw(st.integers(1, 60)),
            "user": draw(users),
            "symbol": sym,
            "side": draw(st.sampled_from(("buy", "sell"))),
            # 100 is inside the deep book's spread: such an order rests until another
            # one takes it (a margin order filled as a maker)
            "price": draw(st.sampled_from((100, 100, 100)) | st.integers(80, 120)),
            "qty": draw(st.integers(1, 40)),
            "tif": draw(st.sampled_from(("GTC", "GTC", "IOC"))),
        }
        margin = draw(st.sampled_from(("spot", "cross", "isolated", "isolated")))
        if margin != "spot":
            order["wallet"] = margin
            order["auto_borrow"] = draw(st.booleans())
            order["auto_repay"] = draw(st.booleans())
            order["qty"] = draw(st.integers(1, 3000))  # up to about 1.5x the collateral
        return order
    if kind == "lever":  # a leveraged position: a margin IOC that crosses, auto-borrowing
        buy = draw(st.booleans())
        return {
            "op": "place",
            "id": draw(st.integers(1, 60)),
            "user": draw(users),
            "symbol": draw(symbols),
            "side": "buy" if buy else "sell",
            "price": 110 if buy else 90,
            "qty": draw(st.integers(500, 15000)),
            "tif": "IOC",
            "auto_borrow": True,
            "auto_repay": draw(st.booleans()),
            **draw(wallet()),
        }
    if kind == "mark":
        price = draw(st.integers(60, 150))
        return {"op": "mark", "symbol": draw(symbols), "feeds": [[price, 0], [price, 0]]}
    if kind == "hour":
        return {"op": "tick", "hours": draw(st.integers(1, 30))}
    if kind == "defund":
        return {
            "op": "insurance_defund",
            "user": 9,
            "asset": "USDT",
            "amount": draw(st.integers(1, 20_000)),
        }
    return {"op": "cancel_all", "user": draw(users)}


def check_money(core: Core) -> list[str]:
    bad: list[str] = []
    totals: dict[str, int] = {}
    for acct, bals in core.accounts.items():
        for asset, b in bals.items():
            if b.available < 0 or b.locked < 0:
                bad.append(f"negative {acct}/{asset}")
            totals[asset] = totals.get(asset, 0) + b.available + b.locked
    for asset, total in totals.items():
        if total != core.deposited.get(asset, 0) - core.withdrawn.get(asset, 0):
            bad.append(f"{asset} money not conserved")
    m = core.margin
    debts: dict[str, int] = {}
    for w in m.wallets.values():
        for asset, loan in w.loans.items():
            if loan.principal < 0 or loan.interest < 0:
                bad.append(f"negative debt {w.id}/{asset}")
            debts[asset] = debts.get(asset, 0) + loan.principal + loan.interest
        if w.loans and at_or_below(*values(core, w), terms_of(m, w).liquidation):
            bad.append(f"wallet {w.id} left at or below its liquidation level")
    for asset in ("BTC", "ETH", "USDT"):
        cash = core.available(POOL_ACCOUNT, asset)
        equity = m.funded.get(asset, 0) + m.interest.get(asset, 0) - m.losses.get(asset, 0)
        if cash + debts.get(asset, 0) != equity:
            bad.append(f"{asset} pool claims not conserved")
    return bad


def run(cmds: list[C.Command]) -> tuple[Core, list[list[Event]]]:
    core = Core()
    out = []
    for cmd in cmds:
        before = core.state_hash()
        events = core.apply(cmd)
        out.append(events)
        bad = check_money(core) + check_invariants(core)
        assert bad == [], f"after {cmd!r}: {bad}"
        if events and isinstance(events[-1], Rejected) and len(events) == 1:
            assert core.state_hash() == before, f"rejected {cmd!r} changed the state"
    return core, out


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands(), min_size=20, max_size=60))
def test_margin_random_streams(stream: list[dict[str, Any]]) -> None:
    cmds: list[C.Command] = []
    ts = 0
    for i, raw in enumerate([*SETUP, *stream], 1):
        d = dict(raw)
        if d["op"] == "tick":
            ts += d.pop("hours") * HOUR_MS
        else:
            ts += 1000
        if d["op"] == "mark":
            d["feeds"] = [[p, ts] for p, _ in d["feeds"]]
        cmd = msgspec.convert(d, C.AnyCommand)  # type: ignore[arg-type]
        cmds.append(msgspec.structs.replace(cmd, seq=i, ts=ts))
    core, events = run(cmds)
    final = core.state_hash()

    restored = Core.restore(core.snapshot())
    assert restored.state_hash() == core.state_hash()
    nxt = C.Mark(seq=len(cmds) + 1, ts=ts + 1, symbol="BTC-USDT", feeds=((70, ts),))
    assert restored.apply(nxt) == core.apply(nxt)
    assert restored.state_hash() == core.state_hash()

    again, events2 = run(cmds)
    assert events2 == events
    assert again.state_hash() == final
