"""Iceberg orders: only ``display_qty`` is visible; when a slice is used up the next one
is shown at the back of its price level (losing time priority to orders already there).
The hidden quantity is still locked in full and still matchable."""

from __future__ import annotations

import pytest

from tests.unit.helpers import amend, brief, buy, market, sell, standard

U, B = "USDT", "BTC"


def test_iceberg_slices_refresh_at_the_back_of_the_level():
    ex = standard()
    # rows: (command, events, visible asks after, queue after as (price, id, open qty))
    rows = [
        (
            sell(1, 1, 100, 10, display_qty=3),
            [("accepted", 1, 100_000, "new")],
            [(100, 3)],
            [(100, 1, 10)],
        ),
        (
            sell(2, 3, 100, 2),
            [("accepted", 2, 20_000, "new")],
            [(100, 5)],
            [(100, 1, 10), (100, 2, 2)],
        ),
        # takes the first slice; the iceberg shows 3 more behind order 2
        (
            buy(10, 2, 100, 3),
            [("accepted", 10, 300, "new"), ("trade", 1, 10, 100, 3)],
            [(100, 5)],
            [(100, 2, 2), (100, 1, 7)],
        ),
        # order 2 now comes first
        (
            buy(11, 2, 100, 2),
            [("accepted", 11, 200, "new"), ("trade", 2, 11, 100, 2)],
            [(100, 3)],
            [(100, 1, 7)],
        ),
        # a taker larger than a slice: slice of 3, refresh, then 1 of the next slice
        (
            buy(12, 2, 100, 4),
            [("accepted", 12, 400, "new"), ("trade", 1, 12, 100, 3), ("trade", 1, 12, 100, 1)],
            [(100, 2)],
            [(100, 1, 3)],
        ),
        # the 2 left of this slice; the last slice then shows only the 1 left
        (
            buy(13, 2, 100, 2),
            [("accepted", 13, 200, "new"), ("trade", 1, 13, 100, 2)],
            [(100, 1)],
            [(100, 1, 1)],
        ),
        (
            buy(14, 2, 100, 1),
            [("accepted", 14, 100, "new"), ("trade", 1, 14, 100, 1)],
            [],
            [],
        ),
    ]
    for cmd, events, depth, queue in rows:
        assert [brief(e) for e in ex.do(cmd)] == events
        assert ex.depth(buy=False) == depth
        assert ex.asks() == queue
    ex.assert_balances(
        {(1, B): (900_000, 0), (1, U): (1_001_000, 0), (2, U): (998_800, 0), (2, B): (1_120_000, 0)}
    )


def test_trade_reports_open_quantity_including_hidden():
    ex = standard()
    ex.ok(sell(1, 1, 100, 10, display_qty=4))
    events = ex.ok(buy(2, 2, 100, 1))
    t = events[1]
    assert (t.qty, t.maker_left, t.taker_left) == (1, 9, 0)
    assert ex.depth(buy=False) == [(100, 3)]


def test_large_taker_eats_hidden_quantity_through_refreshes():
    ex = standard()
    ex.ok(sell(1, 1, 100, 7, display_qty=2))
    ex.ok(sell(2, 3, 101, 1))
    ex.run(
        [
            (
                buy(10, 2, 101, 8),
                [
                    ("accepted", 10, 808, "new"),
                    ("trade", 1, 10, 100, 2),
                    ("trade", 1, 10, 100, 2),
                    ("trade", 1, 10, 100, 2),
                    ("trade", 1, 10, 100, 1),
                    ("trade", 2, 10, 101, 1),
                    ("released", 10, 7),
                ],
                # pays 700 + 101 = 801 of 808: 7 released
                {(2, U): (999_199, 0), (2, B): (1_080_000, 0), (1, B): (930_000, 0)},
            ),
        ]
    )
    assert ex.book() == ([], [])


def test_iceberg_taker_takes_in_full_then_rests_a_slice():
    ex = standard()
    ex.ok(sell(1, 1, 100, 4))
    ex.run(
        [
            (
                buy(2, 2, 100, 10, display_qty=3),
                [("accepted", 2, 1_000, "new"), ("trade", 1, 2, 100, 4)],
                {(2, U): (999_000, 600)},
            ),
        ]
    )
    assert ex.bids() == [(100, 2, 6)]
    assert ex.depth(buy=True) == [(100, 3)]


