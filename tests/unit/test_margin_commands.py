"""Margin commands in the engine: configuration, wallets, borrow, repay, interest, orders
from a wallet, and the precise rejection of bad input (which changes nothing: the
``Exchange`` harness checks the state hash and the invariants after every command).

The market and the figures are those of ``margin_setup`` (docs/margin.md's examples).
"""

from __future__ import annotations

from typing import Any

import msgspec

from tests.unit.helpers import SYM, brief, standard
from tests.unit.margin_setup import (
    POOL,
    borrow,
    into,
    long_position,
    margin_market,
    mark,
    out,
    repay,
    wallet_id,
)
from tradewind.core import commands as C
from tradewind.core.engine import Core
from tradewind.core.margin import HOUR_MS, INSURANCE_ACCOUNT, POOL_ACCOUNT
from tradewind.core.margin_ops import max_borrowable, wallet_view


def test_spot_only_core_state_has_no_margin_and_spot_commands_encode_as_before() -> None:
    ex = standard()
    st = ex.core.state()
    assert "margin" not in st
    assert not any(u < 0 for u, *_ in st["balances"])
    place = C.Place(id=1, user=1, symbol=SYM, side="buy", price=100, qty=1)
    assert msgspec.json.encode(place) == (
        b'{"op":"place","id":1,"user":1,"symbol":"BTC-USDT","side":"buy","price":100,"qty":1}'
    )
    assert ex.core.next_hour == 2**63  # no interest work per command


def test_configuration_rejects() -> None:
    ex = standard()
    base = {"op": "margin_symbol", "symbol": SYM, "margin_call_level": 11_500}
    ex.reject({**base, "max_leverage": 11, "liquidation_level": 11_000}, "leverage_too_high")
    ex.reject({**base, "max_leverage": 1, "liquidation_level": 11_000}, "invalid_margin_terms")
    # liquidation must be below the margin call, the call below the initial (10x: 11112)
    ex.reject({**base, "max_leverage": 10, "liquidation_level": 11_600}, "invalid_margin_terms")
    ex.reject(
        {**base, "max_leverage": 10, "margin_call_level": 11_200, "liquidation_level": 11_000},
        "invalid_margin_terms",
    )
    ex.reject(
        {**base, "symbol": "ETH-USDT", "max_leverage": 5, "liquidation_level": 11_000},
        "unknown_symbol",
    )
    ex.reject(
        {
            "op": "margin_cross",
            "max_leverage": 20,
            "margin_call_level": 13_000,
            "liquidation_level": 11_000,
        },
        "leverage_too_high",
    )
    ex.reject(
        {"op": "margin_asset", "asset": "DOGE", "hourly_rate": 1, "borrow_limit": 1},
        "unknown_asset",
    )
    assert "margin" not in ex.core.state()  # nothing was switched on by the rejects
    ex.ok({**base, "max_leverage": 10, "margin_call_level": 11_100, "liquidation_level": 10_500})
    assert ex.core.margin.symbols[SYM].initial == 11_112


def test_transfer_opens_the_wallet_and_moves_available_funds() -> None:
    ex = margin_market()
    events = ex.do(
        {
            "op": "margin_transfer",
            "user": 1,
            "asset": "USDT",
            "amount": 1000,
            "direction": "in",
            "wallet": "isolated",
            "symbol": SYM,
        }
    )
    wid = wallet_id(ex, 1)
    assert [brief(e) for e in events] == [
        ("margin_wallet_opened", wid, 1, "isolated", SYM),
        ("margin_transferred", wid, 1, "USDT", 1000, "in"),
    ]
    assert ex.bal(1, "USDT") == (1_000_000 - 1000, 0)
    assert ex.bal(wid, "USDT") == (1000, 0)
    into(ex, 1, "USDT", 500, wallet="cross")
    assert wallet_id(ex, 1, "") != wid
    ex.ok(out(1, "USDT", 300))
    assert ex.bal(wid, "USDT") == (700, 0)


