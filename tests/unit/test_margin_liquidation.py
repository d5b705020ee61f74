"""Margin calls and liquidations, step by step, against hand-computed figures.

The long of ``margin_setup.long_position``: 500,000 BTC minor units (50 lots) owing 4000
USDT; margin call at mark 92, liquidation at 88; liquidation orders sell down to
``ceil(88 * 0.95) = 84``; the fee is 1 % of the liabilities' value (4000 -> 40). The
mark moves at most 10 % per update, so the tests go 100 -> 90 (a margin call) -> 88.
"""

from __future__ import annotations

from tests.unit.helpers import SYM, Exchange, brief
from tests.unit.margin_setup import (
    POOL,
    borrow,
    into,
    long_position,
    margin_market,
    mark,
    wallet_id,
)
from tradewind.core.margin import HOUR_MS, INSURANCE_ACCOUNT, POOL_ACCOUNT
from tradewind.core.margin_ops import wallet_view


def bid(ex: Exchange, oid: int, user: int, price: int, qty: int) -> None:
    ex.ok(
        {
            "op": "place",
            "id": oid,
            "user": user,
            "symbol": SYM,
            "side": "buy",
            "price": price,
            "qty": qty,
        }
    )


def test_margin_call_once_per_crossing() -> None:
    ex = margin_market()
    wid = long_position(ex)
    assert [brief(e)[0] for e in mark(ex, 93)] == ["mark_price"]
    assert [brief(e) for e in mark(ex, 92)][1:] == [("margin_call", wid, 1, 11500, 11500, 11000)]
    assert [brief(e)[0] for e in mark(ex, 91)] == ["mark_price"]  # still called: no repeat
    assert [brief(e)[0] for e in mark(ex, 95)] == ["mark_price"]  # back above: cleared
    assert not ex.core.margin.wallets[wid].called
    assert [brief(e)[0] for e in mark(ex, 90)] == ["mark_price", "margin_call"]


def test_liquidation_sells_within_the_band_repays_and_charges_the_fee() -> None:
    ex = margin_market()
    wid = long_position(ex)
    ex.ok(
        {
            "op": "place",
            "id": 50,
            "user": 1,
            "symbol": SYM,
            "side": "sell",
            "price": 130,
            "qty": 5,
            "wallet": "isolated",
        }
    )  # an open order of the wallet
    bid(ex, 60, 3, 83, 50)  # below the band: not reached
    bid(ex, 61, 3, 86, 50)
    mark(ex, 90)
    events = [brief(e) for e in mark(ex, 88)]
    assert events == [
        ("mark_price", SYM, 88, 88, 4, False),
        ("liquidation_started", wid, 1, 11000, 11000, 4400, 4000, "USDT"),
        ("cancelled", 50, 5, 50_000, "liquidation"),
        ("accepted", -1, 500_000, "new"),
        ("trade", 61, -1, 86, 50),
        ("liquidation_fill", wid, 1, -1, SYM, "sell", 84, 50, 50),
        ("repaid", wid, 1, "USDT", 4000, 0, 4000, 0, 0, "liquidation"),
        ("liquidation_finished", wid, 1, 40, {}, {}, {}, {"USDT": 260}),
    ]
    # 50 lots at 86 = 4300; 4000 repaid; 40 fee; 260 left for the user
    assert ex.bal(wid, "USDT") == (260, 0)
    assert ex.bal(INSURANCE_ACCOUNT, "USDT") == (10**6 + 40, 0)
    assert ex.bal(POOL_ACCOUNT, "USDT") == (POOL, 0)
    assert wallet_view(ex.core, wid)["loans"] == {}
    assert ex.bids() == [(83, 60, 50)]


def test_no_liquidity_in_the_band_insurance_takes_over() -> None:
    ex = margin_market()
    wid = long_position(ex)
    bid(ex, 60, 3, 80, 50)
    mark(ex, 90)
    events = [brief(e) for e in mark(ex, 88)]
    assert events[-4:] == [
        ("cancelled", -1, 50, 500_000, "ioc"),
        ("liquidation_fill", wid, 1, -1, SYM, "sell", 84, 50, 0),
        ("repaid", wid, 1, "USDT", 4000, 0, 4000, 0, 0, "insurance"),
        ("liquidation_finished", wid, 1, 0, {"BTC": 500_000}, {"USDT": 4000}, {}, {}),
    ]
    assert ex.bal(INSURANCE_ACCOUNT, "BTC") == (500_000, 0)
    assert ex.bal(INSURANCE_ACCOUNT, "USDT") == (10**6 - 4000, 0)
    assert ex.bal(wid, "BTC") == (0, 0)


