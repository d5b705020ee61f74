"""Symbol filters: ``min_qty``, ``max_qty`` (lots), ``min_notional`` (quote minor units)
and ``price_band_bps`` around the last trade price. A violation is rejected with reason
``filter_violated`` and the filter's name in ``Rejected.filter`` (``min_qty``,
``max_qty``, ``min_notional``, ``price_band``); a filter not given does not apply, and
the price band needs a last price.

The filtered market here: min_qty 2, max_qty 10, min_notional 300, price band 1000 bps
(10%). Last price 100 allows prices 90..110.
"""

from __future__ import annotations

import pytest

from tests.unit.helpers import Exchange, amend, buy, market, sell, standard, stop

U, B = "USDT", "BTC"
FILTERS = {"min_qty": 2, "max_qty": 10, "min_notional": 300, "price_band_bps": 1_000}


def filtered(last: int | None = 100) -> Exchange:
    ex = standard(**FILTERS)
    if last is not None:
        ex.ok(sell(90, 3, last, 3))
        ex.ok(buy(91, 4, last, 3))
        assert ex.last_price() == last and ex.book() == ([], [])
    return ex


# (order, filter it breaks or None when accepted)
LIMITS = [
    pytest.param(sell(1, 1, 100, 1), "min_qty", id="qty-1-below-min"),
    pytest.param(sell(1, 1, 100, 3), None, id="qty-3-notional-300-at-min"),
    pytest.param(sell(1, 1, 100, 10), None, id="qty-10-at-max"),
    pytest.param(sell(1, 1, 100, 11), "max_qty", id="qty-11-above-max"),
    pytest.param(buy(1, 1, 100, 2), "min_notional", id="notional-200"),
    pytest.param(buy(1, 1, 99, 3), "min_notional", id="notional-297"),
    pytest.param(buy(1, 1, 90, 4), None, id="band-low-edge-90"),
    pytest.param(buy(1, 1, 89, 4), "price_band", id="band-89"),
    pytest.param(sell(1, 1, 110, 3), None, id="band-high-edge-110"),
    pytest.param(sell(1, 1, 111, 3), "price_band", id="band-111"),
    pytest.param(sell(1, 1, 111, 2), "price_band", id="band-before-notional"),
    pytest.param(sell(1, 1, 200, 1), "min_qty", id="qty-before-band"),
    pytest.param(sell(1, 1, 200, 11), "max_qty", id="max-qty-before-band"),
    pytest.param(sell(1, 1, 105, 3, display_qty=1), None, id="iceberg-display-not-filtered"),
    pytest.param(sell(1, 1, 105, 3, tif="IOC"), None, id="ioc"),
]


@pytest.mark.parametrize(("order", "filter"), LIMITS)
def test_limit_filters(order, filter):
    ex = filtered()
    if filter is None:
        assert type(ex.ok(order)[0]).__name__ == "OrderAccepted"
    else:
        r = ex.reject(order, "filter_violated", filter)
        assert r.op == "place" and r.id == 1 and r.user == 1


# Last price 101: 10% band is 90.9..111.1, so 91..111
@pytest.mark.parametrize(
    ("price", "filter"),
    [(90, "price_band"), (91, None), (111, None), (112, "price_band")],
)
def test_band_rounding(price, filter):
    ex = filtered(last=101)
    order = buy(1, 1, price, 4)
    if filter is None:
        ex.ok(order)
    else:
        ex.reject(order, "filter_violated", filter)


def test_no_band_before_the_first_trade():
    ex = filtered(last=None)
    ex.run([(sell(1, 1, 1_000, 2), [("accepted", 1, 20_000, "new")])])
    ex.reject(sell(2, 1, 1_000, 1), "filter_violated", "min_qty")


def test_band_follows_the_last_price():
    ex = filtered()
    ex.reject(sell(1, 1, 120, 3), "filter_violated", "price_band")
    ex.ok(sell(2, 3, 110, 3))
    ex.ok(buy(3, 4, 110, 3))
    assert ex.last_price() == 110
    ex.run([(sell(1, 1, 120, 3), [("accepted", 1, 30_000, "new")])])


def test_unfiltered_symbol_accepts_anything_valid():
    ex = standard()
    ex.ok(sell(90, 3, 100, 1))
    ex.ok(buy(91, 4, 100, 1))
    ex.run(
        [
            (buy(1, 1, 1, 1), [("accepted", 1, 1, "new")]),
            (sell(2, 1, 10_000, 100), [("accepted", 2, 1_000_000, "new")]),
        ]
    )


MARKETS = [
    pytest.param(market(1, 1, "buy", qty=1), "min_qty", id="qty-1"),
    pytest.param(market(1, 1, "sell", qty=11), "max_qty", id="qty-11"),
    pytest.param(market(1, 1, "buy", quote_qty=299), "min_notional", id="quote-299"),
    pytest.param(market(1, 1, "buy", quote_qty=300), None, id="quote-300"),
    pytest.param(market(1, 1, "buy", qty=3), None, id="qty-3"),
]


@pytest.mark.parametrize(("order", "filter"), MARKETS)
def test_market_filters(order, filter):
    ex = filtered()
    ex.ok(sell(10, 3, 100, 10))
    ex.ok(buy(11, 3, 99, 10))
    if filter is None:
        ex.ok(order)
    else:
        ex.reject(order, "filter_violated", filter)


STOPS = [
    pytest.param(stop(1, 1, "buy", "stop_market", 105, 1), "min_qty", id="stop-qty-1"),
    pytest.param(stop(1, 1, "sell", "take_profit", 105, 11), "max_qty", id="tp-qty-11"),
    pytest.param(
        stop(1, 1, "buy", "stop_limit", 105, 3, price=111), "price_band", id="stop-limit-band"
    ),
    pytest.param(
        stop(1, 1, "buy", "stop_limit", 105, 2, price=105), "min_notional", id="stop-limit-notional"
    ),
    pytest.param(stop(1, 1, "buy", "stop_limit", 105, 3, price=106), None, id="stop-limit-ok"),
    pytest.param(stop(1, 1, "sell", "stop_market", 95, 2), None, id="stop-market-ok"),
]


@pytest.mark.parametrize(("order", "filter"), STOPS)
def test_stop_filters(order, filter):
    ex = filtered()
    if filter is None:
        ex.ok(order)
    else:
        ex.reject(order, "filter_violated", filter)


AMENDS = [
    pytest.param(amend(1, 1, 4, price=111), "price_band", None, id="price-out-of-band"),
    pytest.param(amend(1, 1, 11), "max_qty", None, id="qty-above-max"),
    pytest.param(
        amend(1, 1, 10, price=110), None, ("amended", 1, 110, 10, 100_000, False), id="ok"
    ),
]


@pytest.mark.parametrize(("cmd", "filter", "event"), AMENDS)
def test_amend_filters(cmd, filter, event):
    ex = filtered()
    ex.ok(sell(1, 1, 105, 4))
    if filter is None:
        ex.run([(cmd, [event])])
    else:
        ex.reject(cmd, "filter_violated", filter)


def test_invalid_filter_configuration():
    ex = standard()
    ex.reject(
        {
            "op": "symbol",
            "symbol": "USDT-BTC",
            "base": "USDT",
            "quote": "BTC",
            "tick_size": 100,
            "lot_size": 10_000,
            "min_qty": 5,
            "max_qty": 4,
        },
        "invalid_symbol",
    )
