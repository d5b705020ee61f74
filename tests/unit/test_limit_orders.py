"""Limit orders: GTC, IOC, FOK, GTD, post-only; price-time priority, trades at the maker's
price, and the unlocked price improvement of a buy taker.

Units (see ``helpers``): a fill of ``q`` lots at ``p`` ticks moves ``p * q`` USDT minor
units and ``q * 10000`` BTC minor units; users 1-4 start with 1_000_000 of each.
"""

from __future__ import annotations

import pytest

from tests.unit.helpers import SYM, brief, buy, sell, standard
from tradewind.core.events import OrderAccepted, OrderReleased, Trade

U, B = "USDT", "BTC"

# Each case: resting orders placed first (must not trade), then one taker command, the
# taker's events, balances after it and the book after it as (bids, asks) of
# (price, id, open qty), best price first, FIFO within a price.
CASES = [
    pytest.param(
        [sell(1, 1, 101, 3)],
        buy(2, 2, 100, 2),
        [("accepted", 2, 200, "new")],
        {(2, U): (999_800, 200), (1, B): (970_000, 30_000)},
        ([(100, 2, 2)], [(101, 1, 3)]),
        id="gtc-buy-below-ask-rests",
    ),
    pytest.param(
        [buy(1, 1, 99, 3)],
        sell(2, 2, 100, 2),
        [("accepted", 2, 20_000, "new")],
        {(2, B): (980_000, 20_000), (1, U): (999_703, 297)},
        ([(99, 1, 3)], [(100, 2, 2)]),
        id="gtc-sell-above-bid-rests",
    ),
    pytest.param(
        [sell(1, 1, 100, 3)],
        buy(2, 2, 100, 3),
        [("accepted", 2, 300, "new"), ("trade", 1, 2, 100, 3)],
        {
            (1, B): (970_000, 0),
            (1, U): (1_000_300, 0),
            (2, B): (1_030_000, 0),
            (2, U): (999_700, 0),
        },
        ([], []),
        id="gtc-buy-fills-exactly",
    ),
    pytest.param(
        [sell(1, 1, 100, 3)],
        buy(2, 2, 102, 3),
        # locks 102*3 = 306, pays 100*3 = 300 at the maker's price, gets 6 back
        [("accepted", 2, 306, "new"), ("trade", 1, 2, 100, 3), ("released", 2, 6)],
        {(1, U): (1_000_300, 0), (2, B): (1_030_000, 0), (2, U): (999_700, 0)},
        ([], []),
        id="buy-taker-pays-maker-price-improvement-unlocked",
    ),
    pytest.param(
        [sell(1, 1, 100, 2)],
        buy(2, 2, 102, 5),
        # locks 510, pays 200, rests 3 at 102 holding 306; the other 4 go back
        [("accepted", 2, 510, "new"), ("trade", 1, 2, 100, 2), ("released", 2, 4)],
        {(2, U): (999_494, 306), (2, B): (1_020_000, 0), (1, U): (1_000_200, 0)},
        ([(102, 2, 3)], []),
        id="partial-fill-rests-remainder-at-limit",
    ),
    pytest.param(
        [sell(1, 1, 100, 2), sell(3, 3, 100, 1), sell(4, 1, 101, 2)],
        buy(5, 2, 101, 4),
        # 2@100 (id 1 first: earlier), 1@100 (id 3), 1@101: pays 401 of 404 locked
        [
            ("accepted", 5, 404, "new"),
            ("trade", 1, 5, 100, 2),
            ("trade", 3, 5, 100, 1),
            ("trade", 4, 5, 101, 1),
            ("released", 5, 3),
        ],
        {
            (2, U): (999_599, 0),
            (2, B): (1_040_000, 0),
            (1, U): (1_000_301, 0),
            (1, B): (960_000, 10_000),
            (3, U): (1_000_100, 0),
        },
        ([], [(101, 4, 1)]),
        id="sweep-levels-price-then-time",
    ),
    pytest.param(
        [sell(1, 1, 101, 1), sell(2, 3, 100, 1)],
        buy(3, 2, 101, 1),
        # the better price wins although it arrived later; 101 - 100 = 1 back
        [("accepted", 3, 101, "new"), ("trade", 2, 3, 100, 1), ("released", 3, 1)],
        {(2, U): (999_900, 0), (3, U): (1_000_100, 0)},
        ([], [(101, 1, 1)]),
        id="better-price-before-earlier-order",
    ),
    pytest.param(
        [buy(1, 1, 100, 2), buy(2, 3, 101, 1)],
        sell(3, 2, 99, 2),
        # sell taker gets the makers' prices, best bid first: 101 + 100
        [("accepted", 3, 20_000, "new"), ("trade", 2, 3, 101, 1), ("trade", 1, 3, 100, 1)],
        {
            (2, U): (1_000_201, 0),
            (2, B): (980_000, 0),
            (1, U): (999_800, 100),
            (1, B): (1_010_000, 0),
            (3, U): (999_899, 0),
            (3, B): (1_010_000, 0),
        },
        ([(100, 1, 1)], []),
        id="sell-taker-trades-at-bid-prices",
    ),
    pytest.param(
        [sell(1, 1, 100, 2)],
        buy(2, 2, 101, 5, tif="IOC"),
        [("accepted", 2, 505, "new"), ("trade", 1, 2, 100, 2), ("cancelled", 2, 3, 305, "ioc")],
        {(2, U): (999_800, 0), (2, B): (1_020_000, 0)},
        ([], []),
        id="ioc-partial-rest-cancelled",
    ),
    pytest.param(
        [sell(1, 1, 100, 2)],
        buy(2, 2, 99, 1, tif="IOC"),
        [("accepted", 2, 99, "new"), ("cancelled", 2, 1, 99, "ioc")],
        {(2, U): (1_000_000, 0)},
        ([], [(100, 1, 2)]),
        id="ioc-not-crossing-cancelled",
    ),
    pytest.param(
        [buy(1, 1, 100, 1)],
        sell(2, 2, 100, 3, tif="IOC"),
        [
            ("accepted", 2, 30_000, "new"),
            ("trade", 1, 2, 100, 1),
            ("cancelled", 2, 2, 20_000, "ioc"),
        ],
        {(2, B): (990_000, 0), (2, U): (1_000_100, 0)},
        ([], []),
        id="ioc-sell-partial",
    ),
    pytest.param(
        [sell(1, 1, 100, 2), sell(3, 3, 101, 2)],
        buy(2, 2, 101, 4, tif="FOK"),
        # locks 404, pays 200 + 202 = 402, 2 back
        [
            ("accepted", 2, 404, "new"),
            ("trade", 1, 2, 100, 2),
            ("trade", 3, 2, 101, 2),
            ("released", 2, 2),
        ],
        {(2, U): (999_598, 0), (2, B): (1_040_000, 0)},
        ([], []),
        id="fok-fills-in-full",
    ),
    pytest.param(
        [sell(1, 1, 100, 2), sell(3, 3, 101, 2)],
        buy(2, 2, 101, 3, tif="FOK"),
        # locks 303, pays 200 + 101 = 301, 2 back
        [
            ("accepted", 2, 303, "new"),
            ("trade", 1, 2, 100, 2),
            ("trade", 3, 2, 101, 1),
            ("released", 2, 2),
        ],
        {(2, U): (999_699, 0), (2, B): (1_030_000, 0)},
        ([], [(101, 3, 1)]),
        id="fok-fills-in-full-leaving-maker-rest",
    ),
    pytest.param(
        [sell(1, 1, 100, 2)],
        buy(2, 2, 101, 3, tif="FOK"),
        [("rejected", "fok_not_fillable")],
        {(2, U): (1_000_000, 0)},
        ([], [(100, 1, 2)]),
        id="fok-not-enough-quantity",
    ),
    pytest.param(
        [sell(1, 1, 100, 2), sell(3, 3, 102, 2)],
        buy(2, 2, 101, 3, tif="FOK"),
        [("rejected", "fok_not_fillable")],
        {(2, U): (1_000_000, 0)},
        ([], [(100, 1, 2), (102, 3, 2)]),
        id="fok-not-enough-within-limit",
    ),
    pytest.param(
        [buy(1, 1, 100, 2)],
        sell(2, 2, 100, 3, tif="FOK"),
        [("rejected", "fok_not_fillable")],
        {(2, B): (1_000_000, 0)},
        ([(100, 1, 2)], []),
        id="fok-sell-not-fillable",
    ),
    pytest.param(
        [],
        sell(1, 1, 100, 2, tif="GTD", expire_ts=5_000),
        [("accepted", 1, 20_000, "new")],
        {(1, B): (980_000, 20_000)},
        ([], [(100, 1, 2)]),
        id="gtd-rests",
    ),
    pytest.param(
        [sell(1, 1, 100, 2)],
        buy(2, 2, 100, 3, tif="GTD", expire_ts=5_000),
        [("accepted", 2, 300, "new"), ("trade", 1, 2, 100, 2)],
        {(2, U): (999_700, 100)},
        ([(100, 2, 1)], []),
        id="gtd-matches-then-rests",
    ),
    pytest.param(
        [sell(1, 1, 100, 2)],
        buy(2, 2, 99, 1, post_only=True),
        [("accepted", 2, 99, "new")],
        {(2, U): (999_901, 99)},
        ([(99, 2, 1)], [(100, 1, 2)]),
        id="post-only-buy-rests",
    ),
    pytest.param(
        [sell(1, 1, 100, 2)],
        buy(2, 2, 100, 1, post_only=True),
        [("rejected", "post_only_would_take")],
        {(2, U): (1_000_000, 0)},
        ([], [(100, 1, 2)]),
        id="post-only-buy-would-take",
    ),
    pytest.param(
        [buy(1, 1, 100, 2)],
        sell(2, 2, 99, 1, post_only=True),
        [("rejected", "post_only_would_take")],
        {(2, B): (1_000_000, 0)},
        ([(100, 1, 2)], []),
        id="post-only-sell-would-take",
    ),
    pytest.param(
        [buy(1, 1, 100, 2)],
        sell(2, 2, 101, 1, post_only=True, tif="GTD", expire_ts=9_000),
        [("accepted", 2, 10_000, "new")],
        {(2, B): (990_000, 10_000)},
        ([(100, 1, 2)], [(101, 2, 1)]),
        id="post-only-gtd-rests",
    ),
]


