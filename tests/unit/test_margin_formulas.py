"""Worked examples of the margin formulas (docs/margin.md), each row computed by hand.

Units of the standard market: BTC 8 decimals, tick 10000, so one BTC minor unit at mark
``m`` is worth ``m / 10000`` USDT minor units; levels in 1/10000.
"""

from __future__ import annotations

import pytest

from tradewind.core.book import Book, Order
from tradewind.core.margin import (
    ALWAYS,
    VALUE_ONE,
    at_or_below,
    initial_level,
    interest_for,
    level_of,
    max_borrow_by_level,
    trigger,
)
from tradewind.core.marks import clamp_move, index_inputs, median

TICK, DEC = 10_000, 8
BTC_AT = 10**10 * TICK  # scale of a BTC minor unit per tick of mark: m * t * 10**(18-8)


def usdt(x: int) -> int:
    return x * VALUE_ONE


def btc(x: int, mark: int) -> int:
    return x * mark * BTC_AT


@pytest.mark.parametrize(
    ("assets", "liabilities", "level"),
    [
        (usdt(5000), usdt(4000), 12500),  # 500,000 BTC at 100 vs 4000 USDT
        (btc(500_000, 92), usdt(4000), 11500),
        (btc(500_000, 88), usdt(4000), 11000),
        (usdt(5000), btc(400_000, 113), 11061),  # 5000 / 4520 = 1.10619..., rounded down
        (usdt(1), usdt(3), 3333),
        (usdt(7), 0, None),  # no debt: no level
    ],
)
def test_margin_level(assets: int, liabilities: int, level: int | None) -> None:
    assert level_of(assets, liabilities) == level


def test_threshold_is_exact_not_rounded() -> None:
    # 4400.00 / 4000 is exactly 1.1: at the threshold. One unit more is above it, even
    # though both round to level 11000.
    assert at_or_below(btc(500_000, 88), usdt(4000), 11000)
    assert level_of(btc(500_000, 88) + 1, usdt(4000)) == 11000
    assert not at_or_below(btc(500_000, 88) + 1, usdt(4000), 11000)
    assert not at_or_below(usdt(5), 0, 11000)


@pytest.mark.parametrize(
    ("leverage", "initial"), [(10, 11112), (5, 12500), (4, 13334), (3, 15000), (2, 20000)]
)
def test_initial_level_of_leverage(leverage: int, initial: int) -> None:
    assert initial_level(leverage) == initial


@pytest.mark.parametrize(
    ("threshold", "base", "base_debt", "quote", "quote_debt", "expected"),
    [
        (11000, 500_000, 0, 0, 4000, (1, 88)),  # long: 500,000*88/10000 = 4400 = 1.1*4000
        (11500, 500_000, 0, 0, 4000, (1, 92)),  # its margin-call price
        (11000, 0, 400_000, 5000, 0, (-1, 114)),  # short: 5000/(40*p) <= 1.1 from 113.6..
        (11000, 1_000_000, 0, 1000, 9000, (1, 89)),  # (100*p + 1000)/9000 <= 1.1: p <= 89
        (11000, 500_000, 0, 5000, 0, None),  # no debt in the price's direction: never
        (11000, 0, 0, 1000, 1000, (1, ALWAYS)),  # 1000/1000 <= 1.1 at any price
        (11000, 0, 0, 2000, 1000, None),  # 2.0 at any price
    ],
)
def test_liquidation_price(
    threshold: int,
    base: int,
    base_debt: int,
    quote: int,
    quote_debt: int,
    expected: tuple[int, int] | None,
) -> None:
    got = trigger(threshold, base, base_debt, quote, quote_debt, TICK, DEC)
    assert got == expected
    if got is not None and got[1] != ALWAYS:
        direction, price = got

        # The boundary price meets the threshold, one tick further away does not.
        def under(p: int) -> bool:
            a = btc(base, p) + usdt(quote)
            lia = btc(base_debt, p) + usdt(quote_debt)
            return at_or_below(a, lia, threshold)

        assert under(price)
        assert not under(price + direction)


