"""Funds: deposit, withdrawal hold / release / settle, transfer between accounts.

A hold moves available to locked under a withdrawal id; release moves it back; settle
lets it leave the exchange (deposits minus settled withdrawals stay equal to the sum of
all balances, which the harness checks after every command).
"""

from __future__ import annotations

import pytest

from tests.unit.helpers import buy, cancel, sell, standard

U, B = "USDT", "BTC"


def hold(id: int, user: int, amount: int, asset: str = U) -> dict:
    return {"op": "withdraw_hold", "id": id, "user": user, "asset": asset, "amount": amount}


def release(id: int) -> dict:
    return {"op": "withdraw_release", "id": id}


def settle(id: int) -> dict:
    return {"op": "withdraw_settle", "id": id}


def transfer(user: int, to: int, amount: int, asset: str = U) -> dict:
    return {"op": "transfer", "user": user, "to": to, "asset": asset, "amount": amount}


def deposit(user: int, amount: int, asset: str = U) -> dict:
    return {"op": "deposit", "user": user, "asset": asset, "amount": amount}


def test_deposits_add_up():
    ex = standard()
    ex.run(
        [
            (deposit(9, 500), [("deposited", 9, U, 500)], {(9, U): (500, 0)}),
            (deposit(9, 250), [("deposited", 9, U, 250)], {(9, U): (750, 0)}),
            (deposit(9, 7, B), [("deposited", 9, B, 7)], {(9, B): (7, 0), (9, U): (750, 0)}),
            (deposit(0, 3), [("deposited", 0, U, 3)], {(0, U): (3, 0)}),
            (deposit(9, 1, "ETH"), [("rejected", "unknown_asset")], {(9, U): (750, 0)}),
        ]
    )
    assert ex.core.deposited == {U: 4 * 1_000_000 + 753, B: 4 * 1_000_000 + 7}


def test_withdrawal_hold_then_release():
    ex = standard()
    ex.run(
        [
            (hold(1, 1, 400), [("withdrawal_held", 1, 1, U, 400)], {(1, U): (999_600, 400)}),
            (release(1), [("withdrawal_released", 1, 1, U, 400)], {(1, U): (1_000_000, 0)}),
            (release(1), [("rejected", "unknown_withdrawal")]),
            (settle(1), [("rejected", "unknown_withdrawal")]),
        ]
    )
    assert ex.core.withdrawn == {}


def test_withdrawal_hold_then_settle():
    ex = standard()
    ex.run(
        [
            (hold(1, 1, 400), [("withdrawal_held", 1, 1, U, 400)], {(1, U): (999_600, 400)}),
            (settle(1), [("withdrawal_settled", 1, 1, U, 400)], {(1, U): (999_600, 0)}),
            (settle(1), [("rejected", "unknown_withdrawal")]),
            (release(1), [("rejected", "unknown_withdrawal")]),
        ]
    )
    assert ex.core.withdrawn == {U: 400}


def test_several_pending_withdrawals():
    ex = standard()
    ex.run(
        [
            (hold(1, 1, 100), None),
            (hold(2, 1, 200), None, {(1, U): (999_700, 300)}),
            (hold(3, 1, 50_000, B), None, {(1, B): (950_000, 50_000)}),
            (hold(2, 2, 1), [("rejected", "duplicate_withdrawal")]),
            (settle(2), None, {(1, U): (999_700, 100)}),
            (release(1), None, {(1, U): (999_800, 0)}),
            (settle(3), None, {(1, B): (950_000, 0)}),
        ]
    )
    assert ex.core.withdrawn == {U: 200, B: 50_000}


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        pytest.param(hold(1, 1, 1_000_001), "insufficient_balance", id="more-than-available"),
        pytest.param(hold(1, 9, 1), "insufficient_balance", id="unknown-user"),
        pytest.param(hold(1, 1, 1, "ETH"), "unknown_asset", id="unknown-asset"),
        pytest.param(release(77), "unknown_withdrawal", id="release-unknown"),
        pytest.param(settle(77), "unknown_withdrawal", id="settle-unknown"),
    ],
)
def test_withdrawal_rejections(cmd, reason):
    ex = standard()
    ex.reject(cmd, reason)


def test_held_funds_cannot_trade_and_order_funds_cannot_be_withdrawn():
    ex = standard()
    ex.run(
        [
            (hold(1, 1, 999_900), None, {(1, U): (100, 999_900)}),
            (buy(1, 1, 101, 1), [("rejected", "insufficient_balance")]),
            (buy(1, 1, 100, 1), [("accepted", 1, 100, "new")], {(1, U): (0, 1_000_000)}),
            (hold(2, 1, 1), [("rejected", "insufficient_balance")]),
            (cancel(1, 1), None, {(1, U): (100, 999_900)}),
            (hold(2, 1, 100), [("withdrawal_held", 2, 1, U, 100)], {(1, U): (0, 1_000_000)}),
        ]
    )


def test_withdrawal_of_traded_proceeds():
    ex = standard()
    ex.ok(sell(1, 1, 100, 3))
    ex.ok(buy(2, 2, 100, 3))
    ex.run(
        [
            (hold(1, 2, 1_030_000, B), None, {(2, B): (0, 1_030_000)}),
            (settle(1), None, {(2, B): (0, 0)}),
        ]
    )


def test_transfers():
    ex = standard()
    ex.run(
        [
            (
                transfer(1, 2, 300),
                [("transferred", 1, 2, U, 300)],
                {(1, U): (999_700, 0), (2, U): (1_000_300, 0)},
            ),
            (
                transfer(2, 9, 1_000_300),
                [("transferred", 2, 9, U, 1_000_300)],
                {(2, U): (0, 0), (9, U): (1_000_300, 0)},
            ),
            (transfer(2, 9, 1), [("rejected", "insufficient_balance")]),
            (transfer(9, 9, 1), [("rejected", "invalid_transfer")]),
            (transfer(9, 1, 1, "ETH"), [("rejected", "unknown_asset")]),
            (transfer(9, 0, 1), [("transferred", 9, 0, U, 1)], {(0, U): (1, 0)}),
        ]
    )


def test_locked_funds_cannot_be_transferred():
    ex = standard()
    ex.ok(sell(1, 1, 100, 100))  # all of user 1's BTC
    ex.reject(transfer(1, 2, 1, B), "insufficient_balance")
    ex.ok(hold(1, 2, 1_000_000))
    ex.reject(transfer(2, 1, 1), "insufficient_balance")
