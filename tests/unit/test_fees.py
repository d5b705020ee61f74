"""Fees: maker and taker rates in bps per tier (``fees`` op, tier 0 by default), users put
in a tier by the ``tier`` op. Each side pays in the asset it receives (the buyer in BTC,
the seller in USDT), rounded up per fill, and the fee goes to account 0.

With lot 10000 a base fee ``q * 10000 * bps / 10000 = q * bps`` is always exact; the
rounding shows on quote fees: ``ceil(p * q * bps / 10000)``.
"""

from __future__ import annotations

import pytest

from tests.unit.helpers import SYM, brief, buy, market, sell, standard
from tradewind.core.events import Trade

U, B = "USDT", "BTC"
START = 1_000_000


def fees(maker: int, taker: int, tier: int | None = None) -> dict[str, object]:
    d: dict[str, object] = {"op": "fees", "maker_bps": maker, "taker_bps": taker}
    if tier is not None:
        d["tier"] = tier
    return d


# (maker_bps, taker_bps, taker side, price, qty, maker_fee, taker_fee)
# Taker buy: maker (seller) pays ceil(p*q*m/10000) USDT, taker pays q*t BTC units.
# Taker sell: maker (buyer) pays q*m BTC units, taker pays ceil(p*q*t/10000) USDT.
FEE_TABLE = [
    pytest.param(10, 20, "buy", 100, 3, 1, 60, id="buy-0.3-rounds-up-to-1"),
    pytest.param(10, 20, "sell", 101, 3, 30, 1, id="sell-0.606-rounds-up-to-1"),
    pytest.param(10, 20, "buy", 5_000, 2, 10, 40, id="buy-exact-10"),
    pytest.param(0, 0, "buy", 100, 3, 0, 0, id="no-fees"),
    pytest.param(25, 7, "buy", 12_345, 1, 31, 7, id="30.8625-to-31"),
    pytest.param(1, 1, "buy", 9_999, 1, 1, 1, id="0.9999-to-1"),
    pytest.param(1, 1, "buy", 10_000, 1, 1, 1, id="exactly-1"),
    pytest.param(1, 1, "buy", 10_001, 1, 2, 1, id="1.0001-to-2"),
    pytest.param(7, 15, "sell", 10_001, 2, 14, 31, id="sell-30.003-to-31"),
    pytest.param(0, 30, "sell", 50, 4, 0, 1, id="maker-free-taker-0.6-to-1"),
    pytest.param(10_000, 10_000, "buy", 100, 1, 100, 10_000, id="full-100pct"),
]


@pytest.mark.parametrize(("mb", "tb", "side", "price", "qty", "mfee", "tfee"), FEE_TABLE)
def test_fee_table(mb, tb, side, price, qty, mfee, tfee):
    ex = standard()
    ex.run([(fees(mb, tb), [("fees_set", 0, mb, tb)])])
    maker_side = "sell" if side == "buy" else "buy"
    maker = (sell if maker_side == "sell" else buy)(1, 1, price, qty)
    taker = (buy if side == "buy" else sell)(2, 2, price, qty)
    ex.ok(maker)
    events = ex.ok(taker)
    base, quote = qty * 10_000, price * qty
    assert events[1] == Trade(SYM, price, qty, base, quote, 1, 2, 1, 2, side, mfee, tfee, 0, 0)
    if side == "buy":
        # user 2 buys: pays quote, gets base minus its fee; user 1 gets quote minus its fee
        expect = {
            (2, U): (START - quote, 0),
            (2, B): (START + base - tfee, 0),
            (1, U): (START + quote - mfee, 0),
            (1, B): (START - base, 0),
            (0, B): (tfee, 0),
            (0, U): (mfee, 0),
        }
    else:
        expect = {
            (2, B): (START - base, 0),
            (2, U): (START + quote - tfee, 0),
            (1, B): (START + base - mfee, 0),
            (1, U): (START - quote, 0),
            (0, U): (tfee, 0),
            (0, B): (mfee, 0),
        }
    ex.assert_balances(expect)


def test_worked_example_taker_buy():
    """maker 10 bps, taker 20 bps; user 1 sells 3 at 100, user 2 buys: user 2 gets
    30_000 - 60 BTC units, user 1 gets 300 - ceil(0.3) = 299 USDT units."""
    ex = standard()
    ex.run(
        [
            (fees(10, 20), [("fees_set", 0, 10, 20)]),
            (sell(1, 1, 100, 3), None),
            (
                buy(2, 2, 100, 3),
                [("accepted", 2, 300, "new"), ("trade", 1, 2, 100, 3)],
                {
                    (1, U): (1_000_299, 0),
                    (1, B): (970_000, 0),
                    (2, U): (999_700, 0),
                    (2, B): (1_029_940, 0),
                    (0, U): (1, 0),
                    (0, B): (60, 0),
                },
            ),
        ]
    )


def test_rounding_is_per_fill():
    """Two fills of 1 lot at 101 with maker 10 bps: ceil(0.101) twice = 2, not
    ceil(0.202) = 1."""
    ex = standard()
    ex.ok(fees(10, 0))
    ex.ok(sell(1, 1, 101, 1))
    ex.ok(sell(2, 1, 101, 1))
    events = ex.ok(buy(3, 2, 101, 2))
    assert [(e.maker_fee, e.taker_fee) for e in events if isinstance(e, Trade)] == [(1, 0), (1, 0)]
    ex.assert_balances({(1, U): (1_000_200, 0), (0, U): (2, 0), (0, B): (0, 0)})


