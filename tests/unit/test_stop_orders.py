"""Stop-market, stop-limit, take-profit and take-profit-limit orders.

They trigger on the last trade price: a buy stop and a sell take-profit when the price
rises to ``stop_price``, a sell stop and a buy take-profit when it falls to it. Triggered
orders run in arrival order and may cascade. An order whose trigger the last price
already meets is rejected (``would_trigger_immediately``). Funds are locked at
placement: a stop-limit buy locks ``price * qty``; a market stop buy locks
``floor(stop * (1 + band)) * qty`` (and when it fires it fills no further than that nor
than the band around the best ask then); sells lock their base.
"""

from __future__ import annotations

import pytest

from tests.unit.helpers import (
    SYM,
    Exchange,
    amend,
    brief,
    buy,
    cancel,
    market,
    sell,
    standard,
    stop,
)
from tradewind.core.events import OrderAccepted

U, B = "USDT", "BTC"


def at_100() -> Exchange:
    """Standard market whose last trade price is 100 (users 3 and 4 trade 1 lot)."""
    ex = standard()
    ex.ok(sell(90, 3, 100, 1))
    ex.ok(buy(91, 4, 100, 1))
    assert ex.last_price() == 100 and ex.book() == ([], [])
    return ex


# Placement: (stop order, accepted-or-rejected events, balances of user 2 after)
PLACEMENT = [
    pytest.param(
        stop(20, 2, "buy", "stop_market", 105, 2),
        # floor(105 * 1.05) = floor(110.25) = 110; 110 * 2
        [("accepted", 20, 220, "untriggered")],
        {(2, U): (999_780, 220)},
        id="stop-market-buy-locks-band-above-trigger",
    ),
    pytest.param(
        stop(20, 2, "sell", "stop_market", 95, 2),
        [("accepted", 20, 20_000, "untriggered")],
        {(2, B): (980_000, 20_000)},
        id="stop-market-sell-locks-base",
    ),
    pytest.param(
        stop(20, 2, "buy", "stop_limit", 105, 2, price=107),
        [("accepted", 20, 214, "untriggered")],
        {(2, U): (999_786, 214)},
        id="stop-limit-buy-locks-limit",
    ),
    pytest.param(
        stop(20, 2, "sell", "stop_limit", 95, 3, price=94),
        [("accepted", 20, 30_000, "untriggered")],
        {(2, B): (970_000, 30_000)},
        id="stop-limit-sell",
    ),
    pytest.param(
        stop(20, 2, "buy", "take_profit", 95, 1),
        # floor(95 * 1.05) = floor(99.75) = 99
        [("accepted", 20, 99, "untriggered")],
        {(2, U): (999_901, 99)},
        id="take-profit-buy",
    ),
    pytest.param(
        stop(20, 2, "sell", "take_profit", 110, 1),
        [("accepted", 20, 10_000, "untriggered")],
        {(2, B): (990_000, 10_000)},
        id="take-profit-sell",
    ),
    pytest.param(
        stop(20, 2, "buy", "take_profit_limit", 95, 2, price=96),
        [("accepted", 20, 192, "untriggered")],
        {(2, U): (999_808, 192)},
        id="take-profit-limit-buy",
    ),
    pytest.param(
        stop(20, 2, "sell", "take_profit_limit", 110, 2, price=109, tif="IOC"),
        [("accepted", 20, 20_000, "untriggered")],
        {(2, B): (980_000, 20_000)},
        id="take-profit-limit-sell-ioc",
    ),
    pytest.param(
        stop(20, 2, "buy", "stop_market", 100, 1),
        [("rejected", "would_trigger_immediately")],
        {(2, U): (1_000_000, 0)},
        id="buy-stop-at-last",
    ),
    pytest.param(
        stop(20, 2, "buy", "stop_limit", 99, 1, price=99),
        [("rejected", "would_trigger_immediately")],
        {(2, U): (1_000_000, 0)},
        id="buy-stop-below-last",
    ),
    pytest.param(
        stop(20, 2, "sell", "stop_market", 100, 1),
        [("rejected", "would_trigger_immediately")],
        {(2, B): (1_000_000, 0)},
        id="sell-stop-at-last",
    ),
    pytest.param(
        stop(20, 2, "sell", "stop_limit", 101, 1, price=101),
        [("rejected", "would_trigger_immediately")],
        {(2, B): (1_000_000, 0)},
        id="sell-stop-above-last",
    ),
    pytest.param(
        stop(20, 2, "sell", "take_profit", 100, 1),
        [("rejected", "would_trigger_immediately")],
        {(2, B): (1_000_000, 0)},
        id="sell-take-profit-at-last",
    ),
    pytest.param(
        stop(20, 2, "buy", "take_profit_limit", 101, 1, price=101),
        [("rejected", "would_trigger_immediately")],
        {(2, U): (1_000_000, 0)},
        id="buy-take-profit-above-last",
    ),
    pytest.param(
        stop(20, 2, "sell", "stop_market", 95, 101),
        [("rejected", "insufficient_balance")],
        {(2, B): (1_000_000, 0)},
        id="sell-stop-not-enough-base",
    ),
    pytest.param(
        stop(20, 2, "buy", "stop_limit", 105, 10_000, price=101),
        # 101 * 10_000 = 1_010_000 > 1_000_000
        [("rejected", "insufficient_balance")],
        {(2, U): (1_000_000, 0)},
        id="buy-stop-limit-not-enough-quote",
    ),
]


