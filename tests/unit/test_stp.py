"""Self-trade prevention, decided by the taker's ``stp`` mode when it meets its own
resting order: ``cancel_taker`` (default) stops the taker, ``cancel_maker`` cancels the
resting order and goes on, ``cancel_both`` cancels both, ``none`` trades with itself."""

from __future__ import annotations

import pytest

from tests.unit.helpers import buy, market, sell, standard

U, B = "USDT", "BTC"

# Book: user 1's own ask (id 1) first, then user 3's ask (id 2), both 2 lots at 100.
# User 1 then buys 3 at 100 with the given mode.
OWN_FIRST = [
    pytest.param(
        {},
        [("accepted", 3, 300, "new"), ("cancelled", 3, 3, 300, "stp")],
        {(1, U): (1_000_000, 0), (1, B): (980_000, 20_000)},
        ([], [(100, 1, 2), (100, 2, 2)]),
        id="default-is-cancel-taker",
    ),
    pytest.param(
        {"stp": "cancel_taker"},
        [("accepted", 3, 300, "new"), ("cancelled", 3, 3, 300, "stp")],
        {(1, U): (1_000_000, 0), (1, B): (980_000, 20_000)},
        ([], [(100, 1, 2), (100, 2, 2)]),
        id="cancel-taker",
    ),
    pytest.param(
        {"stp": "cancel_maker"},
        # own ask cancelled (2 lots, 20_000 BTC back), 2 bought from user 3, 1 rests
        [
            ("accepted", 3, 300, "new"),
            ("cancelled", 1, 2, 20_000, "stp"),
            ("trade", 2, 3, 100, 2),
        ],
        {(1, U): (999_700, 100), (1, B): (1_020_000, 0), (3, U): (1_000_200, 0)},
        ([(100, 3, 1)], []),
        id="cancel-maker",
    ),
    pytest.param(
        {"stp": "cancel_both"},
        [
            ("accepted", 3, 300, "new"),
            ("cancelled", 1, 2, 20_000, "stp"),
            ("cancelled", 3, 3, 300, "stp"),
        ],
        {(1, U): (1_000_000, 0), (1, B): (1_000_000, 0)},
        ([], [(100, 2, 2)]),
        id="cancel-both",
    ),
    pytest.param(
        {"stp": "none"},
        # trades 2 with itself (no net change) and 1 with user 3
        [("accepted", 3, 300, "new"), ("trade", 1, 3, 100, 2), ("trade", 2, 3, 100, 1)],
        {(1, U): (999_900, 0), (1, B): (1_010_000, 0), (3, U): (1_000_100, 0)},
        ([], [(100, 2, 1)]),
        id="none-self-trades",
    ),
]


@pytest.mark.parametrize(("kw", "events", "balances", "book"), OWN_FIRST)
def test_stp_modes_own_order_first(kw, events, balances, book):
    ex = standard()
    ex.ok(sell(1, 1, 100, 2))
    ex.ok(sell(2, 3, 100, 2))
    ex.run([(buy(3, 1, 100, 3, **kw), events, balances)])
    assert ex.book() == book


# Book: user 3's ask (id 1) first, then user 1's own (id 2); user 1 buys 3.
OWN_SECOND = [
    pytest.param(
        "cancel_taker",
        [("accepted", 3, 300, "new"), ("trade", 1, 3, 100, 2), ("cancelled", 3, 1, 100, "stp")],
        ([], [(100, 2, 2)]),
        id="cancel-taker-after-a-fill",
    ),
    pytest.param(
        "cancel_maker",
        [
            ("accepted", 3, 300, "new"),
            ("trade", 1, 3, 100, 2),
            ("cancelled", 2, 2, 20_000, "stp"),
        ],
        ([(100, 3, 1)], []),
        id="cancel-maker-then-rest",
    ),
    pytest.param(
        "cancel_both",
        [
            ("accepted", 3, 300, "new"),
            ("trade", 1, 3, 100, 2),
            ("cancelled", 2, 2, 20_000, "stp"),
            ("cancelled", 3, 1, 100, "stp"),
        ],
        ([], []),
        id="cancel-both-after-a-fill",
    ),
]


@pytest.mark.parametrize(("mode", "events", "book"), OWN_SECOND)
def test_stp_after_other_users_fill(mode, events, book):
    ex = standard()
    ex.ok(sell(1, 3, 100, 2))
    ex.ok(sell(2, 1, 100, 2))
    ex.run([(buy(3, 1, 100, 3, stp=mode), events)])
    assert ex.book() == book


def test_makers_mode_does_not_matter():
    ex = standard()
    ex.ok(sell(1, 1, 100, 2, stp="none"))
    ex.run([(buy(2, 1, 100, 1), [("accepted", 2, 100, "new"), ("cancelled", 2, 1, 100, "stp")])])