def test_transfer_rejects() -> None:
    ex = margin_market()
    transfer = {
        "op": "margin_transfer",
        "user": 1,
        "asset": "USDT",
        "amount": 10,
        "direction": "in",
        "wallet": "isolated",
        "symbol": SYM,
    }
    ex.reject({**transfer, "amount": 2_000_000}, "insufficient_balance")
    ex.reject({**transfer, "wallet": "cross"}, "invalid_wallet")
    ex.reject({k: v for k, v in transfer.items() if k != "symbol"}, "invalid_wallet")
    ex.reject({**transfer, "direction": "out"}, "no_margin_wallet")
    ex.reject({**transfer, "asset": "ETH"}, "unknown_asset")
    # transfer out that would drop the level below the initial 1.25
    into(ex, 1, "USDT", 1000)
    ex.ok(borrow(1, "USDT", 3000))  # 4000 / 3000 = 1.333
    ex.reject(out(1, "USDT", 251), "below_initial_margin")  # 3749 / 3000 = 1.2497
    ex.ok(out(1, "USDT", 250))  # 3750 / 3000 = 1.25 exactly


def test_borrow_up_to_the_initial_level_and_the_limits() -> None:
    ex = margin_market()
    into(ex, 1, "USDT", 1000)
    wid = wallet_id(ex, 1)
    assert max_borrowable(ex.core, 1, "isolated", SYM, "USDT") == 4000
    assert max_borrowable(ex.core, 1, "isolated", SYM, "BTC") == 400_000  # 40 lots at 100
    ex.reject(borrow(1, "USDT", 4001), "below_initial_margin")
    events = ex.ok(borrow(1, "USDT", 4000))
    assert [brief(e) for e in events] == [("borrowed", wid, 1, "USDT", 4000, 4000, 0, None)]
    assert ex.bal(wid, "USDT") == (5000, 0)
    assert ex.bal(POOL_ACCOUNT, "USDT") == (POOL - 4000, 0)
    view = wallet_view(ex.core, wid)
    assert (view["assets"], view["liabilities"], view["level"]) == (5000, 4000, 12500)
    assert max_borrowable(ex.core, 1, "isolated", SYM, "USDT") == 0


def test_borrow_rejects() -> None:
    ex = margin_market()
    ex.reject(borrow(1, "USDT", 10), "no_margin_wallet")
    into(ex, 1, "USDT", 10**6 - 1)
    # the per-wallet limit: at most 10**9 owed; the pool: 5 * 10**7
    ex.reject(borrow(1, "USDT", 10**9 + 1), "borrow_limit_exceeded")
    ex.reject(borrow(1, "USDT", POOL + 1), "pool_insufficient")
    ex.reject(borrow(1, "USDT", 10, wallet="cross"), "no_margin_wallet")


def test_asset_not_borrowable_and_no_mark() -> None:
    ex = standard()
    ex.ok({"op": "deposit", "user": 9, "asset": "USDT", "amount": 10**6})
    ex.ok(
        {
            "op": "margin_symbol",
            "symbol": SYM,
            "max_leverage": 5,
            "margin_call_level": 11_500,
            "liquidation_level": 11_000,
        }
    )
    # no mark yet: BTC cannot come in
    ex.reject(
        {
            "op": "margin_transfer",
            "user": 1,
            "asset": "BTC",
            "amount": 10,
            "direction": "in",
            "wallet": "isolated",
            "symbol": SYM,
        },
        "no_mark_price",
    )
    into(ex, 1, "USDT", 1000)
    ex.reject(borrow(1, "USDT", 10), "asset_not_borrowable")  # no margin_asset for USDT
    ex.reject({"op": "mark", "symbol": SYM}, "no_index_price")  # empty book, no feeds
    # a feed 60.001 s old is stale
    ex.reject(
        {"op": "mark", "symbol": "BTC-USDT", "feeds": [[100, 0]]}, "no_index_price", ts=60_001
    )
    ex.ok({"op": "mark", "symbol": SYM, "feeds": [[100, ex.ts]]})