@pytest.mark.parametrize(("makers", "taker", "events", "balances", "book"), CASES)
def test_limit_order_table(makers, taker, events, balances, book):
    ex = standard()
    for m in makers:
        assert [brief(e)[0] for e in ex.ok(m)] == ["accepted"]
    ex.run([(taker, events, balances)])
    assert ex.book() == book


def test_fifo_within_a_level_across_several_takers():
    ex = standard()
    ex.run(
        [
            (sell(1, 1, 100, 2), [("accepted", 1, 20_000, "new")]),
            (sell(2, 3, 100, 2), [("accepted", 2, 20_000, "new")]),
            (sell(3, 4, 100, 2), [("accepted", 3, 20_000, "new")]),
            (buy(10, 2, 100, 1), [("accepted", 10, 100, "new"), ("trade", 1, 10, 100, 1)]),
            (
                buy(11, 2, 100, 2),
                [("accepted", 11, 200, "new"), ("trade", 1, 11, 100, 1), ("trade", 2, 11, 100, 1)],
            ),
            (
                buy(12, 2, 100, 3),
                [("accepted", 12, 300, "new"), ("trade", 2, 12, 100, 1), ("trade", 3, 12, 100, 2)],
                {(1, U): (1_000_200, 0), (3, U): (1_000_200, 0), (4, U): (1_000_200, 0)},
            ),
        ]
    )
    assert ex.book() == ([], [])