def test_sell_taker_cancel_maker_unlocks_the_makers_quote():
    ex = standard()
    ex.ok(buy(1, 2, 101, 3))
    ex.ok(buy(2, 3, 100, 1))
    ex.run(
        [
            (
                sell(3, 2, 100, 1, stp="cancel_maker"),
                [
                    ("accepted", 3, 10_000, "new"),
                    ("cancelled", 1, 3, 303, "stp"),
                    ("trade", 2, 3, 100, 1),
                ],
                {(2, U): (1_000_100, 0), (2, B): (990_000, 0), (3, B): (1_010_000, 0)},
            )
        ]
    )
    assert ex.book() == ([], [])


def test_stp_on_market_order():
    ex = standard()
    ex.ok(sell(1, 1, 100, 2))
    ex.run(
        [
            (
                market(2, 1, "buy", qty=1),
                [("accepted", 2, 105, "new"), ("cancelled", 2, 1, 105, "stp")],
                {(1, U): (1_000_000, 0)},
            ),
            (
                market(3, 1, "buy", quote_qty=500),
                [("accepted", 3, 500, "new"), ("cancelled", 3, 0, 500, "stp")],
                {(1, U): (1_000_000, 0)},
            ),
        ]
    )
    assert ex.asks() == [(100, 1, 2)]


def test_stp_cancel_maker_on_market_quote_order():
    ex = standard()
    ex.ok(sell(1, 1, 100, 2))
    ex.ok(sell(2, 3, 100, 1))
    ex.ok(sell(3, 3, 101, 5))
    ex.run(
        [
            (
                market(4, 1, "buy", quote_qty=302, stp="cancel_maker"),
                # own 2 lots cancelled, 1 at 100 from user 3, then 2 at 101: 302 spent
                [
                    ("accepted", 4, 302, "new"),
                    ("cancelled", 1, 2, 20_000, "stp"),
                    ("trade", 2, 4, 100, 1),
                    ("trade", 3, 4, 101, 2),
                ],
                {(1, U): (999_698, 0), (1, B): (1_030_000, 0)},
            )
        ]
    )
    assert ex.asks() == [(101, 3, 3)]


@pytest.mark.parametrize(
    ("mode", "events"),
    [
        pytest.param("cancel_taker", [("rejected", "fok_not_fillable")], id="cancel-taker"),
        pytest.param("cancel_both", [("rejected", "fok_not_fillable")], id="cancel-both"),
        pytest.param(
            "cancel_maker",
            [
                ("accepted", 3, 200, "new"),
                ("cancelled", 1, 2, 20_000, "stp"),
                ("trade", 2, 3, 100, 2),
            ],
            id="cancel-maker",
        ),
        pytest.param(
            "none",
            [("accepted", 3, 200, "new"), ("trade", 1, 3, 100, 2)],
            id="none",
        ),
    ],
)
def test_fok_with_own_order_in_the_way(mode, events):
    ex = standard()
    ex.ok(sell(1, 1, 100, 2))
    ex.ok(sell(2, 3, 100, 2))
    ex.run([(buy(3, 1, 100, 2, tif="FOK", stp=mode), events)])


def test_fok_filled_before_own_order_is_reached():
    ex = standard()
    ex.ok(sell(1, 3, 100, 2))
    ex.ok(sell(2, 1, 100, 2))
    ex.run(
        [
            (
                buy(3, 1, 100, 2, tif="FOK"),
                [("accepted", 3, 200, "new"), ("trade", 1, 3, 100, 2)],
            )
        ]
    )
    assert ex.asks() == [(100, 2, 2)]


@pytest.mark.parametrize(
    ("mode", "events"),
    [
        pytest.param("cancel_taker", [("rejected", "fok_not_fillable")], id="cancel-taker"),
        pytest.param("cancel_both", [("rejected", "fok_not_fillable")], id="cancel-both"),
        pytest.param(
            "cancel_maker",
            [
                ("accepted", 3, 600, "new"),
                ("trade", 1, 3, 100, 2),
                ("cancelled", 2, 5, 50_000, "stp"),
                ("trade", 1, 3, 100, 2),
                ("trade", 1, 3, 100, 2),
            ],
            id="cancel-maker",
        ),
        pytest.param(
            "none",
            [("accepted", 3, 600, "new"), ("trade", 1, 3, 100, 2), ("trade", 2, 3, 100, 4)],
            id="none",
        ),
    ],
)
def test_fok_never_partly_fills_iceberg_then_own_order(mode, events):
    """Level 100: user 3's iceberg (10, showing 2), then user 1's own ask (5). User 1's
    FOK buy of 6 takes the 2-lot slice; the refreshed slice goes behind the own ask, so
    with cancel_taker or cancel_both self-trade prevention would stop the taker after 2
    lots. A FOK fills in full or not at all: it must be rejected and change nothing."""
    ex = standard()
    ex.ok(sell(1, 3, 100, 10, display_qty=2))
    ex.ok(sell(2, 1, 100, 5))
    ex.run([(buy(3, 1, 100, 6, tif="FOK", stp=mode), events)])