def test_repay_interest_first_and_not_more_than_owed() -> None:
    ex = margin_market()
    into(ex, 1, "USDT", 1000)
    wid = wallet_id(ex, 1)
    ex.ok(borrow(1, "USDT", 4000))
    # 4000 * 1000 ppb = 0.004 an hour, rounded up to 1: three hours cost 3
    events = ex.ok({"op": "tick"}, ts=3 * HOUR_MS)
    assert [brief(e) for e in events] == [("interest_charged", wid, 1, "USDT", 3, 4000, 3, 3, 3)]
    ex.reject(repay(1, "USDT", 4004), "repay_exceeds_debt")
    events = ex.ok(repay(1, "USDT", 5))
    assert [brief(e) for e in events] == [("repaid", wid, 1, "USDT", 5, 3, 2, 3998, 0, "user")]
    ex.ok(repay(1, "USDT", 3998))
    assert wallet_view(ex.core, wid)["loans"] == {}
    ex.reject(repay(1, "USDT", 1), "repay_exceeds_debt")
    # the pool got its money and its interest back
    assert ex.bal(POOL_ACCOUNT, "USDT") == (POOL + 3, 0)
    assert ex.core.margin.interest == {"USDT": 3}


def test_interest_only_at_hour_boundaries() -> None:
    ex = margin_market()
    into(ex, 1, "USDT", 1000)
    ex.ok(borrow(1, "USDT", 4000), ts=HOUR_MS - 1)
    assert ex.ok({"op": "tick"}, ts=HOUR_MS - 1) == []
    assert len(ex.ok({"op": "tick"}, ts=HOUR_MS)) == 1
    assert ex.ok({"op": "tick"}, ts=2 * HOUR_MS - 1) == []


def test_orders_from_a_wallet_trade_as_the_wallet() -> None:
    ex = margin_market()
    wid = long_position(ex)
    assert ex.bal(wid, "BTC") == (500_000, 0)
    assert ex.bal(wid, "USDT") == (0, 0)
    # the owner rests a sell from the wallet and cancels it by id as themselves
    ex.ok(
        {
            "op": "place",
            "id": 7,
            "user": 1,
            "symbol": SYM,
            "side": "sell",
            "price": 120,
            "qty": 10,
            "wallet": "isolated",
        }
    )
    assert ex.bal(wid, "BTC") == (400_000, 100_000)
    assert ex.core.orders[7].user == wid
    ex.reject({"op": "cancel", "id": 7, "user": 2, "symbol": SYM}, "unknown_order")
    events = ex.ok({"op": "cancel", "id": 7, "user": 1, "symbol": SYM})
    assert [brief(e) for e in events] == [("cancelled", 7, 10, 100_000, "user")]
    ex.ok(
        {
            "op": "place",
            "id": 8,
            "user": 1,
            "symbol": SYM,
            "side": "sell",
            "price": 120,
            "qty": 10,
            "wallet": "isolated",
        }
    )
    ex.ok({"op": "amend", "id": 8, "user": 1, "symbol": SYM, "qty": 5})
    assert ex.bal(wid, "BTC") == (450_000, 50_000)
    ex.ok({"op": "cancel_all", "user": 1})
    assert ex.bal(wid, "BTC") == (500_000, 0)


def test_order_rejects() -> None:
    ex = margin_market()
    order = {
        "op": "place",
        "id": 1,
        "user": 1,
        "symbol": SYM,
        "side": "buy",
        "price": 100,
        "qty": 1,
        "wallet": "isolated",
    }
    ex.reject(order, "no_margin_wallet")
    into(ex, 1, "USDT", 100)
    ex.reject({**order, "qty": 2}, "insufficient_balance")
    # auto_borrow over the initial level is a borrow reject, and nothing changes
    ex.reject({**order, "qty": 600, "auto_borrow": True}, "below_initial_margin")
    ex.reject({**order, "symbol": "ETH-USDT"}, "unknown_symbol")