@pytest.mark.parametrize(("order", "events", "balances"), PLACEMENT)
def test_stop_placement_table(order, events, balances):
    ex = at_100()
    ex.run([(order, events, balances)])
    assert ex.book() == ([], [])


def test_no_last_price_means_no_immediate_trigger():
    ex = standard()
    ex.run(
        [
            (stop(20, 2, "buy", "stop_market", 90, 1), [("accepted", 20, 94, "untriggered")]),
            (stop(21, 2, "sell", "stop_market", 110, 1), [("accepted", 21, 10_000, "untriggered")]),
            # the first trade at 100 fires the buy stop (100 >= 90) and the sell stop
            # (100 <= 110), in arrival order; each finds nothing to take and is cancelled
            (sell(1, 1, 100, 1), [("accepted", 1, 10_000, "new")]),
            (
                buy(2, 3, 100, 1),
                [
                    ("accepted", 2, 100, "new"),
                    ("trade", 1, 2, 100, 1),
                    ("triggered", 20, 100),
                    ("cancelled", 20, 1, 94, "market_remainder"),
                    ("triggered", 21, 100),
                    ("cancelled", 21, 1, 10_000, "market_remainder"),
                ],
                {(2, U): (1_000_000, 0), (2, B): (1_000_000, 0)},
            ),
        ]
    )


def test_stop_market_buy_fires_and_fills():
    ex = at_100()
    ex.run(
        [
            (stop(20, 2, "buy", "stop_market", 105, 2), [("accepted", 20, 220, "untriggered")]),
            (sell(10, 1, 104, 1), [("accepted", 10, 10_000, "new")]),
            (sell(11, 1, 105, 1), [("accepted", 11, 10_000, "new")]),
            (sell(12, 1, 106, 3), [("accepted", 12, 30_000, "new")]),
            # 104: not yet
            (buy(13, 4, 104, 1), [("accepted", 13, 104, "new"), ("trade", 10, 13, 104, 1)]),
            # 105 reaches the trigger; the stop takes 2 at 106 (within 110), pays 212 of
            # the 220 it locked: 8 released
            (
                buy(14, 4, 105, 1),
                [
                    ("accepted", 14, 105, "new"),
                    ("trade", 11, 14, 105, 1),
                    ("triggered", 20, 105),
                    ("trade", 12, 20, 106, 2),
                    ("released", 20, 8),
                ],
                {(2, U): (999_788, 0), (2, B): (1_020_000, 0), (1, U): (1_000_421, 0)},
            ),
        ]
    )
    assert ex.book() == ([], [(106, 12, 1)])
    assert ex.last_price() == 106


