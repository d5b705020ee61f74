"""Market orders: by base quantity and by quote amount, the protection band
(``market_band_bps``, default 500 bps around the best opposite price at arrival) and the
``no_liquidity`` rejection.

A market buy of ``qty`` locks ``cap * qty`` where ``cap = floor(best_ask * (1 + band))``;
a market buy by ``quote_qty`` locks exactly ``quote_qty``; a market sell locks its base.
A sell's floor is ``ceil(best_bid * (1 - band))``.
"""

from __future__ import annotations

import pytest

from tests.unit.helpers import SYM, brief, buy, market, sell, standard
from tradewind.core.events import OrderAccepted

U, B = "USDT", "BTC"

# (symbol fields, resting orders, market order, events, balances, book after)
CASES = [
    pytest.param(
        {},
        [sell(1, 1, 100, 2), sell(3, 3, 102, 2)],
        market(5, 2, "buy", qty=3),
        # cap = 100 * 1.05 = 105; locks 315; pays 200 + 102 = 302; 13 back
        [
            ("accepted", 5, 315, "new"),
            ("trade", 1, 5, 100, 2),
            ("trade", 3, 5, 102, 1),
            ("released", 5, 13),
        ],
        {(2, U): (999_698, 0), (2, B): (1_030_000, 0), (3, U): (1_000_102, 0)},
        ([], [(102, 3, 1)]),
        id="buy-qty-fills",
    ),
    pytest.param(
        {},
        [sell(1, 1, 100, 2)],
        market(5, 2, "buy", qty=5),
        # locks 105 * 5 = 525, pays 200, the unfilled 3 lots release 325
        [
            ("accepted", 5, 525, "new"),
            ("trade", 1, 5, 100, 2),
            ("cancelled", 5, 3, 325, "market_remainder"),
        ],
        {(2, U): (999_800, 0), (2, B): (1_020_000, 0)},
        ([], []),
        id="buy-qty-book-runs-out",
    ),
    pytest.param(
        {},
        [buy(1, 1, 100, 2), buy(3, 3, 98, 2)],
        market(5, 2, "sell", qty=3),
        [("accepted", 5, 30_000, "new"), ("trade", 1, 5, 100, 2), ("trade", 3, 5, 98, 1)],
        {(2, B): (970_000, 0), (2, U): (1_000_298, 0), (3, B): (1_010_000, 0)},
        ([(98, 3, 1)], []),
        id="sell-qty-fills",
    ),
    pytest.param(
        {},
        [sell(1, 1, 100, 1), sell(3, 3, 105, 1), sell(4, 4, 106, 1)],
        market(5, 2, "buy", qty=3),
        # cap 105: 106 is beyond the band
        [
            ("accepted", 5, 315, "new"),
            ("trade", 1, 5, 100, 1),
            ("trade", 3, 5, 105, 1),
            ("cancelled", 5, 1, 110, "market_remainder"),
        ],
        {(2, U): (999_795, 0), (2, B): (1_020_000, 0)},
        ([], [(106, 4, 1)]),
        id="buy-band-stops-at-105",
    ),
    pytest.param(
        {},
        [sell(1, 1, 101, 1), sell(3, 3, 106, 1), sell(4, 4, 107, 1)],
        market(5, 2, "buy", qty=3),
        # cap = floor(101 * 1.05) = floor(106.05) = 106; locks 318
        [
            ("accepted", 5, 318, "new"),
            ("trade", 1, 5, 101, 1),
            ("trade", 3, 5, 106, 1),
            ("cancelled", 5, 1, 111, "market_remainder"),
        ],
        {(2, U): (999_793, 0)},
        ([], [(107, 4, 1)]),
        id="buy-band-rounds-down",
    ),
    pytest.param(
        {},
        [buy(1, 1, 100, 1), buy(3, 3, 95, 1), buy(4, 4, 94, 1)],
        market(5, 2, "sell", qty=3),
        # floor = 100 * 0.95 = 95
        [
            ("accepted", 5, 30_000, "new"),
            ("trade", 1, 5, 100, 1),
            ("trade", 3, 5, 95, 1),
            ("cancelled", 5, 1, 10_000, "market_remainder"),
        ],
        {(2, B): (980_000, 0), (2, U): (1_000_195, 0)},
        ([(94, 4, 1)], []),
        id="sell-band-stops-at-95",
    ),
    pytest.param(
        {},
        [buy(1, 1, 101, 1), buy(3, 3, 96, 1), buy(4, 4, 95, 1)],
        market(5, 2, "sell", qty=3),
        # floor = ceil(101 * 0.95) = ceil(95.95) = 96
        [
            ("accepted", 5, 30_000, "new"),
            ("trade", 1, 5, 101, 1),
            ("trade", 3, 5, 96, 1),
            ("cancelled", 5, 1, 10_000, "market_remainder"),
        ],
        {(2, U): (1_000_197, 0)},
        ([(95, 4, 1)], []),
        id="sell-band-rounds-up",
    ),
    pytest.param(
        {"market_band_bps": 100},
        [sell(1, 1, 100, 1), sell(3, 3, 101, 1), sell(4, 4, 102, 1)],
        market(5, 2, "buy", qty=3),
        # 1% band: cap 101, locks 303
        [
            ("accepted", 5, 303, "new"),
            ("trade", 1, 5, 100, 1),
            ("trade", 3, 5, 101, 1),
            ("cancelled", 5, 1, 102, "market_remainder"),
        ],
        {(2, U): (999_799, 0)},
        ([], [(102, 4, 1)]),
        id="custom-band-1pct",
    ),
    pytest.param(
        {"market_band_bps": 0},
        [sell(1, 1, 100, 1), sell(3, 3, 101, 1)],
        market(5, 2, "buy", qty=2),
        [
            ("accepted", 5, 200, "new"),
            ("trade", 1, 5, 100, 1),
            ("cancelled", 5, 1, 100, "market_remainder"),
        ],
        {(2, U): (999_900, 0)},
        ([], [(101, 3, 1)]),
        id="zero-band-best-level-only",
    ),
    pytest.param(
        {},
        [sell(1, 1, 100, 2), sell(3, 3, 102, 2)],
        market(5, 2, "buy", quote_qty=500),
        # 2 lots at 100 (200), then floor(300 / 102) = 2 lots at 102 (204); 96 back
        [
            ("accepted", 5, 500, "new"),
            ("trade", 1, 5, 100, 2),
            ("trade", 3, 5, 102, 2),
            ("cancelled", 5, 0, 96, "market_remainder"),
        ],
        {(2, U): (999_596, 0), (2, B): (1_040_000, 0)},
        ([], []),
        id="buy-quote-two-levels",
    ),
    pytest.param(
        {},
        [sell(1, 1, 100, 2), sell(3, 3, 102, 2)],
        market(5, 2, "buy", quote_qty=250),
        # 2 lots at 100; the 50 left cannot pay for a lot at 102
        [
            ("accepted", 5, 250, "new"),
            ("trade", 1, 5, 100, 2),
            ("cancelled", 5, 0, 50, "market_remainder"),
        ],
        {(2, U): (999_800, 0), (2, B): (1_020_000, 0)},
        ([], [(102, 3, 2)]),
        id="buy-quote-budget-left-over",
    ),
    pytest.param(
        {},
        [sell(1, 1, 100, 5)],
        market(5, 2, "buy", quote_qty=350),
        # whole lots only: floor(350 / 100) = 3
        [
            ("accepted", 5, 350, "new"),
            ("trade", 1, 5, 100, 3),
            ("cancelled", 5, 0, 50, "market_remainder"),
        ],
        {(2, U): (999_700, 0), (2, B): (1_030_000, 0)},
        ([], [(100, 1, 2)]),
        id="buy-quote-whole-lots",
    ),
    pytest.param(
        {},
        [sell(1, 1, 100, 1), sell(3, 3, 106, 5)],
        market(5, 2, "buy", quote_qty=1_000),
        # 106 is beyond the 105 cap: 1 lot, 900 back
        [
            ("accepted", 5, 1_000, "new"),
            ("trade", 1, 5, 100, 1),
            ("cancelled", 5, 0, 900, "market_remainder"),
        ],
        {(2, U): (999_900, 0)},
        ([], [(106, 3, 5)]),
        id="buy-quote-band",
    ),
    pytest.param(
        {},
        [sell(1, 1, 100, 2)],
        market(5, 2, "buy", quote_qty=200),
        # spends it all: nothing is left to return, so no OrderCancelled follows the trades
        [
            ("accepted", 5, 200, "new"),
            ("trade", 1, 5, 100, 2),
        ],
        {(2, U): (999_800, 0), (2, B): (1_020_000, 0)},
        ([], []),
        id="buy-quote-spent-exactly",
    ),
    pytest.param(
        {},
        [sell(1, 1, 100, 2)],
        market(5, 2, "buy", qty=1, tif="IOC"),
        # locks the cap 105, pays 100: the unused band of 5 is released
        [("accepted", 5, 105, "new"), ("trade", 1, 5, 100, 1), ("released", 5, 5)],
        {(2, U): (999_900, 0)},
        ([], [(100, 1, 1)]),
        id="explicit-ioc-allowed",
    ),
    pytest.param(
        {},
        [buy(1, 1, 100, 2)],
        market(5, 2, "buy", qty=1),
        [("rejected", "no_liquidity")],
        {(2, U): (1_000_000, 0)},
        ([(100, 1, 2)], []),
        id="buy-no-asks",
    ),
    pytest.param(
        {},
        [],
        market(5, 2, "buy", quote_qty=100),
        [("rejected", "no_liquidity")],
        {(2, U): (1_000_000, 0)},
        ([], []),
        id="buy-quote-empty-book",
    ),
    pytest.param(
        {},
        [sell(1, 1, 100, 2)],
        market(5, 2, "sell", qty=1),
        [("rejected", "no_liquidity")],
        {(2, B): (1_000_000, 0)},
        ([], [(100, 1, 2)]),
        id="sell-no-bids",
    ),
]


