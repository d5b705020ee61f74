"""Amend (``qty`` is the new open quantity, ``price`` the optional new price), cancel and
cancel_all.

A smaller (or equal) quantity at the same price keeps the order's place; a larger one or
a new price puts it at the back of its level, and a crossing new price matches at once.
The lock follows the order exactly: a buy holds ``price * qty``, a sell ``qty * 10000``.
"""

from __future__ import annotations

import pytest

from tests.unit.helpers import (
    SYM,
    Exchange,
    amend,
    buy,
    cancel,
    limit,
    sell,
    standard,
    stop,
)

U, B, E = "USDT", "BTC", "ETH"
ETH = "ETH-USDT"


def two_bids() -> Exchange:
    """User 1 bids 5 at 100 (id 1, holds 500), then user 3 bids 2 at 100 (id 2)."""
    ex = standard()
    ex.ok(buy(1, 1, 100, 5))
    ex.ok(buy(2, 3, 100, 2))
    return ex


# (amend, events, user 1's USDT after, bids after as (price, id, qty))
AMENDS = [
    pytest.param(
        amend(1, 1, 3),
        [("amended", 1, 100, 3, 300, True)],
        (999_700, 300),
        [(100, 1, 3), (100, 2, 2)],
        id="decrease-keeps-priority",
    ),
    pytest.param(
        amend(1, 1, 5),
        [("amended", 1, 100, 5, 500, True)],
        (999_500, 500),
        [(100, 1, 5), (100, 2, 2)],
        id="same-qty-keeps-priority",
    ),
    pytest.param(
        amend(1, 1, 3, price=100),
        [("amended", 1, 100, 3, 300, True)],
        (999_700, 300),
        [(100, 1, 3), (100, 2, 2)],
        id="same-price-given-keeps-priority",
    ),
    pytest.param(
        amend(1, 1, 6),
        [("amended", 1, 100, 6, 600, False)],
        (999_400, 600),
        [(100, 2, 2), (100, 1, 6)],
        id="increase-loses-priority",
    ),
    pytest.param(
        amend(1, 1, 5, price=99),
        [("amended", 1, 99, 5, 495, False)],
        (999_505, 495),
        [(100, 2, 2), (99, 1, 5)],
        id="lower-price-loses-priority-unlocks",
    ),
    pytest.param(
        amend(1, 1, 2, price=101),
        [("amended", 1, 101, 2, 202, False)],
        (999_798, 202),
        [(101, 1, 2), (100, 2, 2)],
        id="higher-price-better-level",
    ),
]


@pytest.mark.parametrize(("cmd", "events", "usdt", "bids"), AMENDS)
def test_amend_table(cmd, events, usdt, bids):
    ex = two_bids()
    ex.run([(cmd, events, {(1, U): usdt, (3, U): (999_800, 200)})])
    assert ex.bids() == bids


def test_kept_priority_is_used_by_the_next_taker():
    ex = two_bids()
    ex.ok(amend(1, 1, 3))
    ex.run(
        [
            (
                sell(10, 2, 100, 4),
                [
                    ("accepted", 10, 40_000, "new"),
                    ("trade", 1, 10, 100, 3),
                    ("trade", 2, 10, 100, 1),
                ],
            )
        ]
    )


def test_lost_priority_is_seen_by_the_next_taker():
    ex = two_bids()
    ex.ok(amend(1, 1, 6))
    ex.run(
        [
            (
                sell(10, 2, 100, 4),
                [
                    ("accepted", 10, 40_000, "new"),
                    ("trade", 2, 10, 100, 2),
                    ("trade", 1, 10, 100, 2),
                ],
            )
        ]
    )


def test_price_change_to_an_existing_level_joins_its_back():
    ex = standard()
    ex.ok(buy(1, 1, 101, 2))
    ex.ok(buy(2, 3, 100, 2))
    ex.run([(amend(1, 1, 2, price=100), [("amended", 1, 100, 2, 200, False)])])
    assert ex.bids() == [(100, 2, 2), (100, 1, 2)]