def test_stop_market_fills_no_further_than_its_locked_cap():
    """Locked for 110 (105 + 5%); the ask at 111 is out of reach though within 5% of
    the best ask at trigger time."""
    ex = at_100()
    ex.run(
        [
            (stop(20, 2, "buy", "stop_market", 105, 2), [("accepted", 20, 220, "untriggered")]),
            (sell(10, 1, 106, 1), None),
            (sell(11, 1, 111, 2), None),
            (
                buy(12, 4, 106, 1),
                [
                    ("accepted", 12, 106, "new"),
                    ("trade", 10, 12, 106, 1),
                    ("triggered", 20, 106),
                    ("cancelled", 20, 2, 220, "market_remainder"),
                ],
                {(2, U): (1_000_000, 0)},
            ),
        ]
    )
    assert ex.asks() == [(111, 11, 2)]


def test_stop_market_sell_band_at_trigger_time():
    """Sell stop at 99 locks base; when it fires the best bid is 95: floor =
    max(ceil(99 * 0.95) = 95, ceil(95 * 0.95) = 91) = 95, so 94 is out of reach."""
    ex = at_100()
    ex.run(
        [
            (stop(20, 2, "sell", "stop_market", 99, 3), [("accepted", 20, 30_000, "untriggered")]),
            (buy(10, 1, 99, 1), None),
            (buy(11, 1, 95, 1), None),
            (buy(12, 1, 94, 1), None),
            (
                sell(13, 3, 99, 1),
                [
                    ("accepted", 13, 10_000, "new"),
                    ("trade", 10, 13, 99, 1),
                    ("triggered", 20, 99),
                    ("trade", 11, 20, 95, 1),
                    ("cancelled", 20, 2, 20_000, "market_remainder"),
                ],
                {(2, B): (990_000, 0), (2, U): (1_000_095, 0)},
            ),
        ]
    )
    assert ex.bids() == [(94, 12, 1)]


def test_stop_limit_buy_fires_then_rests_with_exact_lock():
    ex = at_100()
    ex.run(
        [
            (
                stop(20, 2, "buy", "stop_limit", 105, 3, price=107),
                [("accepted", 20, 321, "untriggered")],
            ),
            (sell(10, 1, 105, 1), None),
            (sell(11, 1, 106, 1), None),
            # the stop buys 1 at 106 and rests 2 at 107 (locks 214; 1 improvement back:
            # 321 - 106 - 214 = 1)
            (
                buy(12, 4, 105, 1),
                [
                    ("accepted", 12, 105, "new"),
                    ("trade", 10, 12, 105, 1),
                    ("triggered", 20, 105),
                    ("trade", 11, 20, 106, 1),
                    ("released", 20, 1),
                ],
                {(2, U): (999_680, 214), (2, B): (1_010_000, 0)},
            ),
        ]
    )
    assert ex.bids() == [(107, 20, 2)]
    # now an ordinary resting order: it can be amended and cancelled
    ex.run(
        [
            (amend(20, 2, 1), [("amended", 20, 107, 1, 107, True)]),
            (cancel(20, 2), [("cancelled", 20, 1, 107, "user")], {(2, U): (999_894, 0)}),
        ]
    )