@pytest.mark.parametrize(("symbol", "makers", "order", "events", "balances", "book"), CASES)
def test_market_order_table(symbol, makers, order, events, balances, book):
    ex = standard(**symbol)
    for m in makers:
        assert [brief(e)[0] for e in ex.ok(m)] == ["accepted"]
    ex.run([(order, events, balances)])
    assert ex.book() == book


def test_market_buy_locks_the_band_worst_case():
    """A buyer who could pay the actual fill but not the band's worst case is refused."""
    ex = standard()
    ex.run(
        [
            ({"op": "deposit", "user": 9, "asset": U, "amount": 314}, None),
            (sell(1, 1, 100, 3), None),
            # cap 105 * 3 = 315 > 314
            (market(5, 9, "buy", qty=3), [("rejected", "insufficient_balance")]),
            ({"op": "deposit", "user": 9, "asset": U, "amount": 1}, None),
            (
                market(5, 9, "buy", qty=3),
                # pays 300 of the 315 locked: 15 released
                [("accepted", 5, 315, "new"), ("trade", 1, 5, 100, 3), ("released", 5, 15)],
                {(9, U): (15, 0), (9, B): (30_000, 0)},
            ),
        ]
    )


def test_market_quote_buy_needs_its_quote_amount():
    ex = standard()
    ex.run(
        [
            (sell(1, 1, 100, 3), None),
            (market(5, 2, "buy", quote_qty=1_000_001), [("rejected", "insufficient_balance")]),
            (market(5, 1, "sell", qty=101), [("rejected", "no_liquidity")]),
        ]
    )