def test_crossing_new_price_matches_at_once():
    """Bid 5 at 100 (holds 500) re-priced to 103 against an ask of 2 at 102: the amend
    locks 15 more (515), buys 2 at 102 (204), rests 3 at 103 (309), unlocks 2."""
    ex = two_bids()
    ex.ok(sell(3, 2, 102, 2))
    ex.run(
        [
            (
                amend(1, 1, 5, price=103),
                [
                    ("amended", 1, 103, 5, 515, False),
                    ("trade", 3, 1, 102, 2),
                    ("released", 1, 2),
                ],
                {(1, U): (999_487, 309), (1, B): (1_020_000, 0), (2, U): (1_000_204, 0)},
            )
        ]
    )
    assert ex.book() == ([(103, 1, 3), (100, 2, 2)], [])
    assert ex.last_price() == 102


def test_crossing_amend_that_fills_completely():
    ex = standard()
    ex.ok(sell(1, 1, 105, 3))
    ex.ok(buy(2, 2, 100, 2))
    ex.run(
        [
            (
                amend(1, 1, 2, price=99),
                [("amended", 1, 99, 2, 20_000, False), ("trade", 2, 1, 100, 2)],
                {(1, B): (980_000, 0), (1, U): (1_000_200, 0), (2, B): (1_020_000, 0)},
            )
        ]
    )
    assert ex.book() == ([], [])
    assert 1 not in ex.open_ids()


def test_post_only_amend_that_would_cross_is_rejected():
    """A post-only order stays post-only: a new price that would take is rejected and
    changes nothing (``Exchange.do`` also checks the state hash); one that still only
    makes is accepted, and the order is still post-only afterwards."""
    ex = standard()
    ex.run(
        [
            (
                buy(1, 1, 99, 2, post_only=True),
                [("accepted", 1, 198, "new")],
                {(1, U): (999_802, 198)},
            ),
            (sell(2, 2, 101, 1), [("accepted", 2, 10_000, "new")]),
        ]
    )
    before = ex.core.state_hash()
    ex.run(
        [
            # 101 meets the ask at 101: it would take
            (
                amend(1, 1, 2, price=101),
                [("rejected", "post_only_would_take")],
                {(1, U): (999_802, 198), (2, B): (990_000, 10_000)},
            ),
        ]
    )
    assert ex.core.state_hash() == before
    assert ex.book() == ([(99, 1, 2)], [(101, 2, 1)])
    ex.run(
        [
            # 100 is below the ask: accepted, holds 100 * 2 = 200, back of a new level
            (
                amend(1, 1, 2, price=100),
                [("amended", 1, 100, 2, 200, False)],
                {(1, U): (999_800, 200)},
            ),
            # still post-only, also after a snapshot and restore
            (amend(1, 1, 2, price=102), [("rejected", "post_only_would_take")]),
        ]
    )
    ex.core = type(ex.core).restore(ex.core.snapshot())
    ex.reject(amend(1, 1, 2, price=101), "post_only_would_take")
    # a quantity-only amend never crosses
    ex.run([(amend(1, 1, 3), [("amended", 1, 100, 3, 300, False)], {(1, U): (999_700, 300)})])
    assert ex.book() == ([(100, 1, 3)], [(101, 2, 1)])
    assert ex.last_price() is None


def test_post_only_sell_amend_and_plain_order_for_contrast():
    ex = standard()
    ex.ok(buy(1, 1, 100, 1))
    ex.ok(sell(2, 2, 102, 1, post_only=True))
    ex.ok(sell(3, 3, 102, 1))
    ex.run(
        [
            # the sell's new price 100 meets the bid at 100: it would take
            (amend(2, 2, 1, price=100), [("rejected", "post_only_would_take")]),
            (amend(2, 2, 1, price=101), [("amended", 2, 101, 1, 10_000, False)]),
            # more than it can afford is still insufficient_balance, checked first
            (amend(2, 2, 101, price=100), [("rejected", "insufficient_balance")]),
            # a plain order amended to the same crossing price trades at once
            (
                amend(3, 3, 1, price=100),
                [("amended", 3, 100, 1, 10_000, False), ("trade", 1, 3, 100, 1)],
                {(3, B): (990_000, 0), (3, U): (1_000_100, 0)},
            ),
        ]
    )
    assert ex.book() == ([], [(101, 2, 1)])


# Sell orders lock base: (amend of a 5-lot ask at 100, events, user 1's BTC after)
SELL_AMENDS = [
    pytest.param(amend(1, 1, 2), [("amended", 1, 100, 2, 20_000, True)], (980_000, 20_000)),
    pytest.param(amend(1, 1, 9), [("amended", 1, 100, 9, 90_000, False)], (910_000, 90_000)),
    pytest.param(
        amend(1, 1, 5, price=104), [("amended", 1, 104, 5, 50_000, False)], (950_000, 50_000)
    ),
]


