"""Halt and resume: while a symbol is halted, places and amends are rejected with
``symbol_halted``; cancels (one, all, stops) still work; other symbols trade on."""

from __future__ import annotations

import pytest

from tests.unit.helpers import SYM, amend, buy, cancel, limit, market, sell, standard, stop

U, B = "USDT", "BTC"
HALT = {"op": "halt", "symbol": SYM}
RESUME = {"op": "resume", "symbol": SYM}


def halted():
    """Last price 100; user 1 bids 2 at 99 (id 1); user 2 has a buy stop at 105 (id 2);
    then the symbol is halted."""
    ex = standard()
    ex.ok(sell(90, 3, 100, 1))
    ex.ok(buy(91, 4, 100, 1))
    ex.ok(buy(1, 1, 99, 2))
    ex.ok(stop(2, 2, "buy", "stop_limit", 105, 1, price=106))
    ex.run([(HALT, [("symbol_halted", SYM)])])
    return ex


@pytest.mark.parametrize(
    "cmd",
    [
        pytest.param(sell(10, 2, 99, 1), id="crossing-limit"),
        pytest.param(buy(10, 2, 98, 1), id="resting-limit"),
        pytest.param(sell(10, 2, 101, 1, post_only=True), id="post-only"),
        pytest.param(market(10, 2, "sell", qty=1), id="market"),
        pytest.param(market(10, 2, "buy", quote_qty=100), id="market-quote"),
        pytest.param(stop(10, 2, "sell", "stop_market", 95, 1), id="stop"),
        pytest.param(amend(1, 1, 1), id="amend-decrease"),
        pytest.param(amend(1, 1, 2, price=98), id="amend-price"),
    ],
)
def test_halted_symbol_rejects_places_and_amends(cmd):
    ex = halted()
    ex.reject(cmd, "symbol_halted")


def test_cancels_work_while_halted():
    ex = halted()
    ex.run(
        [
            (cancel(1, 1), [("cancelled", 1, 2, 198, "user")], {(1, U): (1_000_000, 0)}),
            (cancel(2, 2), [("cancelled", 2, 1, 106, "user")], {(2, U): (1_000_000, 0)}),
            (cancel(1, 1), [("rejected", "unknown_order")]),
        ]
    )


def test_cancel_all_works_while_halted():
    ex = halted()
    ex.ok(HALT)  # halting twice is harmless
    ex.run(
        [
            (
                {"op": "cancel_all", "user": 1, "symbol": SYM},
                [("cancelled", 1, 2, 198, "user")],
            ),
            ({"op": "cancel_all", "user": 2}, [("cancelled", 2, 1, 106, "user")]),
        ]
    )
    assert ex.open_ids() == set()


def test_resume_allows_trading_again():
    ex = halted()
    ex.run(
        [
            (RESUME, [("symbol_resumed", SYM)]),
            (sell(10, 2, 99, 1), [("accepted", 10, 10_000, "new"), ("trade", 1, 10, 99, 1)]),
            (amend(1, 1, 1, price=98), [("amended", 1, 98, 1, 98, False)]),
        ]
    )


def test_halt_is_per_symbol():
    ex = standard()
    ex.ok({"op": "asset", "asset": "ETH", "decimals": 8})
    ex.ok(
        {
            "op": "symbol",
            "symbol": "ETH-USDT",
            "base": "ETH",
            "quote": U,
            "tick_size": 10_000,
            "lot_size": 10_000,
        }
    )
    ex.ok(HALT)
    ex.reject(buy(1, 1, 100, 1), "symbol_halted")
    ex.run([(limit(1, 1, "buy", 100, 1, symbol="ETH-USDT"), [("accepted", 1, 100, "new")])])
    # funds move while a symbol is halted
    ex.run(
        [
            (
                {"op": "deposit", "user": 1, "asset": B, "amount": 5},
                [("deposited", 1, B, 5)],
                {(1, B): (1_000_005, 0)},
            )
        ]
    )


@pytest.mark.parametrize("op", ["halt", "resume"])
def test_halt_unknown_symbol(op):
    ex = standard()
    ex.reject({"op": op, "symbol": "XRP-USDT"}, "unknown_symbol")


def test_resume_a_running_symbol_is_harmless():
    ex = standard()
    ex.run([(RESUME, [("symbol_resumed", SYM)]), (buy(1, 1, 100, 1), None)])