def test_partial_fill_then_shortfall_from_insurance() -> None:
    ex = margin_market()
    wid = long_position(ex)
    bid(ex, 61, 3, 85, 30)
    mark(ex, 90)
    events = [brief(e) for e in mark(ex, 88)]
    # 30 lots at 85 = 2550 repaid by the wallet; nothing left for the fee; the insurance
    # fund takes the 20 lots left and pays the other 1450
    assert ("repaid", wid, 1, "USDT", 2550, 0, 2550, 1450, 0, "liquidation") in events
    assert ("repaid", wid, 1, "USDT", 1450, 0, 1450, 0, 0, "insurance") in events
    assert events[-1] == (
        "liquidation_finished",
        wid,
        1,
        0,
        {"BTC": 200_000},
        {"USDT": 1450},
        {},
        {},
    )


def test_empty_insurance_fund_the_pool_takes_the_loss() -> None:
    ex = margin_market()
    ex.ok({"op": "insurance_defund", "user": 9, "asset": "USDT", "amount": 10**6})
    wid = long_position(ex)
    bid(ex, 61, 3, 85, 30)
    mark(ex, 90)
    events = [brief(e) for e in mark(ex, 88)]
    assert events[-1] == (
        "liquidation_finished",
        wid,
        1,
        0,
        {"BTC": 200_000},
        {},
        {"USDT": 1450},
        {},
    )
    assert ex.core.margin.losses == {"USDT": 1450}
    # pool: 5*10^7 funded, 4000 lent, 2550 back: cash short by the 1450 written off
    assert ex.bal(POOL_ACCOUNT, "USDT") == (POOL - 1450, 0)


def test_short_is_bought_back() -> None:
    ex = margin_market()
    into(ex, 1, "USDT", 1000)
    wid = wallet_id(ex, 1)
    ex.ok(borrow(1, "BTC", 400_000))  # 40 lots at mark 100: level 1.25
    bid(ex, 70, 3, 100, 40)
    ex.ok(
        {
            "op": "place",
            "id": 71,
            "user": 1,
            "symbol": SYM,
            "side": "sell",
            "price": 100,
            "qty": 40,
            "wallet": "isolated",
        }
    )
    view = wallet_view(ex.core, wid)
    assert view["balances"] == {"USDT": (5000, 0)}
    assert view["liquidation_price"] == (SYM, -1, 114)
    ex.ok(
        {"op": "place", "id": 72, "user": 4, "symbol": SYM, "side": "sell", "price": 115, "qty": 40}
    )
    mark(ex, 110)  # the mark moves at most 10 % per update
    events = [brief(e) for e in mark(ex, 114)]
    # buy 40 lots within 114 * 1.05 = 119: at 115 = 4600; repay the BTC; fee 1 % of
    # 400,000 BTC at 114 = 4560 -> 46; 5000 - 4600 - 46 = 354 left
    assert ("trade", 72, -1, 115, 40) in events
    assert ("repaid", wid, 1, "BTC", 400_000, 0, 400_000, 0, 0, "liquidation") in events
    assert events[-1] == ("liquidation_finished", wid, 1, 46, {}, {}, {}, {"USDT": 354})


def test_one_mark_liquidates_every_wallet_under_it() -> None:
    ex = margin_market()
    wids = []
    for user in (1, 3, 4):
        into(ex, user, "USDT", 1000)
        ex.ok(borrow(user, "USDT", 4000 - 500 * (user == 4)))
        wids.append(wallet_id(ex, user))
    ex.ok(
        {
            "op": "place",
            "id": 900,
            "user": 9,
            "symbol": SYM,
            "side": "sell",
            "price": 100,
            "qty": 150,
        }
    )
    for i, user in enumerate((1, 3, 4)):
        lots = 50 if user != 4 else 45
        ex.ok(
            {
                "op": "place",
                "id": 910 + i,
                "user": user,
                "symbol": SYM,
                "side": "buy",
                "price": 100,
                "qty": lots,
                "wallet": "isolated",
            }
        )
    bid(ex, 61, 2, 86, 200)
    # users 1 and 3 trigger at 88; user 4 (45 lots owing 3500) at 85: 3500*1.1/45 = 85.5
    mark(ex, 90)
    events = [brief(e) for e in mark(ex, 88)]
    started = [e[1] for e in events if e[0] == "liquidation_started"]
    assert started == [wids[0], wids[1]]
    assert wallet_view(ex.core, wids[2])["loans"] == {"USDT": (3500, 0)}