@pytest.mark.parametrize(("cmd", "events", "btc"), SELL_AMENDS)
def test_sell_amend_locks_base(cmd, events, btc):
    ex = standard()
    ex.ok(sell(1, 1, 100, 5))
    ex.run([(cmd, events, {(1, B): btc})])


def test_amend_a_partly_filled_order():
    """``qty`` is the new open quantity: 3 are open after a fill of 2, so 4 is an
    increase (back of the queue) and 2 a decrease."""
    ex = two_bids()
    ex.ok(sell(10, 2, 100, 2))
    assert ex.bids() == [(100, 1, 3), (100, 2, 2)]
    ex.run(
        [
            (amend(1, 1, 2), [("amended", 1, 100, 2, 200, True)], {(1, U): (999_600, 200)}),
            (amend(1, 1, 4), [("amended", 1, 100, 4, 400, False)], {(1, U): (999_400, 400)}),
        ]
    )
    assert ex.bids() == [(100, 2, 2), (100, 1, 4)]


def test_amend_increase_needs_the_funds():
    ex = standard()
    ex.ok({"op": "deposit", "user": 9, "asset": U, "amount": 1_000})
    ex.ok(buy(1, 9, 100, 5))
    ex.run(
        [
            (amend(1, 9, 11), [("rejected", "insufficient_balance")], {(9, U): (500, 500)}),
            (amend(1, 9, 5, price=201), [("rejected", "insufficient_balance")]),
            (amend(1, 9, 10), [("amended", 1, 100, 10, 1_000, False)], {(9, U): (0, 1_000)}),
            (amend(1, 9, 5, price=200), [("amended", 1, 200, 5, 1_000, False)]),
        ]
    )


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        pytest.param(amend(99, 1, 1), "unknown_order", id="unknown-id"),
        pytest.param(amend(1, 3, 1), "unknown_order", id="other-users-order"),
        pytest.param(
            {"op": "amend", "id": 1, "user": 1, "symbol": ETH, "qty": 1},
            "unknown_order",
            id="wrong-symbol",
        ),
        pytest.param(amend(20, 1, 1), "not_amendable", id="untriggered-stop"),
    ],
)
def test_amend_rejections(cmd, reason):
    ex = two_bids()
    ex.ok(stop(20, 1, "sell", "stop_market", 90, 1))
    ex.reject(cmd, reason)


def test_amend_of_a_filled_order_is_unknown():
    ex = standard()
    ex.ok(sell(1, 1, 100, 1))
    ex.ok(buy(2, 2, 100, 1))
    ex.reject(amend(1, 1, 1), "unknown_order")


# ---------------------------------------------------------------- cancel


def test_cancel_returns_the_lock():
    ex = two_bids()
    ex.ok(sell(3, 2, 101, 4))
    ex.run(
        [
            (cancel(1, 1), [("cancelled", 1, 5, 500, "user")], {(1, U): (1_000_000, 0)}),
            (cancel(3, 2), [("cancelled", 3, 4, 40_000, "user")], {(2, B): (1_000_000, 0)}),
        ]
    )
    assert ex.book() == ([(100, 2, 2)], [])


def test_cancel_a_partly_filled_order():
    ex = two_bids()
    ex.ok(sell(10, 2, 100, 2))
    ex.run(
        [
            (
                cancel(1, 1),
                [("cancelled", 1, 3, 300, "user")],
                {(1, U): (999_800, 0), (1, B): (1_020_000, 0)},
            )
        ]
    )


@pytest.mark.parametrize(
    "cmd",
    [
        pytest.param(cancel(99, 1), id="unknown-id"),
        pytest.param(cancel(1, 3), id="other-users-order"),
        pytest.param(cancel(20, 3), id="other-users-stop"),
        pytest.param(cancel(1, 1, symbol=ETH), id="wrong-symbol"),
        pytest.param(cancel(1, 1, symbol="XRP-USDT"), id="unknown-symbol"),
    ],
)
def test_cancel_unknown_order(cmd):
    ex = two_bids()
    ex.ok(stop(20, 1, "sell", "stop_market", 90, 1))
    ex.reject(cmd, "unknown_order")


def test_cancel_twice_and_after_fill():
    ex = standard()
    ex.ok(sell(1, 1, 100, 1))
    ex.ok(sell(2, 1, 100, 1))
    ex.ok(cancel(1, 1))
    ex.reject(cancel(1, 1), "unknown_order")
    ex.ok(buy(3, 2, 100, 1))
    ex.reject(cancel(2, 1), "unknown_order")