def test_stop_limit_ioc_remainder_is_cancelled():
    ex = at_100()
    ex.run(
        [
            (
                stop(20, 2, "sell", "stop_limit", 95, 3, price=94, tif="IOC"),
                [("accepted", 20, 30_000, "untriggered")],
            ),
            (buy(10, 1, 95, 1), None),
            (buy(11, 1, 94, 1), None),
            (
                sell(12, 3, 95, 1),
                [
                    ("accepted", 12, 10_000, "new"),
                    ("trade", 10, 12, 95, 1),
                    ("triggered", 20, 95),
                    ("trade", 11, 20, 94, 1),
                    ("cancelled", 20, 2, 20_000, "ioc"),
                ],
                {(2, B): (990_000, 0), (2, U): (1_000_094, 0)},
            ),
        ]
    )
    assert ex.book() == ([], [])


@pytest.mark.parametrize(
    ("order", "fires_at", "quiet_at"),
    [
        pytest.param(stop(20, 2, "buy", "stop_market", 103, 1), 103, 97, id="buy-stop-up"),
        pytest.param(stop(20, 2, "sell", "stop_market", 97, 1), 97, 103, id="sell-stop-down"),
        pytest.param(stop(20, 2, "buy", "take_profit", 97, 1), 97, 103, id="buy-tp-down"),
        pytest.param(stop(20, 2, "sell", "take_profit", 103, 1), 103, 97, id="sell-tp-up"),
        pytest.param(
            stop(20, 2, "buy", "take_profit_limit", 97, 1, price=97), 97, 103, id="buy-tpl-down"
        ),
        pytest.param(
            stop(20, 2, "sell", "take_profit_limit", 103, 1, price=103), 103, 97, id="sell-tpl-up"
        ),
        pytest.param(
            stop(20, 2, "buy", "stop_limit", 103, 1, price=103), 103, 97, id="buy-stop-limit-up"
        ),
        pytest.param(
            stop(20, 2, "sell", "stop_limit", 97, 1, price=97), 97, 103, id="sell-stop-limit-down"
        ),
    ],
)
def test_trigger_direction(order, fires_at, quiet_at):
    """A trade on the wrong side of the trigger leaves the order waiting; a trade at the
    trigger fires it."""
    ex = at_100()
    ex.ok(order)
    ex.ok(sell(30, 3, quiet_at, 1))
    events = ex.ok(buy(31, 4, quiet_at, 1))
    assert ex.last_price() == quiet_at
    assert [brief(e)[0] for e in events] == ["accepted", "trade"]
    assert 20 in ex.core.stops
    ex.ok(sell(32, 3, fires_at, 1))
    events = ex.ok(buy(33, 4, fires_at, 1))
    assert [brief(e) for e in events][2] == ("triggered", 20, fires_at)
    assert 20 not in ex.core.stops


def test_stops_fire_in_arrival_order_not_trigger_order():
    """Both stops are reached by one trade at 105: the older one (trigger 104) runs
    before the newer one (trigger 103), each taking one lot."""
    ex = at_100()
    ex.run(
        [
            (stop(20, 2, "buy", "stop_market", 104, 1), [("accepted", 20, 109, "untriggered")]),
            (stop(21, 3, "buy", "stop_market", 103, 1), [("accepted", 21, 108, "untriggered")]),
            (sell(10, 1, 105, 1), None),
            (sell(11, 1, 106, 1), None),
            (sell(12, 1, 107, 1), None),
            (
                buy(13, 4, 105, 1),
                [
                    ("accepted", 13, 105, "new"),
                    ("trade", 10, 13, 105, 1),
                    ("triggered", 20, 105),
                    ("trade", 11, 20, 106, 1),
                    ("released", 20, 3),
                    ("triggered", 21, 105),
                    ("trade", 12, 21, 107, 1),
                    ("released", 21, 1),
                ],
                # 20 locked 109, paid 106; 21 locked 108, paid 107
                {(2, U): (999_894, 0), (3, U): (1_000_000 + 100 - 107, 0)},
            ),
        ]
    )