def test_auto_borrow_and_auto_repay() -> None:
    ex = margin_market()
    into(ex, 1, "USDT", 1000)
    wid = wallet_id(ex, 1)
    ex.ok(
        {
            "op": "place",
            "id": 900,
            "user": 2,
            "symbol": SYM,
            "side": "sell",
            "price": 100,
            "qty": 30,
        }
    )
    events = ex.ok(
        {
            "op": "place",
            "id": 5,
            "user": 1,
            "symbol": SYM,
            "side": "buy",
            "price": 100,
            "qty": 30,
            "wallet": "isolated",
            "auto_borrow": True,
        }
    )
    assert brief(events[0]) == ("borrowed", wid, 1, "USDT", 2000, 2000, 0, 5)
    assert ex.bal(wid, "BTC") == (300_000, 0)
    # a rejected order undoes its auto-borrow: the harness checks the hash is unchanged
    ex.reject(
        {
            "op": "place",
            "id": 5,
            "user": 1,
            "symbol": SYM,
            "side": "buy",
            "price": 100,
            "qty": 1,
            "wallet": "isolated",
            "auto_borrow": True,
            "post_only": True,
            "tif": "IOC",
        },
        "invalid_order",
    )
    # sell 20 lots with auto_repay: the proceeds go to the debt
    ex.ok(
        {"op": "place", "id": 901, "user": 3, "symbol": SYM, "side": "buy", "price": 100, "qty": 20}
    )
    events = ex.ok(
        {
            "op": "place",
            "id": 6,
            "user": 1,
            "symbol": SYM,
            "side": "sell",
            "price": 100,
            "qty": 20,
            "wallet": "isolated",
            "auto_repay": True,
        }
    )
    assert [brief(e) for e in events][-1] == (
        "repaid",
        wid,
        1,
        "USDT",
        2000,
        0,
        2000,
        0,
        0,
        "auto_repay",
    )
    assert wallet_view(ex.core, wid)["loans"] == {}


def test_snapshot_restore_keeps_margin_and_its_index() -> None:
    ex = margin_market()
    wid = long_position(ex)
    mark(ex, 92)  # margin call
    blob = ex.core.snapshot()
    again = Core.restore(blob)
    assert again.state_hash() == ex.core.state_hash()
    assert again.margin.wallets[wid].called
    assert wallet_view(again, wid) == wallet_view(ex.core, wid)
    # both liquidate the same way at 88
    cmd = C.Mark(seq=ex.seq + 1, ts=ex.ts, symbol=SYM, feeds=((88, ex.ts),))
    assert again.apply(cmd) == ex.core.apply(cmd)
    assert again.state_hash() == ex.core.state_hash()


def test_pool_and_insurance_funding() -> None:
    ex = margin_market()
    ex.reject(
        {"op": "pool_defund", "user": 9, "asset": "USDT", "amount": POOL + 1}, "insufficient_funds"
    )
    ex.ok({"op": "pool_defund", "user": 9, "asset": "USDT", "amount": 10})
    assert ex.core.margin.funded["USDT"] == POOL - 10
    ex.reject(
        {"op": "insurance_defund", "user": 9, "asset": "USDT", "amount": 10**6 + 1},
        "insufficient_funds",
    )
    ex.ok({"op": "insurance_defund", "user": 9, "asset": "USDT", "amount": 10**6})
    assert ex.bal(INSURANCE_ACCOUNT, "USDT") == (0, 0)
    ex.reject(
        {"op": "pool_fund", "user": 1, "asset": "USDT", "amount": 10**7}, "insufficient_balance"
    )


# ------------------------------------------------------------------ auto-repay on every fill


def sell_from_wallet(id: int, price: int, qty: int, **kw: Any) -> dict[str, Any]:
    """User 1's sell from the isolated wallet, with ``auto_repay`` unless told."""
    return {
        "op": "place",
        "id": id,
        "user": 1,
        "symbol": SYM,
        "side": "sell",
        "price": price,
        "qty": qty,
        "wallet": "isolated",
        "auto_repay": True,
        **kw,
    }


def repaid(events: list[Any]) -> list[tuple[Any, ...]]:
    return [brief(e)[1:] for e in events if brief(e)[0] == "repaid"]


def test_auto_repay_resting_sell_repays_on_each_maker_fill() -> None:
    ex = margin_market()
    wid = long_position(ex)  # holds 500,000 BTC, owes 4000 USDT
    events = ex.ok(sell_from_wallet(10, 101, 30))
    assert repaid(events) == []  # nothing filled yet
    assert ex.core.margin.auto_repay == {10}
    # user 3 buys 10 lots from the resting sell: the 1010 USDT of proceeds repay the debt
    events = ex.ok(
        {"op": "place", "id": 20, "user": 3, "symbol": SYM, "side": "buy", "price": 101, "qty": 10}
    )
    assert repaid(events) == [(wid, 1, "USDT", 1010, 0, 1010, 2990, 0, "auto_repay")]
    assert ex.bal(wid, "USDT") == (0, 0)
    # the rest fills later: it repays too, and the order, over, wants nothing more
    events = ex.ok(
        {"op": "place", "id": 21, "user": 4, "symbol": SYM, "side": "buy", "price": 101, "qty": 20}
    )
    assert repaid(events) == [(wid, 1, "USDT", 2020, 0, 2020, 970, 0, "auto_repay")]
    assert wallet_view(ex.core, wid)["loans"] == {"USDT": (970, 0)}
    assert ex.core.margin.auto_repay == set()
    assert ex.bal(POOL_ACCOUNT, "USDT") == (POOL - 970, 0)