def test_cross_wallet_with_two_exposures_is_checked_on_every_mark() -> None:
    ex = margin_market(mark_max_move_bps=5000)
    ex.ok({"op": "asset", "asset": "ETH", "decimals": 8})
    eth = "ETH-USDT"
    ex.ok(
        {
            "op": "symbol",
            "symbol": eth,
            "base": "ETH",
            "quote": "USDT",
            "tick_size": 10_000,
            "lot_size": 10_000,
        }
    )
    ex.ok(
        {
            "op": "margin_symbol",
            "symbol": eth,
            "max_leverage": 5,
            "margin_call_level": 11_500,
            "liquidation_level": 11_000,
        }
    )
    mark(ex, 100, eth)
    ex.ok({"op": "deposit", "user": 1, "asset": "ETH", "amount": 500_000})
    into(ex, 1, "BTC", 500_000, wallet="cross")
    into(ex, 1, "ETH", 500_000, wallet="cross")
    wid = wallet_id(ex, 1, "")
    # 10,000 of assets; borrow 6666 and take it out: level 10000 / 6666 = 1.5002 (3x)
    ex.ok(borrow(1, "USDT", 6666, wallet="cross"))
    ex.ok(
        {
            "op": "margin_transfer",
            "user": 1,
            "asset": "USDT",
            "amount": 6666,
            "direction": "out",
            "wallet": "cross",
        }
    )
    assert wid in ex.core.margin.multi
    assert wallet_view(ex.core, wid)["liquidation_price"] is None  # two prices move it
    bid(ex, 60, 3, 44, 50)
    ex.ok(
        {"op": "place", "id": 61, "user": 3, "symbol": eth, "side": "buy", "price": 96, "qty": 50}
    )
    # BTC at 50: 2500 + 5000 = 7500, level 1.1251 <= the cross call level 1.3
    assert [brief(e)[0] for e in mark(ex, 50)] == ["mark_price", "margin_call"]
    # BTC at 45: 2250 + 5000 = 7250 <= 1.1 * 6666 = 7332.6: liquidated, both sold
    events = [brief(e) for e in mark(ex, 45)]
    fills = [e for e in events if e[0] == "liquidation_fill"]
    assert [(f[4], f[5], f[7], f[8]) for f in fills] == [
        (SYM, "sell", 50, 50),
        (eth, "sell", 50, 50),
    ]
    # 50 lots at 44 + 50 lots at 96 = 7000; 6666 repaid; no fee on cross; 334 left
    assert events[-1] == ("liquidation_finished", wid, 1, 0, {}, {}, {}, {"USDT": 334})
    assert wid not in ex.core.margin.multi


def test_interest_alone_can_trigger_the_liquidation() -> None:
    ex = margin_market()
    wid = long_position(ex)
    mark(ex, 90)  # 4500 / 4000 = 1.125: called, not liquidated
    bid(ex, 61, 3, 86, 50)
    # 1 USDT of interest an hour (4000 at 1000 ppb, rounded up): after 90 hours
    # 4500 / 4090 = 1.10024 is still above 1.1; the 91st makes it 4500 / 4091 <= 1.1
    events = [brief(e) for e in ex.ok({"op": "tick"}, ts=90 * HOUR_MS)]
    assert events == [("interest_charged", wid, 1, "USDT", 90, 4000, 90, 90, 90)]
    events = [brief(e) for e in ex.ok({"op": "tick"}, ts=91 * HOUR_MS)]
    assert events[0] == ("interest_charged", wid, 1, "USDT", 1, 4000, 91, 1, 91)
    assert events[1][:2] == ("liquidation_started", wid)
    # 50 lots at 86 = 4300: interest first (91), then the principal; fee 1 % of 4091 =
    # 40.91, rounded up to 41; 4300 - 4091 - 41 = 168 left
    assert ("repaid", wid, 1, "USDT", 4091, 91, 4000, 0, 0, "liquidation") in events
    assert events[-1] == ("liquidation_finished", wid, 1, 41, {}, {}, {}, {"USDT": 168})