def test_cascade_each_stop_fill_fires_the_next():
    """Sell stops at 99 and 97. A trade at 99 fires the first, whose fill at 97 fires the
    second, whose fill at 96 ends the cascade."""
    ex = at_100()
    ex.run(
        [
            (stop(20, 2, "sell", "stop_market", 99, 1), [("accepted", 20, 10_000, "untriggered")]),
            (stop(21, 3, "sell", "stop_market", 97, 1), [("accepted", 21, 10_000, "untriggered")]),
            (buy(10, 1, 99, 1), None),
            (buy(11, 1, 97, 1), None),
            (buy(12, 1, 96, 5), None),
            (
                sell(13, 4, 99, 1),
                [
                    ("accepted", 13, 10_000, "new"),
                    ("trade", 10, 13, 99, 1),
                    ("triggered", 20, 99),
                    ("trade", 11, 20, 97, 1),
                    ("triggered", 21, 97),
                    ("trade", 12, 21, 96, 1),
                ],
                {
                    (2, U): (1_000_097, 0),
                    (2, B): (990_000, 0),
                    (3, U): (1_000_000 + 100 + 96, 0),
                    (1, B): (1_030_000, 0),
                    (1, U): (1_000_000 - 99 - 97 - 96 * 5, 96 * 4),
                },
            ),
        ]
    )
    assert ex.last_price() == 96
    assert ex.core.stops == {}


def test_market_order_trade_fires_stops():
    ex = at_100()
    ex.run(
        [
            (stop(20, 2, "sell", "take_profit", 102, 1), [("accepted", 20, 10_000, "untriggered")]),
            (sell(10, 1, 102, 1), None),
            (buy(11, 1, 101, 2), None),
            (
                market(12, 3, "buy", qty=1),
                # cap floor(102 * 1.05) = 107, pays 102: 5 released, before the stops fire
                [
                    ("accepted", 12, 107, "new"),
                    ("trade", 10, 12, 102, 1),
                    ("released", 12, 5),
                    ("triggered", 20, 102),
                    ("trade", 11, 20, 101, 1),
                ],
                # user 3 sold 1 at 100 in at_100(): 1_000_100 - 102
                {(2, U): (1_000_101, 0), (2, B): (990_000, 0), (3, U): (999_998, 0)},
            ),
        ]
    )
    assert ex.bids() == [(101, 11, 1)]


def test_cancel_untriggered_stop_returns_its_lock():
    ex = at_100()
    ex.run(
        [
            (stop(20, 2, "buy", "stop_market", 105, 2), [("accepted", 20, 220, "untriggered")]),
            (cancel(20, 2), [("cancelled", 20, 2, 220, "user")], {(2, U): (1_000_000, 0)}),
            (cancel(20, 2), [("rejected", "unknown_order")]),
        ]
    )
    # a cancelled stop no longer fires
    ex.ok(sell(10, 1, 106, 1))
    events = ex.ok(buy(11, 4, 106, 1))
    assert [type(e).__name__ for e in events] == ["OrderAccepted", "Trade"]


def test_untriggered_stop_is_not_amendable_and_not_in_book():
    ex = at_100()
    ex.run(
        [
            (stop(20, 2, "sell", "stop_limit", 95, 2, price=94), None),
            (amend(20, 2, 1), [("rejected", "not_amendable")]),
        ]
    )
    assert ex.book() == ([], [])
    assert set(ex.core.stops) == {20}


def test_accepted_events_in_full():
    ex = at_100()
    acc = ex.ok(stop(20, 2, "buy", "stop_market", 105, 2, client_id="s"))[0]
    assert acc == OrderAccepted(
        20, 2, SYM, "buy", "stop_market", None, 2, None, "GTC", 105, None, "s", 220, "untriggered"
    )
    acc = ex.ok(stop(21, 2, "sell", "take_profit_limit", 110, 1, price=109, tif="IOC"))[0]
    assert acc == OrderAccepted(
        21,
        2,
        SYM,
        "sell",
        "take_profit_limit",
        109,
        1,
        None,
        "IOC",
        110,
        None,
        None,
        10_000,
        "untriggered",
    )