def test_auto_repay_taker_then_maker_fills_each_repay() -> None:
    ex = margin_market()
    wid = long_position(ex)
    ex.ok(
        {"op": "place", "id": 20, "user": 3, "symbol": SYM, "side": "buy", "price": 100, "qty": 5}
    )
    # takes 5 lots at once (repaid now), rests 15
    events = ex.ok(sell_from_wallet(10, 100, 20))
    assert repaid(events) == [(wid, 1, "USDT", 500, 0, 500, 3500, 0, "auto_repay")]
    assert ex.asks() == [(100, 10, 15)]
    events = ex.ok(
        {"op": "place", "id": 21, "user": 3, "symbol": SYM, "side": "buy", "price": 100, "qty": 7}
    )
    assert repaid(events) == [(wid, 1, "USDT", 700, 0, 700, 2800, 0, "auto_repay")]
    assert ex.core.margin.auto_repay == {10}


def test_auto_repay_filled_buy_repays_a_btc_debt() -> None:
    ex = margin_market()
    into(ex, 1, "USDT", 5000)
    wid = wallet_id(ex, 1)
    ex.ok(borrow(1, "BTC", 400_000))
    ex.ok(
        {"op": "place", "id": 900, "user": 2, "symbol": SYM, "side": "buy", "price": 100, "qty": 40}
    )
    ex.ok(sell_from_wallet(901, 100, 40, auto_repay=False))  # a short: holds 9000 USDT
    buy = {**sell_from_wallet(10, 99, 40), "side": "buy"}
    assert repaid(ex.ok(buy)) == []
    events = ex.ok(
        {"op": "place", "id": 20, "user": 3, "symbol": SYM, "side": "sell", "price": 99, "qty": 15}
    )
    assert repaid(events) == [(wid, 1, "BTC", 150_000, 0, 150_000, 250_000, 0, "auto_repay")]
    assert ex.bal(wid, "BTC") == (0, 0)
    assert ex.bal(wid, "USDT") == (9000 - 99 * 40, 99 * 25)  # the rest still holds its USDT


def test_auto_repay_without_debt_repays_nothing() -> None:
    ex = margin_market()
    into(ex, 1, "BTC", 200_000)
    wid = wallet_id(ex, 1)
    ex.ok(sell_from_wallet(10, 100, 20))
    events = ex.ok(
        {"op": "place", "id": 20, "user": 3, "symbol": SYM, "side": "buy", "price": 100, "qty": 20}
    )
    assert [brief(e)[0] for e in events] == ["accepted", "trade"]
    assert ex.bal(wid, "USDT") == (2000, 0)
    assert ex.core.margin.auto_repay == set()


def test_auto_repay_pays_interest_first_and_only_what_is_owed() -> None:
    ex = margin_market()
    wid = long_position(ex)  # owes 4000 USDT
    ex.ok({"op": "tick"}, ts=HOUR_MS)  # one hour: ceil(4000 * 1000 / 10**9) = 1 interest
    ex.ok(sell_from_wallet(10, 100, 50))
    events = ex.ok(
        {"op": "place", "id": 20, "user": 3, "symbol": SYM, "side": "buy", "price": 100, "qty": 50}
    )
    # 5000 received, 4001 owed: the debt is paid (interest first), the rest stays
    assert repaid(events) == [(wid, 1, "USDT", 4001, 1, 4000, 0, 0, "auto_repay")]
    assert wallet_view(ex.core, wid)["loans"] == {}
    assert ex.bal(wid, "USDT") == (999, 0)


