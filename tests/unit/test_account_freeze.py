"""Freezing an account is a core command (ADR 0031): the one writer cancels every order
and stop of the user, spot and margin, in the same command, and refuses the user's new
orders, amends, withdrawals, transfers out, borrows and margin transfers out from then
on, whatever any API process believes about the account. Deposits and cancels go on."""

from __future__ import annotations

from typing import Any

from tests.unit.helpers import LOT, START, SYM, buy, sell, standard
from tests.unit.margin_setup import borrow, into, margin_market
from tradewind.core.engine import Core
from tradewind.core.events import AccountFrozen, OrderCancelled

U, B = "USDT", "BTC"
FREEZE: dict[str, Any] = {"op": "freeze", "user": 1}
UNFREEZE: dict[str, Any] = {"op": "unfreeze", "user": 1}


def test_freezing_cancels_every_order_and_stop_in_the_same_command() -> None:
    ex = standard()
    ex.ok(buy(10, 1, 100, 2))
    ex.ok(sell(11, 1, 120, 3))
    ex.ok({**buy(12, 1, 0, 1), "type": "stop_limit", "price": 130, "stop_price": 125})
    ex.ok(buy(20, 2, 99, 1))  # another user's order stays
    ex.run(
        [
            (
                FREEZE,
                [
                    ("cancelled", 10, 2, 200, "frozen"),
                    ("cancelled", 11, 3, 3 * LOT, "frozen"),
                    ("cancelled", 12, 1, 130, "frozen"),
                    ("account_frozen", 1, 3),
                ],
                {(1, U): (START, 0), (1, B): (START, 0), (2, U): (START - 99, 99)},
            ),
        ]
    )
    assert ex.open_ids() == {20}
    ex.reject(FREEZE, "already_frozen")


def test_a_frozen_account_cannot_trade_withdraw_or_move_funds_but_can_receive() -> None:
    ex = standard()
    ex.ok(FREEZE)
    ex.reject(buy(10, 1, 100, 1), "account_frozen")
    ex.reject({**sell(11, 1, 0, 1), "type": "market", "price": None}, "account_frozen")
    ex.reject({"op": "amend", "id": 10, "user": 1, "symbol": SYM, "qty": 1}, "account_frozen")
    hold = {"op": "withdraw_hold", "id": 5, "user": 1, "asset": U, "amount": 10}
    ex.reject(hold, "account_frozen")
    ex.reject({"op": "transfer", "user": 1, "to": 2, "asset": U, "amount": 10}, "account_frozen")
    # what still works: deposits, transfers to the account, cancels (nothing to cancel)
    ex.ok({"op": "deposit", "user": 1, "asset": U, "amount": 5})
    ex.ok({"op": "transfer", "user": 2, "to": 1, "asset": U, "amount": 5})
    ex.reject({"op": "cancel", "id": 10, "user": 1, "symbol": SYM}, "unknown_order")
    ex.assert_balances({(1, U): (START + 10, 0), (2, U): (START - 5, 0)})
    # other users trade as before
    ex.ok(buy(30, 2, 100, 1))
    ex.run([(UNFREEZE, [("account_unfrozen", 1)])])
    ex.reject(UNFREEZE, "not_frozen")
    ex.ok(buy(10, 1, 100, 1))
    ex.ok(hold)


def test_a_pending_withdrawal_can_still_be_released_or_settled_after_a_freeze() -> None:
    ex = standard()
    ex.ok({"op": "withdraw_hold", "id": 5, "user": 1, "asset": U, "amount": 10})
    ex.ok({"op": "withdraw_hold", "id": 6, "user": 1, "asset": U, "amount": 20})
    ex.ok(FREEZE)
    ex.ok({"op": "withdraw_release", "id": 5})
    ex.ok({"op": "withdraw_settle", "id": 6})
    ex.assert_balances({(1, U): (START - 20, 0)})


def test_freezing_cancels_margin_orders_and_stops_borrows_and_transfers_out() -> None:
    ex = margin_market()
    into(ex, 1, U, 10_000)
    into(ex, 1, U, 10_000, wallet="cross")
    ex.ok({**buy(40, 1, 90, 5), "wallet": "isolated"})
    ex.ok({**buy(41, 1, 91, 5), "wallet": "cross"})
    ex.ok(borrow(1, U, 1_000))
    events = ex.ok(FREEZE)
    cancelled = [(e.id, e.reason) for e in events if isinstance(e, OrderCancelled)]
    assert sorted(cancelled) == [(40, "frozen"), (41, "frozen")]
    assert isinstance(events[-1], AccountFrozen)
    assert not ex.open_ids()
    ex.reject({**buy(42, 1, 90, 1), "wallet": "isolated"}, "account_frozen")
    ex.reject({**buy(43, 1, 90, 1), "wallet": "cross", "auto_borrow": True}, "account_frozen")
    ex.reject(borrow(1, U, 1), "account_frozen")
    out = {
        "op": "margin_transfer",
        "user": 1,
        "asset": U,
        "amount": 1,
        "direction": "out",
        "wallet": "isolated",
        "symbol": SYM,
    }
    ex.reject(out, "account_frozen")
    # paying debts back and topping a wallet up stay open: they only lower the risk
    ex.ok(
        {"op": "repay", "user": 1, "asset": U, "amount": 1_000, "wallet": "isolated", "symbol": SYM}
    )
    into(ex, 1, U, 10)
    ex.ok(UNFREEZE)
    ex.ok(out)


def test_frozen_users_survive_a_snapshot_and_only_then_enter_the_hash() -> None:
    ex = standard()
    ex.ok(buy(10, 1, 100, 1))
    before = ex.core.state_hash()
    assert "frozen" not in ex.core.state()
    ex.ok(FREEZE)
    ex.ok({"op": "freeze", "user": 3})
    assert ex.core.state()["frozen"] == [1, 3]
    restored = Core.restore(ex.core.snapshot())
    assert restored.state_hash() == ex.core.state_hash()
    assert restored.frozen == {1, 3}
    ex.core = restored
    ex.reject(buy(11, 3, 100, 1), "account_frozen")
    ex.ok(UNFREEZE)
    ex.ok({"op": "unfreeze", "user": 3})
    assert "frozen" not in ex.core.state()
    ex.ok(buy(10, 1, 100, 1))  # the same open order as before the freeze
    assert ex.core.state_hash() == before