def with_eth() -> Exchange:
    """Standard market plus ETH (8 decimals) and ETH-USDT (same units as BTC-USDT);
    users 1-4 get 1_000_000 ETH minor units."""
    ex = standard()
    ex.ok({"op": "asset", "asset": E, "decimals": 8})
    ex.ok(
        {
            "op": "symbol",
            "symbol": ETH,
            "base": E,
            "quote": U,
            "tick_size": 10_000,
            "lot_size": 10_000,
        }
    )
    for u in (1, 2, 3, 4):
        ex.ok({"op": "deposit", "user": u, "asset": E, "amount": 1_000_000})
    return ex


def orders_on_two_symbols() -> Exchange:
    ex = with_eth()
    ex.ok(buy(5, 1, 100, 2))  # BTC, holds 200 USDT
    ex.ok(limit(3, 1, "sell", 50, 4, symbol=ETH))  # ETH, holds 40_000 ETH
    ex.ok(sell(7, 1, 110, 1))  # BTC, holds 10_000 BTC
    ex.ok(stop(4, 1, "buy", "stop_limit", 120, 1, price=121))  # BTC stop, holds 121
    ex.ok(limit(6, 1, "buy", 40, 1, symbol=ETH))  # ETH, holds 40 USDT
    ex.ok(buy(8, 2, 99, 1))  # another user's
    return ex


CANCEL_ALL = [
    pytest.param(
        {"op": "cancel_all", "user": 1, "symbol": SYM},
        # ids ascending, stops included, only BTC-USDT
        [
            ("cancelled", 4, 1, 121, "user"),
            ("cancelled", 5, 2, 200, "user"),
            ("cancelled", 7, 1, 10_000, "user"),
        ],
        {(1, U): (1_000_000 - 40, 40), (1, B): (1_000_000, 0), (1, E): (960_000, 40_000)},
        {3, 6, 8},
        id="one-symbol",
    ),
    pytest.param(
        {"op": "cancel_all", "user": 1, "symbol": ETH},
        [("cancelled", 3, 4, 40_000, "user"), ("cancelled", 6, 1, 40, "user")],
        {(1, U): (1_000_000 - 321, 321), (1, B): (990_000, 10_000), (1, E): (1_000_000, 0)},
        {4, 5, 7, 8},
        id="other-symbol",
    ),
    pytest.param(
        {"op": "cancel_all", "user": 1},
        [
            ("cancelled", 3, 4, 40_000, "user"),
            ("cancelled", 4, 1, 121, "user"),
            ("cancelled", 5, 2, 200, "user"),
            ("cancelled", 6, 1, 40, "user"),
            ("cancelled", 7, 1, 10_000, "user"),
        ],
        {(1, U): (1_000_000, 0), (1, B): (1_000_000, 0), (1, E): (1_000_000, 0)},
        {8},
        id="all-symbols",
    ),
    pytest.param(
        {"op": "cancel_all", "user": 4},
        [],
        {(1, U): (1_000_000 - 361, 361)},
        {3, 4, 5, 6, 7, 8},
        id="nothing-open-is-not-an-error",
    ),
    pytest.param(
        {"op": "cancel_all", "user": 1, "symbol": "XRP-USDT"},
        [("rejected", "unknown_symbol")],
        {(1, U): (1_000_000 - 361, 361)},
        {3, 4, 5, 6, 7, 8},
        id="unknown-symbol",
    ),
]


@pytest.mark.parametrize(("cmd", "events", "balances", "still_open"), CANCEL_ALL)
def test_cancel_all_table(cmd, events, balances, still_open):
    ex = orders_on_two_symbols()
    ex.run([(cmd, events, balances)])
    assert ex.open_ids() == still_open


def test_cancelled_client_id_can_be_reused():
    ex = standard()
    ex.run(
        [
            (sell(1, 1, 100, 1, client_id="x"), [("accepted", 1, 10_000, "new")]),
            (sell(2, 1, 100, 1, client_id="x"), [("rejected", "duplicate_client_id")]),
            (cancel(1, 1), [("cancelled", 1, 1, 10_000, "user")]),
            (sell(2, 1, 100, 1, client_id="x"), [("accepted", 2, 10_000, "new")]),
        ]
    )