def test_auto_repay_uses_the_proceeds_after_fees_not_the_wallets_other_funds() -> None:
    ex = margin_market()
    ex.ok({"op": "fees", "maker_bps": 10, "taker_bps": 20})
    wid = long_position(ex)  # the buy paid a taker fee: holds 499,000 BTC, owes 4000 USDT
    into(ex, 1, "USDT", 500)  # kept available on purpose
    ex.ok(sell_from_wallet(10, 100, 10))
    events = ex.ok(
        {"op": "place", "id": 20, "user": 3, "symbol": SYM, "side": "buy", "price": 100, "qty": 10}
    )
    # 1000 USDT less the 1 USDT maker fee: 999 repaid; the 500 transferred in stay
    assert repaid(events) == [(wid, 1, "USDT", 999, 0, 999, 3001, 0, "auto_repay")]
    assert ex.bal(wid, "USDT") == (500, 0)


def test_auto_repay_flag_kept_by_amend_and_snapshot_dropped_by_cancel_and_expiry() -> None:
    ex = margin_market()
    wid = long_position(ex)
    ex.ok(sell_from_wallet(10, 101, 30))
    ex.ok(sell_from_wallet(11, 102, 5, tif="GTD", expire_ts=5000))
    ex.ok(sell_from_wallet(12, 103, 5))
    ex.ok(sell_from_wallet(13, 104, 5, auto_repay=False))
    assert ex.core.margin.auto_repay == {10, 11, 12}
    ex.ok({"op": "amend", "id": 10, "user": 1, "symbol": SYM, "price": 101, "qty": 20})
    ex.ok({"op": "cancel", "id": 12, "user": 1, "symbol": SYM})
    assert ex.core.margin.auto_repay == {10, 11}
    ex.ok({"op": "tick"}, ts=5000)  # order 11 expires
    assert ex.core.margin.auto_repay == {10}
    assert ex.core.state()["margin"]["auto_repay"] == [10]

    again = Core.restore(ex.core.snapshot())
    assert again.state_hash() == ex.core.state_hash()
    assert again.margin.auto_repay == {10}
    # both cores repay the same way when the amended order fills as a maker
    cmd = C.Place(
        seq=ex.seq + 1, ts=ex.ts, id=20, user=3, symbol=SYM, side="buy", price=101, qty=20
    )
    events = ex.ok(cmd)
    assert again.apply(cmd) == events
    assert again.state_hash() == ex.core.state_hash()
    assert repaid(events) == [(wid, 1, "USDT", 2020, 0, 2020, 1980, 0, "auto_repay")]
    assert ex.core.margin.auto_repay == set()
    assert "auto_repay" not in ex.core.state()["margin"]  # unused: absent, as before


def test_auto_repay_flag_dropped_by_liquidation() -> None:
    ex = margin_market()
    wid = long_position(ex)
    ex.ok(sell_from_wallet(10, 120, 10))
    mark(ex, 90)
    events = [brief(e) for e in mark(ex, 88)]
    assert ("cancelled", 10, 10, 100_000, "liquidation") in events
    assert ex.core.margin.auto_repay == set()
    assert wallet_view(ex.core, wid)["loans"] == {}


def test_auto_repay_stop_repays_when_it_fires_and_fills() -> None:
    ex = margin_market()
    wid = long_position(ex)  # owes 4000 USDT
    stop = sell_from_wallet(10, 95, 10, type="stop_limit", stop_price=95)
    assert repaid(ex.ok(stop)) == []
    assert ex.core.margin.auto_repay == {10}  # an untriggered stop keeps its flag
    ex.ok(
        {"op": "place", "id": 20, "user": 3, "symbol": SYM, "side": "buy", "price": 95, "qty": 20}
    )
    # user 4's sale at 95 fires the stop, which sells 10 lots at 95 to user 3
    events = ex.ok(
        {"op": "place", "id": 21, "user": 4, "symbol": SYM, "side": "sell", "price": 95, "qty": 1}
    )
    assert ("triggered", 10, 95) in [brief(e) for e in events]
    assert repaid(events) == [(wid, 1, "USDT", 950, 0, 950, 3050, 0, "auto_repay")]
    assert ex.core.margin.auto_repay == set()