def test_accepted_and_trade_events_in_full():
    ex = standard()
    [acc] = ex.ok(sell(1, 1, 100, 3, client_id="a-1"))
    assert acc == OrderAccepted(
        1, 1, SYM, "sell", "limit", 100, 3, None, "GTC", None, None, "a-1", 30_000, "new"
    )
    acc2, t1, rel = ex.ok(buy(2, 2, 103, 2))
    assert acc2 == OrderAccepted(
        2, 2, SYM, "buy", "limit", 103, 2, None, "GTC", None, None, None, 206, "new"
    )
    assert t1 == Trade(SYM, 100, 2, 20_000, 200, 1, 2, 1, 2, "buy", 0, 0, 1, 0)
    # filled in full at 100 of a 103 limit: 206 - 200 = 6 goes back, after the trade
    assert rel == OrderReleased(2, 2, SYM, 6)
    assert ex.last_price() == 100


def test_resting_buy_holds_exactly_price_times_qty_after_improvement():
    """Engine docstring: a resting buy always holds exactly price * qty * notional."""
    ex = standard()
    ex.run(
        [
            (sell(1, 1, 95, 1), None),
            (sell(2, 1, 97, 1), None),
            # locks 100*5 = 500; pays 95 + 97 = 192; rests 3 at 100 holding 300; 8 back
            (
                buy(3, 2, 100, 5),
                [
                    ("accepted", 3, 500, "new"),
                    ("trade", 1, 3, 95, 1),
                    ("trade", 2, 3, 97, 1),
                    ("released", 3, 8),
                ],
                {(2, U): (999_508, 300)},
            ),
            # the rest keeps its price: a later seller gets 100, not 95
            (
                sell(4, 3, 90, 3),
                [("accepted", 4, 30_000, "new"), ("trade", 3, 4, 100, 3)],
                {(2, U): (999_508, 0), (2, B): (1_050_000, 0), (3, U): (1_000_300, 0)},
            ),
        ]
    )


def test_unfilled_gtc_order_id_may_be_reused_once_closed():
    ex = standard()
    ex.run(
        [
            (sell(1, 1, 100, 1), [("accepted", 1, 10_000, "new")]),
            (sell(1, 1, 100, 1), [("rejected", "duplicate_order_id")]),
            (buy(2, 2, 100, 1), [("accepted", 2, 100, "new"), ("trade", 1, 2, 100, 1)]),
            (sell(1, 1, 100, 1), [("accepted", 1, 10_000, "new")]),
        ]
    )
