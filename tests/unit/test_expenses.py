"""``Expense``: money the exchange itself pays out (a network fee its hot wallet paid,
ADR 0034). It debits an account's available funds, leaves the exchange (``expensed``,
so deposits less withdrawals less expenses still equal the balances: the harness checks
the invariants after every command), and its ref is booked once: the same ref again is
``duplicate_expense``, also after a snapshot, so a booking retried after a crash cannot
pay twice."""

from __future__ import annotations

import msgspec
import pytest

from tests.unit.helpers import standard
from tradewind.core.codec import decode_command, encode_command
from tradewind.core.commandfile import CommandFileError, parse_command_line
from tradewind.core.commands import Expense
from tradewind.core.engine import Core

U, B = "USDT", "BTC"
FEES = 2**62 + 1
REF = "network-fee:withdrawal:12"


def expense(user: int, amount: int, ref: str = REF, asset: str = U) -> dict[str, object]:
    return {"op": "expense", "user": user, "asset": asset, "amount": amount, "ref": ref}


def deposit(user: int, amount: int, asset: str = U) -> dict[str, object]:
    return {"op": "deposit", "user": user, "asset": asset, "amount": amount}


def test_an_expense_is_paid_once_per_ref_from_available_funds() -> None:
    ex = standard()
    ex.run(
        [
            (deposit(FEES, 500), [("deposited", FEES, U, 500)], {(FEES, U): (500, 0)}),
            (expense(FEES, 120), [("expense_paid", FEES, U, 120, REF)], {(FEES, U): (380, 0)}),
            (expense(FEES, 120), [("rejected", "duplicate_expense")], {(FEES, U): (380, 0)}),
            (expense(FEES, 1), [("rejected", "duplicate_expense")], {(FEES, U): (380, 0)}),
            (expense(FEES, 381, "network-fee:custody:3"), [("rejected", "insufficient_balance")]),
            (expense(FEES, 380, "network-fee:custody:3", "DOGE"), [("rejected", "unknown_asset")]),
            (
                expense(FEES, 380, "network-fee:custody:3"),
                [("expense_paid", FEES, U, 380, "network-fee:custody:3")],
                {(FEES, U): (0, 0)},
            ),
            (expense(FEES, 1, "network-fee:custody:4"), [("rejected", "insufficient_balance")]),
            (expense(77, 1, "network-fee:custody:4"), [("rejected", "insufficient_balance")]),
        ]
    )
    assert ex.core.expensed == {U: 500}
    assert ex.core.expense_refs == {REF, "network-fee:custody:3"}


def test_locked_funds_do_not_pay_and_a_rejection_does_not_consume_the_ref() -> None:
    ex = standard()
    ex.ok(deposit(FEES, 100))
    ex.ok({"op": "withdraw_hold", "id": 1, "user": FEES, "asset": U, "amount": 60})
    ex.reject(expense(FEES, 50), "insufficient_balance")
    ex.ok(expense(FEES, 40))
    assert ex.bal(FEES, U) == (0, 60)


def test_expenses_are_outflows_not_withdrawals() -> None:
    ex = standard()
    ex.ok(deposit(FEES, 100, B))
    ex.ok(expense(FEES, 30, asset=B))
    assert ex.core.withdrawn == {}
    assert ex.core.expensed == {B: 30}
    held = sum(acct.get(B).available for acct in ex.core.accounts.values() if B in acct)
    assert held == ex.core.deposited[B] - ex.core.expensed[B]


def test_snapshots_keep_expenses_and_an_unused_expense_leaves_the_state_as_before() -> None:
    ex = standard()
    before = ex.core.state_hash()
    assert "expensed" not in ex.core.state() and "expense_refs" not in ex.core.state()
    ex.ok(deposit(FEES, 100))
    ex.ok(expense(FEES, 30))
    restored = Core.restore(ex.core.snapshot())
    assert restored.state_hash() == ex.core.state_hash() != before
    assert restored.expensed == {U: 30} and restored.expense_refs == {REF}
    assert restored.apply(Expense(user=FEES, asset=U, amount=1, ref=REF))[-1].reason == (
        "duplicate_expense"
    )


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('{"op":"expense","user":1,"asset":"USDT","amount":5}', "missing required field `ref`"),
        ('{"op":"expense","user":1,"asset":"USDT","amount":0,"ref":"x"}', "amount"),
        ('{"op":"expense","user":-1,"asset":"USDT","amount":5,"ref":"x"}', "user"),
        ('{"op":"expense","user":1,"asset":"USDT","amount":5,"ref":""}', "ref"),
        ('{"op":"expense","user":1,"asset":"USDT","amount":5,"ref":"' + "x" * 65 + '"}', "ref"),
    ],
)
def test_the_command_file_refuses_a_malformed_expense(line: str, why: str) -> None:
    with pytest.raises(CommandFileError, match="invalid command") as err:
        parse_command_line(line)
    assert why in str(err.value)


def test_the_codecs_carry_an_expense() -> None:
    c = parse_command_line('{"op":"expense","user":5,"asset":"ETH","amount":7,"ref":"r"}')
    assert c == Expense(user=5, asset="ETH", amount=7, ref="r")
    assert decode_command(encode_command(c)) == c
    assert msgspec.json.decode(msgspec.json.encode(c), type=Expense) == c