def test_market_sell_needs_its_base():
    ex = standard()
    ex.run(
        [
            (buy(1, 1, 100, 3), None),
            (market(5, 2, "sell", qty=101), [("rejected", "insufficient_balance")]),
        ]
    )


def test_band_is_taken_at_arrival_from_the_best_opposite_price():
    """The band follows the book: after the 100 ask is gone, 106 is within 5% of 101."""
    ex = standard()
    ex.run(
        [
            (sell(1, 1, 100, 1), None),
            (sell(2, 1, 101, 1), None),
            (sell(3, 1, 106, 1), None),
            (
                market(5, 2, "buy", qty=3),
                [
                    ("accepted", 5, 315, "new"),
                    ("trade", 1, 5, 100, 1),
                    ("trade", 2, 5, 101, 1),
                    ("cancelled", 5, 1, 114, "market_remainder"),
                ],
            ),
            # best ask is now 106: cap floor(106 * 1.05) = 111
            (
                market(6, 2, "buy", qty=1),
                # pays 106 of 111: 5 released
                [("accepted", 6, 111, "new"), ("trade", 3, 6, 106, 1), ("released", 6, 5)],
                {(2, U): (999_693, 0), (2, B): (1_030_000, 0)},
            ),
        ]
    )
    assert ex.last_price() == 106


def test_market_orders_never_rest():
    ex = standard()
    ex.run([(sell(1, 1, 100, 1), None), (market(5, 2, "buy", qty=2), None)])
    assert ex.book() == ([], [])
    assert 5 not in ex.open_ids()


def test_accepted_events_in_full():
    ex = standard()
    ex.ok(sell(1, 1, 100, 5))
    acc = ex.ok(market(2, 2, "buy", qty=2, client_id="m"))[0]
    assert acc == OrderAccepted(
        2, 2, SYM, "buy", "market", None, 2, None, "IOC", None, None, "m", 210, "new"
    )
    acc = ex.ok(market(3, 2, "buy", quote_qty=250))[0]
    assert acc == OrderAccepted(
        3, 2, SYM, "buy", "market", None, None, 250, "IOC", None, None, None, 250, "new"
    )
