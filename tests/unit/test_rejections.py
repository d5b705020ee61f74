"""Every rejection reason, each from a busy state (resting orders, a stop, a GTD order, a
pending withdrawal, a halted symbol, fee tiers, a last price). A rejected command yields
exactly one ``Rejected`` naming the command's op, id and user, and leaves
``state_hash()`` unchanged (the harness asserts both, and the invariants, on every
command).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.helpers import SYM, Exchange, amend, buy, cancel, limit, market, sell, standard
from tests.unit.helpers import stop as stop_

ETH = "ETH-USDT"  # halted
EB = "ETH-BTC"  # empty book, min_qty 5


def busy() -> Exchange:
    ex = standard()
    ex.ok({"op": "tick", "ts": 1_000})
    ex.ok({"op": "fees", "maker_bps": 10, "taker_bps": 20})
    ex.ok({"op": "fees", "tier": 1, "maker_bps": 0, "taker_bps": 10})
    ex.ok({"op": "tier", "user": 4, "tier": 1})
    ex.ok({"op": "asset", "asset": "ETH", "decimals": 8})
    for symbol, quote, extra in ((ETH, "USDT", {}), (EB, "BTC", {"min_qty": 5})):
        ex.ok(
            {
                "op": "symbol",
                "symbol": symbol,
                "base": "ETH",
                "quote": quote,
                "tick_size": 10_000,
                "lot_size": 10_000,
                **extra,
            }
        )
    for u in (1, 2, 3, 4):
        ex.ok({"op": "deposit", "user": u, "asset": "ETH", "amount": 1_000_000})
    ex.ok(limit(50, 1, "buy", 100, 1, symbol=ETH))
    ex.ok({"op": "halt", "symbol": ETH})
    ex.ok(sell(90, 3, 100, 1))
    ex.ok(buy(91, 4, 100, 1))  # last price 100
    ex.ok(sell(1, 1, 101, 2, client_id="c1"))
    ex.ok(buy(2, 2, 99, 2))
    ex.ok(stop_(3, 2, "buy", "stop_market", 105, 1))
    ex.ok(sell(4, 3, 102, 1, tif="GTD", expire_ts=5_000))
    ex.ok({"op": "withdraw_hold", "id": 7, "user": 1, "asset": "USDT", "amount": 100})
    return ex


def place(**kw: Any) -> dict[str, Any]:
    return {"op": "place", "id": 10, "user": 2, "symbol": SYM, "side": "buy", **kw}


def P(cmd: dict[str, Any], reason: str, id: str, filter: str | None = None) -> Any:
    return pytest.param(cmd, reason, filter, id=id)


REJECTIONS = [
    # ---------------------------------------------------------------- insufficient_balance
    P(buy(10, 2, 99, 20_000), "insufficient_balance", "limit-buy"),
    P(sell(10, 2, 110, 101), "insufficient_balance", "limit-sell"),
    P(buy(10, 9, 100, 1), "insufficient_balance", "no-account"),
    # cap floor(101 * 1.05) = 106; 106 * 9_500 = 1_007_000
    P(market(10, 2, "buy", qty=9_500), "insufficient_balance", "market-buy-band-lock"),
    P(market(10, 2, "buy", quote_qty=2_000_000), "insufficient_balance", "market-quote"),
    P(market(10, 2, "sell", qty=101), "insufficient_balance", "market-sell"),
    P(stop_(10, 1, "sell", "stop_market", 90, 99), "insufficient_balance", "stop-sell"),
    P(
        {"op": "withdraw_hold", "id": 8, "user": 1, "asset": "USDT", "amount": 999_801},
        "insufficient_balance",
        "withdraw-hold",
    ),
    P(
        {"op": "transfer", "user": 1, "to": 2, "asset": "USDT", "amount": 999_801},
        "insufficient_balance",
        "transfer",
    ),
    P(amend(2, 2, 20_000), "insufficient_balance", "amend-increase"),
    # ---------------------------------------------------------------- unknown_*
    P(limit(10, 2, "buy", 1, 1, symbol="XRP-USDT"), "unknown_symbol", "place"),
    P({"op": "halt", "symbol": "XRP-USDT"}, "unknown_symbol", "halt"),
    P({"op": "resume", "symbol": "XRP-USDT"}, "unknown_symbol", "resume"),
    P({"op": "cancel_all", "user": 1, "symbol": "XRP-USDT"}, "unknown_symbol", "cancel-all"),
    P({"op": "deposit", "user": 1, "asset": "XRP", "amount": 1}, "unknown_asset", "deposit"),
    P(
        {"op": "withdraw_hold", "id": 8, "user": 1, "asset": "XRP", "amount": 1},
        "unknown_asset",
        "withdraw-hold-asset",
    ),
    P(
        {"op": "transfer", "user": 1, "to": 2, "asset": "XRP", "amount": 1},
        "unknown_asset",
        "transfer-asset",
    ),
    P(
        {
            "op": "symbol",
            "symbol": "XRP-USDT",
            "base": "XRP",
            "quote": "USDT",
            "tick_size": 1,
            "lot_size": 1,
        },
        "unknown_asset",
        "symbol-base",
    ),
    P(cancel(99, 1), "unknown_order", "cancel-unknown"),
    P(cancel(2, 1), "unknown_order", "cancel-other-users"),
    P(amend(99, 1, 1), "unknown_order", "amend-unknown"),
    P(amend(1, 2, 1), "unknown_order", "amend-other-users"),
    P({"op": "withdraw_release", "id": 8}, "unknown_withdrawal", "release"),
    P({"op": "withdraw_settle", "id": 8}, "unknown_withdrawal", "settle"),
    P({"op": "tier", "user": 2, "tier": 9}, "unknown_tier", "tier"),
    # ---------------------------------------------------------------- duplicates
    P(sell(1, 1, 110, 1), "duplicate_order_id", "resting-id"),
    P(buy(3, 1, 90, 1), "duplicate_order_id", "stop-id"),
    P(market(4, 1, "sell", qty=1), "duplicate_order_id", "gtd-id-market"),
    P(sell(10, 1, 110, 1, client_id="c1"), "duplicate_client_id", "limit"),
    P(market(10, 1, "sell", qty=1, client_id="c1"), "duplicate_client_id", "market"),
    P(
        stop_(10, 1, "sell", "stop_market", 90, 1, client_id="c1"),
        "duplicate_client_id",
        "stop",
    ),
    P(
        {"op": "withdraw_hold", "id": 7, "user": 2, "asset": "USDT", "amount": 1},
        "duplicate_withdrawal",
        "withdrawal",
    ),
    P({"op": "asset", "asset": "BTC", "decimals": 8}, "asset_exists", "asset-same"),
    P({"op": "asset", "asset": "ETH", "decimals": 18}, "asset_exists", "asset-other-decimals"),
    P(
        {
            "op": "symbol",
            "symbol": SYM,
            "base": "BTC",
            "quote": "USDT",
            "tick_size": 10_000,
            "lot_size": 10_000,
        },
        "symbol_exists",
        "symbol",
    ),
    # ---------------------------------------------------------------- order rules
    P(buy(10, 2, 101, 1, post_only=True), "post_only_would_take", "post-only-buy"),
    P(sell(10, 2, 99, 1, post_only=True), "post_only_would_take", "post-only-sell"),
    P(buy(10, 2, 101, 3, tif="FOK"), "fok_not_fillable", "fok"),
    P(limit(10, 2, "buy", 100, 1, symbol=ETH), "symbol_halted", "place-halted"),
    P(
        {"op": "amend", "id": 50, "user": 1, "symbol": ETH, "qty": 1, "price": 99},
        "symbol_halted",
        "amend-halted",
    ),
    P(sell(10, 2, 110, 1, tif="GTD", expire_ts=1_000), "already_expired", "gtd-now"),
    P(sell(10, 2, 110, 1, tif="GTD", expire_ts=1), "already_expired", "gtd-past"),
    P(stop_(10, 2, "buy", "stop_market", 100, 1), "would_trigger_immediately", "buy-stop"),
    P(stop_(10, 2, "sell", "take_profit", 99, 1), "would_trigger_immediately", "sell-tp"),
    P(amend(3, 2, 1), "not_amendable", "amend-stop"),
    P(market(10, 2, "buy", symbol=EB, qty=5), "no_liquidity", "market-empty-book"),
    P(limit(10, 2, "buy", 1, 1, symbol=EB), "filter_violated", "filter", "min_qty"),
    # ---------------------------------------------------------------- configuration
    P(
        {
            "op": "symbol",
            "symbol": "USDT-BTC",
            "base": "BTC",
            "quote": "USDT",
            "tick_size": 10_000,
            "lot_size": 10_000,
        },
        "invalid_symbol",
        "name-not-base-quote",
    ),
    P(
        {
            "op": "symbol",
            "symbol": "BTC-BTC",
            "base": "BTC",
            "quote": "BTC",
            "tick_size": 10_000,
            "lot_size": 10_000,
        },
        "invalid_symbol",
        "same-assets",
    ),
    P(
        {
            "op": "symbol",
            "symbol": "BTC-ETH",
            "base": "BTC",
            "quote": "ETH",
            "tick_size": 100,
            "lot_size": 100,
        },
        "invalid_symbol",
        "inexact-notional",
    ),
    P(
        {
            "op": "symbol",
            "symbol": "BTC-ETH",
            "base": "BTC",
            "quote": "ETH",
            "tick_size": 10_000,
            "lot_size": 10_000,
            "min_qty": 3,
            "max_qty": 2,
        },
        "invalid_symbol",
        "min-above-max",
    ),
    P(
        {"op": "transfer", "user": 1, "to": 1, "asset": "USDT", "amount": 1},
        "invalid_transfer",
        "to-self",
    ),
]


@pytest.mark.parametrize(("cmd", "reason", "filter"), REJECTIONS)
def test_rejection(cmd, reason, filter):
    ex = busy()
    before = ex.core.state_hash()
    r = ex.reject(cmd, reason, filter)
    assert ex.core.state_hash() == before
    assert (r.op, r.id, r.user) == (cmd["op"], cmd.get("id"), cmd.get("user"))
    assert r.message


INVALID_ORDERS = [
    pytest.param(place(qty=1), id="limit-no-price"),
    pytest.param(place(price=99), id="limit-no-qty"),
    pytest.param(place(price=99, qty=1, quote_qty=99), id="limit-quote-qty"),
    pytest.param(place(price=99, qty=1, stop_price=98), id="limit-stop-price"),
    pytest.param(place(price=99, qty=1, tif="GTD"), id="gtd-no-expire"),
    pytest.param(place(price=99, qty=1, expire_ts=9_999), id="gtc-with-expire"),
    pytest.param(place(price=99, qty=2, display_qty=2), id="display-not-below-qty"),
    pytest.param(place(price=99, qty=2, display_qty=1, tif="IOC"), id="display-ioc"),
    pytest.param(place(price=99, qty=1, post_only=True, tif="IOC"), id="post-only-ioc"),
    pytest.param(place(price=99, qty=1, post_only=True, tif="FOK"), id="post-only-fok"),
    pytest.param(place(type="market", qty=1, quote_qty=100), id="market-qty-and-quote"),
    pytest.param(place(type="market"), id="market-neither"),
    pytest.param(place(type="market", side="sell", quote_qty=100), id="market-sell-quote"),
    pytest.param(place(type="market", qty=1, price=101), id="market-price"),
    pytest.param(place(type="market", qty=1, tif="FOK"), id="market-fok"),
    pytest.param(place(type="market", qty=1, tif="GTD", expire_ts=9_999), id="market-gtd"),
    pytest.param(place(type="market", qty=1, post_only=True), id="market-post-only"),
    pytest.param(place(type="market", qty=2, display_qty=1), id="market-display"),
    pytest.param(place(type="market", qty=1, stop_price=101), id="market-stop-price"),
    pytest.param(place(type="stop_market", qty=1), id="stop-no-stop-price"),
    pytest.param(place(type="stop_limit", qty=1, price=106), id="stop-limit-no-stop-price"),
    pytest.param(place(type="take_profit", stop_price=95), id="tp-no-qty"),
    pytest.param(place(type="stop_market", qty=1, stop_price=106, price=107), id="stop-mkt-price"),
    pytest.param(place(type="stop_limit", qty=1, stop_price=106), id="stop-limit-no-price"),
    pytest.param(place(type="take_profit_limit", qty=1, stop_price=95), id="tp-limit-no-price"),
    pytest.param(place(type="stop_market", qty=1, stop_price=106, tif="FOK"), id="stop-fok"),
    pytest.param(
        place(type="stop_market", qty=1, stop_price=106, tif="GTD", expire_ts=9_999),
        id="stop-gtd",
    ),
    pytest.param(
        place(type="stop_limit", qty=2, stop_price=106, price=107, display_qty=1),
        id="stop-display",
    ),
    pytest.param(
        place(type="stop_market", qty=1, stop_price=106, quote_qty=100), id="stop-quote-qty"
    ),
    pytest.param(
        place(type="stop_limit", qty=1, stop_price=106, price=107, post_only=True),
        id="stop-post-only",
    ),
    # "expire_ts is required with GTD and only with GTD" (the limit path's rule): a market
    # or stop order carrying an expire_ts cannot honour it and must not silently drop it.
    pytest.param(
        place(type="market", qty=1, expire_ts=9_999),
        id="market-expire-ts",
    ),
    pytest.param(
        place(type="stop_market", qty=1, stop_price=106, expire_ts=9_999),
        id="stop-expire-ts",
    ),
    pytest.param(
        place(type="stop_limit", qty=1, stop_price=106, price=107, expire_ts=9_999),
        id="stop-limit-expire-ts",
    ),
]


@pytest.mark.parametrize("cmd", INVALID_ORDERS)
def test_invalid_order(cmd):
    ex = busy()
    before = ex.core.state_hash()
    r = ex.reject(cmd, "invalid_order")
    assert ex.core.state_hash() == before
    assert (r.op, r.id, r.user) == ("place", 10, 2)


def test_busy_state_is_what_the_table_assumes():
    ex = busy()
    assert ex.book() == ([(99, 2, 2)], [(101, 1, 2), (102, 4, 1)])
    assert ex.last_price() == 100
    assert set(ex.core.stops) == {3}
    assert ex.core.markets[ETH].halted
    assert ex.bal(1, "USDT") == (999_800, 200)  # ETH bid 100 + withdrawal 100
    assert ex.bal(1, "BTC") == (980_000, 20_000)
    assert ex.bal(2, "USDT") == (1_000_000 - 198 - 110, 198 + 110)
    assert ex.core.ts == 1_000


def test_a_rejection_does_not_block_the_next_command():
    ex = busy()
    ex.reject(buy(10, 2, 101, 3, tif="FOK"), "fok_not_fillable")
    ex.run(
        [(buy(10, 2, 101, 2, tif="FOK"), [("accepted", 10, 202, "new"), ("trade", 1, 10, 101, 2)])]
    )


def test_client_ids_are_per_user():
    ex = busy()
    ex.run([(sell(10, 2, 110, 1, client_id="c1"), [("accepted", 10, 10_000, "new")])])
