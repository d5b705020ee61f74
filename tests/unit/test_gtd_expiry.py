"""GTD expiry is driven by the commands' ``ts`` (the core has no clock): the first command
(a tick or anything else) whose ``ts`` is at or past an order's ``expire_ts`` cancels it
with reason ``expired`` before the command itself is applied."""

from __future__ import annotations

import pytest

from tests.unit.helpers import amend, brief, buy, cancel, sell, standard, tick

U, B = "USDT", "BTC"


def gtd(id, user, side, price, qty, expire_ts):
    f = buy if side == "buy" else sell
    return f(id, user, price, qty, tif="GTD", expire_ts=expire_ts)


def test_tick_before_and_at_expire_ts():
    ex = standard()
    ex.run(
        [
            (tick(100), []),
            (gtd(1, 1, "sell", 100, 2, 200), [("accepted", 1, 20_000, "new")]),
            (tick(150), []),
            (tick(199), [], {(1, B): (980_000, 20_000)}),
            (tick(200), [("cancelled", 1, 2, 20_000, "expired")], {(1, B): (1_000_000, 0)}),
            (tick(300), []),
        ]
    )
    assert ex.book() == ([], [])


def test_any_later_command_expires_first_then_applies():
    """The buy at ts 250 arrives after the ask expired at 200: it does not trade with it
    and rests instead."""
    ex = standard()
    ex.run(
        [
            (gtd(1, 1, "sell", 100, 2, 200), [("accepted", 1, 20_000, "new")]),
            (
                {**buy(2, 2, 100, 2), "ts": 250},
                [("cancelled", 1, 2, 20_000, "expired"), ("accepted", 2, 200, "new")],
                {(1, B): (1_000_000, 0), (2, U): (999_800, 200)},
            ),
        ]
    )
    assert ex.book() == ([(100, 2, 2)], [])


def test_command_just_before_expiry_still_trades():
    ex = standard()
    ex.run(
        [
            (gtd(1, 1, "sell", 100, 2, 200), None),
            (
                {**buy(2, 2, 100, 1), "ts": 199},
                [("accepted", 2, 100, "new"), ("trade", 1, 2, 100, 1)],
            ),
            # the partly filled rest expires with what is left of its lock
            ({**tick(0), "ts": 200}, [("cancelled", 1, 1, 10_000, "expired")]),
        ]
    )
    ex.assert_balances({(1, B): (990_000, 0), (1, U): (1_000_100, 0)})


def test_expiries_in_order_of_expire_ts_then_id():
    ex = standard()
    ex.run(
        [
            (gtd(1, 1, "sell", 105, 1, 300), None),
            (gtd(2, 2, "buy", 95, 1, 150), None),
            (gtd(3, 3, "sell", 106, 1, 150), None),
            (sell(4, 4, 107, 1), None),  # GTC: stays
            (
                tick(1_000),
                [
                    ("cancelled", 2, 1, 95, "expired"),
                    ("cancelled", 3, 1, 10_000, "expired"),
                    ("cancelled", 1, 1, 10_000, "expired"),
                ],
            ),
        ]
    )
    assert ex.book() == ([], [(107, 4, 1)])


def test_expiry_then_a_rejected_command():
    """The expiry belongs to the time the command brings; the command itself is still
    rejected and changes nothing more."""
    ex = standard()
    ex.ok(gtd(1, 1, "sell", 100, 2, 200))
    events = ex.do({**cancel(1, 1), "ts": 200})
    assert [brief(e) for e in events] == [
        ("cancelled", 1, 2, 20_000, "expired"),
        ("rejected", "unknown_order"),
    ]


def test_cancelled_or_filled_gtd_does_not_expire_again():
    ex = standard()
    ex.run(
        [
            (gtd(1, 1, "sell", 100, 1, 200), None),
            (gtd(2, 1, "sell", 101, 1, 200), None),
            (cancel(1, 1), [("cancelled", 1, 1, 10_000, "user")]),
            (buy(3, 2, 101, 1), [("accepted", 3, 101, "new"), ("trade", 2, 3, 101, 1)]),
            (tick(500), []),
        ]
    )


def test_amended_gtd_keeps_its_expiry():
    ex = standard()
    ex.run(
        [
            (gtd(1, 1, "buy", 100, 5, 200), None),
            (gtd(2, 1, "buy", 100, 5, 200), None),
            (amend(1, 1, 3), [("amended", 1, 100, 3, 300, True)]),
            (amend(2, 1, 6, price=99), [("amended", 2, 99, 6, 594, False)]),
            (
                tick(200),
                [("cancelled", 1, 3, 300, "expired"), ("cancelled", 2, 6, 594, "expired")],
                {(1, U): (1_000_000, 0)},
            ),
            (tick(300), []),
        ]
    )


def test_order_id_of_an_expired_gtd_can_be_reused_before_stale_expiry():
    """A stale expiry entry must not cancel a new order that reuses the id."""
    ex = standard()
    ex.run(
        [
            (gtd(1, 1, "sell", 100, 1, 200), None),
            (cancel(1, 1), None),
            (sell(1, 1, 100, 1), [("accepted", 1, 10_000, "new")]),
            (tick(500), []),
        ]
    )
    assert ex.asks() == [(100, 1, 1)]


def test_expiry_on_a_halted_symbol_still_happens():
    ex = standard()
    ex.run(
        [
            (gtd(1, 1, "sell", 100, 1, 200), None),
            ({"op": "halt", "symbol": "BTC-USDT"}, None),
            (tick(200), [("cancelled", 1, 1, 10_000, "expired")]),
        ]
    )


@pytest.mark.parametrize("expire_ts", [pytest.param(999, id="past"), pytest.param(1_000, id="now")])
def test_already_expired(expire_ts):
    ex = standard()
    ex.ok(tick(1_000))
    ex.reject(gtd(1, 1, "sell", 100, 1, expire_ts), "already_expired")
    ex.ok(gtd(1, 1, "sell", 100, 1, 1_001))


def test_the_places_own_ts_counts():
    ex = standard()
    ex.reject({**gtd(1, 1, "sell", 100, 1, 1_500), "ts": 1_500}, "already_expired")
    ex.run([({**gtd(1, 1, "sell", 100, 1, 1_501), "ts": 1_500}, [("accepted", 1, 10_000, "new")])])


@pytest.mark.parametrize(
    "order",
    [
        pytest.param(sell(1, 1, 100, 1, tif="GTD"), id="gtd-without-expire-ts"),
        pytest.param(sell(1, 1, 100, 1, expire_ts=5_000), id="gtc-with-expire-ts"),
        pytest.param(sell(1, 1, 100, 1, tif="IOC", expire_ts=5_000), id="ioc-with-expire-ts"),
        pytest.param(sell(1, 1, 100, 1, tif="FOK", expire_ts=5_000), id="fok-with-expire-ts"),
    ],
)
def test_expire_ts_only_with_gtd(order):
    ex = standard()
    ex.reject(order, "invalid_order")
