"""The standard margin market for the margin unit tests, on top of ``helpers.standard``.

BTC-USDT as in ``helpers`` (a lot of 10,000 BTC minor units at ``p`` ticks costs ``p``
USDT minor units). Margin terms: isolated BTC-USDT at 5x (initial level 12500, margin
call 11500, liquidation 11000, liquidation fee 1 %, band 5 %); cross at 3x (initial
15000, call 13000, liquidation 11000, no fee). USDT borrows at 1000 ppb an hour, BTC at
2000; each wallet may owe up to 10**9 of either. The exchange (user 9) funds the pool
with 5*10**7 of each and the insurance fund with 10**6 USDT. The mark starts at 100.

A BTC minor unit at mark ``m`` is worth ``m / 10000`` USDT minor units, so a wallet
holding ``b`` BTC and ``q`` USDT and owing ``lq`` USDT has level ``(b*m/10000 + q) / lq``.
"""

from __future__ import annotations

from typing import Any

from tests.unit.helpers import SYM, Exchange, standard

EXCHANGE = 9
POOL = 5 * 10**7


def margin_market(**symbol: Any) -> Exchange:
    ex = standard()
    for asset in ("BTC", "USDT"):
        ex.ok({"op": "deposit", "user": EXCHANGE, "asset": asset, "amount": 10**8})
    ex.ok({"op": "margin_asset", "asset": "USDT", "hourly_rate": 1000, "borrow_limit": 10**9})
    ex.ok({"op": "margin_asset", "asset": "BTC", "hourly_rate": 2000, "borrow_limit": 10**9})
    ex.ok(
        {
            "op": "margin_symbol",
            "symbol": SYM,
            "max_leverage": 5,
            "margin_call_level": 11_500,
            "liquidation_level": 11_000,
            "liquidation_fee_bps": 100,
            "liquidation_band_bps": 500,
            **symbol,
        }
    )
    ex.ok(
        {
            "op": "margin_cross",
            "max_leverage": 3,
            "margin_call_level": 13_000,
            "liquidation_level": 11_000,
        }
    )
    for asset in ("BTC", "USDT"):
        ex.ok({"op": "pool_fund", "user": EXCHANGE, "asset": asset, "amount": POOL})
    ex.ok({"op": "insurance_fund", "user": EXCHANGE, "asset": "USDT", "amount": 10**6})
    mark(ex, 100)
    return ex


def mark(ex: Exchange, price: int, symbol: str = SYM) -> list[Any]:
    """A mark update to ``price``: three fresh feeds at it, so the book's mid (one more
    input of the median) cannot move it. Moves over 10 % take several updates."""
    feed = [price, ex.ts]
    return ex.ok({"op": "mark", "symbol": symbol, "feeds": [feed, feed, feed]})


def into(ex: Exchange, user: int, asset: str, amount: int, wallet: str = "isolated") -> None:
    cmd: dict[str, Any] = {
        "op": "margin_transfer",
        "user": user,
        "asset": asset,
        "amount": amount,
        "direction": "in",
        "wallet": wallet,
    }
    if wallet == "isolated":
        cmd["symbol"] = SYM
    ex.ok(cmd)


def borrow(user: int, asset: str, amount: int, wallet: str = "isolated") -> dict[str, Any]:
    cmd: dict[str, Any] = {
        "op": "borrow",
        "user": user,
        "asset": asset,
        "amount": amount,
        "wallet": wallet,
    }
    if wallet == "isolated":
        cmd["symbol"] = SYM
    return cmd


def repay(user: int, asset: str, amount: int, wallet: str = "isolated") -> dict[str, Any]:
    return {**borrow(user, asset, amount, wallet), "op": "repay"}


def out(user: int, asset: str, amount: int, wallet: str = "isolated") -> dict[str, Any]:
    cmd = {**borrow(user, asset, amount, wallet), "op": "margin_transfer", "direction": "out"}
    return cmd


def wallet_id(ex: Exchange, user: int, key: str = SYM) -> int:
    return ex.core.margin.by_owner[(user, key)]


def long_position(ex: Exchange, user: int = 1) -> int:
    """User ``user`` puts 1000 USDT into the isolated wallet, borrows 4000 (level 1.25,
    the initial level at 5x) and buys 50 lots at 100 from user 2's resting sell.
    The wallet then holds 500,000 BTC minor units and owes 4000 USDT: liquidation
    price 88, margin-call price 92."""
    into(ex, user, "USDT", 1000)
    ex.ok(borrow(user, "USDT", 4000))
    ex.ok(
        {
            "op": "place",
            "id": 900,
            "user": 2,
            "symbol": SYM,
            "side": "sell",
            "price": 100,
            "qty": 50,
        }
    )
    ex.ok(
        {
            "op": "place",
            "id": 901,
            "user": user,
            "symbol": SYM,
            "side": "buy",
            "price": 100,
            "qty": 50,
            "wallet": "isolated",
        }
    )
    return wallet_id(ex, user)