@pytest.mark.parametrize(
    ("assets", "liabilities", "scale", "initial", "most"),
    [
        (usdt(1000), 0, VALUE_ONE, 12500, 4000),  # 1000 USDT at 5x: borrow 4000 USDT
        (usdt(1000), 0, 100 * BTC_AT, 12500, 400_000),  # or 40 lots of BTC at mark 100
        (usdt(1000), 0, VALUE_ONE, 11112, 8992),  # 10x: 10^7 / 1112 = 8992.8, rounded down
        (usdt(5000), usdt(4000), VALUE_ONE, 12500, 0),  # at the initial level already
        (usdt(4000), usdt(4000), VALUE_ONE, 12500, 0),  # below it
        (usdt(3), 0, VALUE_ONE, 15000, 6),  # 3x: 30000 / 5000 = 6
    ],
)
def test_max_borrow_by_level(
    assets: int, liabilities: int, scale: int, initial: int, most: int
) -> None:
    got = max_borrow_by_level(assets, liabilities, scale, initial)
    assert got == most
    # One more would break the initial level; the answer itself does not.
    if got:
        assert 10_000 * (assets + got * scale) >= initial * (liabilities + got * scale)
    assert 10_000 * (assets + (got + 1) * scale) < initial * (liabilities + (got + 1) * scale)


@pytest.mark.parametrize(
    ("principal", "rate", "hours", "interest"),
    [
        (10**9, 417, 1, 417),  # exact
        (10**6, 417, 1, 1),  # 0.417 rounds up
        (3 * 10**6, 417, 1, 2),  # 1.251 rounds up
        (3 * 10**6, 417, 5, 10),  # each hour rounds on its own
        (4000, 1000, 3, 3),  # 0.004 an hour -> 1 an hour
        (0, 1000, 4, 0),
        (12345, 0, 4, 0),
    ],
)
def test_interest_rounds_up_per_hour(principal: int, rate: int, hours: int, interest: int) -> None:
    assert interest_for(principal, rate, hours) == interest
    exact = principal * rate * hours / 10**9
    assert 0 <= interest - exact < hours  # towards the exchange, < 1 minor unit an hour


def _book(bid: int | None, ask: int | None) -> Book:
    from tradewind.core.book import Balance

    b = Book()
    for i, (price, buy) in enumerate(((bid, True), (ask, False))):
        if price is not None:
            b.add(Order(i + 1, 1, "X-Y", buy, price, 1, 0, Balance()))
    return b


@pytest.mark.parametrize(
    ("bid", "ask", "feeds", "ts", "inputs", "index"),
    [
        (99, 101, (), 0, [100], 100),
        (99, None, ((105, 0),), 0, [105], 105),  # one side only: no mid
        (99, 102, ((104, 20_000), (90, 0)), 1000, [100, 104, 90], 100),  # a later feed ts is fresh
        (99, 102, ((104, 20_000), (90, 0)), 70_000, [100, 104], 102),  # 90 is 70 s old
        (None, None, ((7, 5),), 60_005, [7], 7),  # exactly 60 s old still counts
        (None, None, ((7, 5),), 60_006, [], None),
    ],
)
def test_index(
    bid: int | None,
    ask: int | None,
    feeds: tuple[tuple[int, int], ...],
    ts: int,
    inputs: list[int],
    index: int | None,
) -> None:
    got = index_inputs(_book(bid, ask), feeds, ts, 60_000)
    assert got == inputs
    if index is not None:
        assert median(got) == index


@pytest.mark.parametrize(
    ("previous", "index", "bps", "mark"),
    [
        (None, 500, 1000, 500),  # the first mark is the index
        (100, 105, 1000, 105),
        (100, 150, 1000, 110),  # held to +10 %
        (100, 10, 1000, 90),
        (95, 200, 1000, 104),  # the step 9.5 rounds to 9: never wider than the limit
        (1, 0, 10_000, 1),  # at least one tick
    ],
)
def test_mark_move_limit(previous: int | None, index: int, bps: int, mark: int) -> None:
    assert clamp_move(previous, index, bps) == mark
