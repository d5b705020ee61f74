"""Decimal strings <-> ticks, lots and minor units at the API edge: exact or refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradewind.gateways.rest.errors import ApiError
from tradewind.gateways.rest.units import (
    MAX_INT,
    format_minor,
    format_price,
    format_qty,
    to_lots,
    to_minor,
    to_ticks,
)
from tradewind.services.catalog import MarketInfo

BTC_USDT = MarketInfo(
    "BTC-USDT", "BTC", "USDT", 8, 6, 10_000, 10_000, None, None, None, None, 500, False, None
)


def refused(fn: object, *args: object) -> ApiError:
    with pytest.raises(ApiError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value


def test_conversions() -> None:
    assert to_minor("1.5", 6, "amount") == 1_500_000
    assert to_minor("1.500000000", 6, "amount") == 1_500_000  # trailing zeros are fine
    assert to_ticks("65000.01", BTC_USDT) == 6_500_001
    assert to_lots("0.0003", BTC_USDT) == 3
    assert format_price(6_500_001, BTC_USDT) == "65000.01"
    assert format_qty(3, BTC_USDT) == "0.0003"
    assert format_minor(-1_500_000, 6) == "-1.500000"
    assert format_minor(5, 0) == "5"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "invalid_decimal"),
        ("1e3", "invalid_decimal"),
        ("+1", "invalid_decimal"),
        ("1.", "invalid_decimal"),
        (".5", "invalid_decimal"),
        ("1,5", "invalid_decimal"),
        ("NaN", "invalid_decimal"),
        ("1" * 65, "invalid_decimal"),
        ("0", "invalid_amount"),
        ("0.000", "invalid_amount"),
        ("-2", "invalid_amount"),
        ("1.0000001", "too_many_decimals"),
        (str(MAX_INT + 1), "invalid_amount"),
    ],
)
def test_refusals(text: str, code: str) -> None:
    assert refused(to_minor, text, 6, "amount").code == code


def test_tick_and_lot_filters() -> None:
    e = refused(to_ticks, "65000.0000001", BTC_USDT)
    assert e.code == "too_many_decimals"
    e = refused(to_ticks, "65000.005", BTC_USDT)
    assert (e.code, e.extra.get("filter")) == ("filter_violated", "tick_size")
    e = refused(to_lots, "0.00015", BTC_USDT)
    assert (e.code, e.extra.get("filter")) == ("filter_violated", "lot_size")


@given(st.integers(min_value=1, max_value=MAX_INT // 10_000))
def test_price_round_trip(ticks: int) -> None:
    assert to_ticks(format_price(ticks, BTC_USDT), BTC_USDT) == ticks


@given(st.integers(min_value=1, max_value=MAX_INT // 10_000))
def test_qty_round_trip(lots: int) -> None:
    assert to_lots(format_qty(lots, BTC_USDT), BTC_USDT) == lots