def test_iceberg_buy_side_and_other_levels():
    ex = standard()
    ex.ok(buy(1, 1, 100, 6, display_qty=2))
    ex.ok(buy(2, 3, 100, 1))
    ex.ok(buy(3, 4, 99, 5, display_qty=1))
    assert ex.depth(buy=True) == [(100, 3), (99, 1)]
    ex.run(
        [
            (
                sell(10, 2, 100, 3),
                [
                    ("accepted", 10, 30_000, "new"),
                    ("trade", 1, 10, 100, 2),
                    ("trade", 2, 10, 100, 1),
                ],
                {(1, U): (999_400, 400), (1, B): (1_020_000, 0)},
            )
        ]
    )
    assert ex.bids() == [(100, 1, 4), (99, 3, 5)]
    assert ex.depth(buy=True) == [(100, 2), (99, 1)]


def test_market_quote_order_counts_hidden_quantity():
    ex = standard()
    ex.ok(sell(1, 1, 100, 5, display_qty=2))
    ex.run(
        [
            (
                market(10, 2, "buy", quote_qty=450),
                [
                    ("accepted", 10, 450, "new"),
                    ("trade", 1, 10, 100, 2),
                    ("trade", 1, 10, 100, 2),
                    ("cancelled", 10, 0, 50, "market_remainder"),
                ],
                {(2, U): (999_600, 0), (2, B): (1_040_000, 0)},
            )
        ]
    )
    assert ex.asks() == [(100, 1, 1)]


def test_fok_counts_hidden_quantity():
    ex = standard()
    ex.ok(sell(1, 1, 100, 5, display_qty=1))
    ex.run(
        [
            (buy(10, 2, 100, 6, tif="FOK"), [("rejected", "fok_not_fillable")]),
            (
                buy(11, 2, 100, 5, tif="FOK"),
                [("accepted", 11, 500, "new")] + [("trade", 1, 11, 100, 1)] * 5,
            ),
        ]
    )


def test_amend_down_keeps_place_and_clips_visible():
    ex = standard()
    ex.ok(sell(1, 1, 100, 10, display_qty=4))
    ex.ok(sell(2, 3, 100, 1))
    ex.run(
        [
            (
                amend(1, 1, 3),
                [("amended", 1, 100, 3, 30_000, True)],
                {(1, B): (970_000, 30_000)},
            )
        ]
    )
    assert ex.asks() == [(100, 1, 3), (100, 2, 1)]
    assert ex.depth(buy=False) == [(100, 4)]
    # the iceberg now shows all it has: 3
    events = ex.ok(buy(10, 2, 100, 4))
    assert [brief(e) for e in events][1:] == [("trade", 1, 10, 100, 3), ("trade", 2, 10, 100, 1)]


def test_amend_up_keeps_display_and_goes_to_the_back():
    ex = standard()
    ex.ok(sell(1, 1, 100, 5, display_qty=2))
    ex.ok(sell(2, 3, 100, 1))
    ex.run([(amend(1, 1, 8), [("amended", 1, 100, 8, 80_000, False)])])
    assert ex.asks() == [(100, 2, 1), (100, 1, 8)]
    assert ex.depth(buy=False) == [(100, 3)]


@pytest.mark.parametrize(
    "order",
    [
        pytest.param(sell(1, 1, 100, 3, display_qty=3), id="display-equals-qty"),
        pytest.param(sell(1, 1, 100, 3, display_qty=4), id="display-above-qty"),
        pytest.param(sell(1, 1, 100, 3, display_qty=1, tif="IOC"), id="ioc"),
        pytest.param(sell(1, 1, 100, 3, display_qty=1, tif="FOK"), id="fok"),
        pytest.param(market(1, 1, "sell", qty=3, display_qty=1), id="market"),
    ],
)
def test_invalid_icebergs(order):
    ex = standard()
    ex.ok(buy(9, 2, 90, 1))
    ex.reject(order, "invalid_order")


def test_gtd_iceberg_allowed():
    ex = standard()
    ex.run(
        [
            (
                sell(1, 1, 100, 3, display_qty=1, tif="GTD", expire_ts=50),
                [("accepted", 1, 30_000, "new")],
            ),
            ({"op": "tick", "ts": 50}, [("cancelled", 1, 3, 30_000, "expired")]),
        ]
    )