def test_fees_do_not_change_the_lock():
    """Fees come out of what is received, so a buyer with exactly the notional can buy."""
    ex = standard()
    ex.ok(fees(10, 20))
    ex.ok({"op": "deposit", "user": 9, "asset": U, "amount": 300})
    ex.ok(sell(1, 1, 100, 3))
    ex.run(
        [
            (
                buy(2, 9, 100, 3),
                [("accepted", 2, 300, "new"), ("trade", 1, 2, 100, 3)],
                {(9, U): (0, 0), (9, B): (29_940, 0)},
            )
        ]
    )


TIERS = [
    pytest.param(
        [fees(10, 20), fees(0, 5, tier=1), {"op": "tier", "user": 2, "tier": 1}],
        # user 2 (tier 1) takes: 3 * 5 = 15; user 1 (tier 0) makes: ceil(0.3) = 1
        (1, 15),
        id="taker-in-tier-1",
    ),
    pytest.param(
        [fees(10, 20), fees(2, 5, tier=1), {"op": "tier", "user": 1, "tier": 1}],
        # user 1 (tier 1) makes: ceil(300 * 2 / 10000) = 1; user 2 (tier 0) takes 60
        (1, 60),
        id="maker-in-tier-1",
    ),
    pytest.param(
        [
            fees(10, 20),
            fees(0, 5, tier=1),
            fees(0, 0, tier=2),
            {"op": "tier", "user": 1, "tier": 2},
            {"op": "tier", "user": 2, "tier": 1},
        ],
        (0, 15),
        id="both-in-tiers",
    ),
    pytest.param(
        [fees(10, 20), fees(0, 5, tier=1), {"op": "tier", "user": 2, "tier": 1}, fees(0, 9, 1)],
        # changing a tier's rates applies to its users at once
        (1, 27),
        id="tier-rates-changed",
    ),
    pytest.param(
        [
            fees(10, 20),
            fees(0, 5, tier=1),
            {"op": "tier", "user": 2, "tier": 1},
            {"op": "tier", "user": 2, "tier": 0},
        ],
        (1, 60),
        id="back-to-tier-0",
    ),
    pytest.param(
        [fees(0, 5, tier=1), {"op": "tier", "user": 2, "tier": 1}],
        # tier 0 is free unless set
        (0, 15),
        id="tier-0-default-free",
    ),
]


@pytest.mark.parametrize(("setup", "expected"), TIERS)
def test_tiers(setup, expected):
    ex = standard()
    for cmd in setup:
        ex.ok(cmd)
    ex.ok(sell(1, 1, 100, 3))
    events = ex.ok(buy(2, 2, 100, 3))
    t = events[1]
    assert (t.maker_fee, t.taker_fee) == expected
    ex.assert_balances({(0, U): (expected[0], 0), (0, B): (expected[1], 0)})


def test_tier_events_and_unknown_tier():
    ex = standard()
    ex.run(
        [
            ({"op": "tier", "user": 2, "tier": 3}, [("rejected", "unknown_tier")]),
            (fees(1, 2, tier=3), [("fees_set", 3, 1, 2)]),
            ({"op": "tier", "user": 2, "tier": 3}, [("tier_set", 2, 3)]),
            ({"op": "tier", "user": 2, "tier": 0}, [("tier_set", 2, 0)]),
        ]
    )


def test_market_quote_buy_pays_fee_in_base():
    ex = standard()
    ex.ok(fees(10, 20))
    ex.ok(sell(1, 1, 100, 1))
    ex.ok(sell(2, 3, 101, 1))
    events = ex.ok(market(3, 2, "buy", quote_qty=201))
    assert [brief(e) for e in events] == [
        ("accepted", 3, 201, "new"),
        ("trade", 1, 3, 100, 1),
        ("trade", 2, 3, 101, 1),
    ]
    # 2 lots minus 20 bps: 20_000 - 20 - 20; makers pay ceil(0.1) and ceil(0.101)
    ex.assert_balances(
        {
            (2, B): (1_019_960, 0),
            (2, U): (999_799, 0),
            (0, B): (40, 0),
            (0, U): (2, 0),
            (1, U): (1_000_099, 0),
            (3, U): (1_000_100, 0),
        }
    )


def test_fee_account_collects_over_trades_and_can_pay_out():
    ex = standard()
    ex.ok(fees(0, 100))
    ex.ok(buy(1, 1, 100, 5))
    ex.ok(sell(2, 2, 100, 2))  # taker fee ceil(200 * 1%) = 2
    ex.ok(sell(3, 3, 100, 3))  # 3
    ex.assert_balances({(0, U): (5, 0)})
    ex.run(
        [
            (
                {"op": "transfer", "user": 0, "to": 4, "asset": U, "amount": 5},
                [("transferred", 0, 4, U, 5)],
                {(0, U): (0, 0), (4, U): (1_000_005, 0)},
            )
        ]
    )
