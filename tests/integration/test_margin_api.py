"""Margin through the REST API, the WebSocket margin channel and the mail, on the
embedded exchange (SQLite, journaled core, the demo's margin set-up: BTC-USDT at 10x,
initial level 1.1112, margin call 1.08, liquidation 1.05, fee 0.5 %, band 5 %; USDT
borrows at 11416 ppb an hour; first mark 65,000).

The worked example used throughout: 1,000 USDT into the isolated BTC-USDT wallet,
8,000 USDT borrowed, 0.1 BTC bought at 65,000 (taker fee 0.2 % in BTC): the wallet
holds 0.0998 BTC and 2,500 USDT and owes 8,000 USDT, level (6,487 + 2,500) / 8,000 =
1.1233, liquidation price (8,400 - 2,500) / 0.0998 = 59,118.23.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_rest_api import PASSWORD, User, order
from tests.support.mail import verify_email
from tradewind.runtime.admin_cli import create_user
from tradewind.runtime.bootstrap import EmbeddedExchange, build_embedded
from tradewind.runtime.config import load_settings
from tradewind.runtime.margin import feeder_for
from tradewind.services.accounts import sign_request
from tradewind.services.margin_feed import FeedPrice
from tradewind.services.margin_state import CoreMarginState

ISO = {"wallet": "isolated", "symbol": "BTC-USDT"}
HOUR_MS = 3_600_000


class ShiftedClock:
    """The system clock plus an offset the test moves forward (interest is hourly)."""

    def __init__(self) -> None:
        self.offset = 0

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.offset


class FakeFeed:
    """An external index price the test sets."""

    name = "fake"

    def __init__(self, clock: ShiftedClock) -> None:
        self.clock = clock
        self.value: Decimal | None = None

    async def price(self, symbol: str) -> FeedPrice | None:
        return None if self.value is None else FeedPrice(self.value, self.clock.now_ms())


@dataclass
class Env:
    client: TestClient
    exchange: EmbeddedExchange
    clock: ShiftedClock
    n: int = 0

    def user(self, permissions: tuple[str, ...] = ("read", "trade"), **funds: str) -> User:
        self.n += 1
        email = f"margin{self.n}-{time.monotonic_ns()}@example.com"
        c = self.client
        r = c.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        user_id = r.json()["user_id"]
        verify_email(c, email)
        r = c.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        user = User(c, user_id, r.json()["token"])
        r = c.post(
            "/api/v1/api-keys",
            json={"label": "t", "permissions": list(permissions)},
            headers=user.bearer,
        )
        assert r.status_code == 201, r.text
        user.key_id, user.secret = r.json()["key_id"], r.json()["secret"]
        for asset, amount in funds.items():
            r = c.post(
                "/api/v1/demo/faucet", json={"asset": asset, "amount": amount}, headers=user.bearer
            )
            assert r.status_code == 200, r.text
        user.email = email  # type: ignore[attr-defined]
        return user

    def settle(self) -> None:
        """Wait until the projections show every command so far (commands sent here,
        not by a user, are not in any user's read-your-writes mark)."""
        jcore = self.exchange.jcore
        assert jcore is not None
        self.call(self.exchange.margin.projectors.wait_for, jcore.last_seq)
        self.call(self.exchange.projectors.wait_for, jcore.last_seq)

    def call(self, fn: Any, *args: Any) -> Any:
        portal = self.client.portal
        assert portal is not None
        return portal.call(fn, *args)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    clock = ShiftedClock()
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": tmp_path,
            "demo": True,
            "demo_bot": False,
            # the background feeder runs once at start; the tests drive marks themselves
            "margin": {"mark_interval_ms": 3_600_000},
        },
    )
    exchange = build_embedded(settings, clock=clock)
    with TestClient(exchange.app) as client:
        yield Env(client, exchange, clock)


def post(user: User, path: str, body: dict[str, Any]) -> Any:
    return user.client.post(path, json=body, headers=user.bearer)


def get(user: User, path: str, **params: Any) -> Any:
    r = user.client.get(path, params=params, headers=user.bearer)
    assert r.status_code == 200, r.text
    return r.json()


def wallet(user: User) -> dict[str, Any]:
    wallets = get(user, "/api/v1/margin/account")["wallets"]
    return next(w for w in wallets if w["symbol"] == "BTC-USDT")


def next_of(ws: Any, kind: str) -> dict[str, Any]:
    """The next ``margin`` message of type ``kind`` (level updates may come between)."""
    for _ in range(20):
        msg = ws.receive_json()
        assert msg["channel"] == "margin", msg
        if msg["data"]["type"] == kind:
            return dict(msg["data"])
        assert msg["data"]["type"] == "level", msg
    raise AssertionError(f"no {kind} message")


def open_long(env: Env) -> User:
    """The worked example's wallet (see the module docstring)."""
    seller = env.user(BTC="1")
    trader = env.user(USDT="5000")
    r = post(
        trader,
        "/api/v1/margin/transfer",
        {"asset": "USDT", "amount": "1000", "direction": "in", **ISO},
    )
    assert r.status_code == 200, r.text
    r = post(trader, "/api/v1/margin/borrow", {"asset": "USDT", "amount": "8000", **ISO})
    assert r.status_code == 200, r.text
    r = post(seller, "/api/v1/orders", order("BTC-USDT", "sell", "65000", "0.1"))
    assert r.status_code == 201, r.text
    r = post(trader, "/api/v1/orders", order("BTC-USDT", "buy", "65000", "0.1", wallet="isolated"))
    assert r.status_code == 201 and r.json()["status"] == "filled", r.text
    return trader


# -- configuration and account ------------------------------------------------------------


def test_config_is_public_and_a_new_user_has_no_wallet(env: Env) -> None:
    r = env.client.get("/api/v1/margin/config")
    assert r.status_code == 200
    config = r.json()
    btc = next(s for s in config["symbols"] if s["symbol"] == "BTC-USDT")
    assert btc["max_leverage"] == 10 and btc["initial_level"] == "1.1112"
    assert btc["margin_call_level"] == "1.0800" and btc["liquidation_level"] == "1.0500"
    assert btc["mark_price"] == "65000.00"
    usdt = next(a for a in config["assets"] if a["asset"] == "USDT")
    assert usdt["hourly_rate"] == "0.000011416" and usdt["pool_available"] == "50000000.000000"
    user = env.user()
    assert get(user, "/api/v1/margin/account")["wallets"] == []
    assert env.client.get("/api/v1/margin/account").status_code == 401


def test_transfer_borrow_repay_with_precise_refusals(env: Env) -> None:
    user = env.user(USDT="3000")
    path = "/api/v1/margin"
    r = post(user, f"{path}/transfer", {"asset": "USDT", "amount": "1", "direction": "out", **ISO})
    assert (r.status_code, r.json()["code"]) == (404, "no_margin_wallet")
    r = post(
        user, f"{path}/transfer", {"asset": "USDT", "amount": "1000", "direction": "in", **ISO}
    )
    assert r.status_code == 200, r.text
    w = r.json()["wallet"]
    assert w["balances"] == [{"asset": "USDT", "available": "1000.000000", "locked": "0.000000"}]
    assert w["margin_level"] is None and w["liabilities"] == []
    assert get(user, "/api/v1/balances") == [
        {"asset": "USDT", "available": "2000.000000", "locked": "0.000000"}
    ]

    # 10x at most: 1,000 of collateral carries 9,000 of debt only below the initial level
    r = post(user, f"{path}/borrow", {"asset": "USDT", "amount": "9000", **ISO})
    assert (r.status_code, r.json()["code"]) == (422, "below_initial_margin")
    # the API speaks decimals: no level in 1/10000 nor amount in minor units in the text
    assert "initial level" in r.json()["message"] and "11112" not in r.json()["message"]
    r = post(user, f"{path}/borrow", {"asset": "USDT", "amount": "1000001", **ISO})
    assert (r.status_code, r.json()["code"]) == (422, "borrow_limit_exceeded")
    assert not any(ch.isdigit() for ch in r.json()["message"]), r.json()["message"]
    assert wallet(user)["liabilities"] == []  # refused: nothing changed

    most = get(user, f"{path}/max-borrowable", asset="USDT", **ISO)["amount"]
    # floor((10000 * 1000 - 0) / (11112 - 10000)) of a wallet without debt
    assert most == "8992.805755"
    over = str(Decimal(most) + Decimal("0.000001"))
    r = post(user, f"{path}/borrow", {"asset": "USDT", "amount": over, **ISO})
    assert (r.status_code, r.json()["code"]) == (422, "below_initial_margin")
    r = post(user, f"{path}/borrow", {"asset": "USDT", "amount": "8000", **ISO})
    assert r.status_code == 200, r.text
    w = r.json()["wallet"]
    assert w["margin_level"] == "1.1250"
    assert w["liabilities"] == [
        {
            "asset": "USDT",
            "principal": "8000.000000",
            "interest": "0.000000",
            "total": "8000.000000",
        }
    ]
    # a transfer out may not drop the level below 1.1112: (9000 - x) / 8000 >= 1.1112
    most_out = get(user, f"{path}/max-transferable", asset="USDT", **ISO)["amount"]
    assert most_out == "110.400000"
    over = str(Decimal(most_out) + Decimal("0.000001"))
    r = post(user, f"{path}/transfer", {"asset": "USDT", "amount": over, "direction": "out", **ISO})
    assert (r.status_code, r.json()["code"]) == (422, "below_initial_margin")
    r = post(
        user, f"{path}/transfer", {"asset": "USDT", "amount": most_out, "direction": "out", **ISO}
    )
    assert r.status_code == 200 and r.json()["wallet"]["margin_level"] == "1.1112"

    r = post(user, f"{path}/repay", {"asset": "USDT", "amount": "8000.000001", **ISO})
    assert (r.status_code, r.json()["code"]) == (422, "repay_exceeds_debt")
    r = post(user, f"{path}/repay", {"asset": "USDT", "amount": "3000", **ISO})
    assert r.status_code == 200, r.text
    assert r.json()["wallet"]["liabilities"][0]["total"] == "5000.000000"

    loans = get(user, f"{path}/loans")["items"]
    assert [(x["type"], x["amount"]) for x in loans] == [
        ("repay", "3000.000000"),
        ("borrow", "8000.000000"),
    ]
    assert loans[0]["reason"] == "user" and loans[0]["principal"] == "5000.000000"
    assert loans[0]["wallet"] == "isolated" and loans[0]["symbol"] == "BTC-USDT"
    page = get(user, f"{path}/transfers", limit=1)
    assert page["items"][0]["direction"] == "out" and page["next_cursor"] is not None
    rest = get(user, f"{path}/transfers", limit=1, cursor=page["next_cursor"])
    assert rest["items"][0]["direction"] == "in" and rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"asset": "USDT", "amount": "-1", **ISO}, 400, "invalid_amount"),
        ({"asset": "USDT", "amount": "0.0000001", **ISO}, 400, "too_many_decimals"),
        ({"asset": "USDT", "amount": 5, **ISO}, 422, "invalid_request"),
        ({"asset": "DOGE", "amount": "1", **ISO}, 400, "unknown_asset"),
        ({"asset": "USDT", "amount": "1", "wallet": "isolated"}, 400, "invalid_wallet"),
        (
            {"asset": "USDT", "amount": "1", "wallet": "cross", "symbol": "BTC-USDT"},
            400,
            "invalid_wallet",
        ),
        (
            {"asset": "USDT", "amount": "1", "wallet": "isolated", "symbol": "X-Y"},
            400,
            "unknown_symbol",
        ),
        ({"asset": "USDT", "amount": "1", "leverage": 20, **ISO}, 422, "unknown_field"),
    ],
)
def test_bad_loan_bodies_are_refused_before_the_core(
    env: Env, body: dict[str, Any], status: int, code: str
) -> None:
    user = env.user()
    seq = env.exchange.jcore.last_seq  # type: ignore[union-attr]
    r = post(user, "/api/v1/margin/borrow", body)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert env.exchange.jcore.last_seq == seq  # type: ignore[union-attr]


def test_permissions(env: Env) -> None:
    reader = env.user(permissions=("read",))
    body = {"asset": "USDT", "amount": "1", **ISO}
    r = reader.signed("POST", "/api/v1/margin/borrow", body)
    assert r.status_code == 403
    assert reader.signed("GET", "/api/v1/margin/account").status_code == 200
    assert env.client.post("/api/v1/margin/borrow", json=body).status_code == 401


# -- orders, interest, margin call, liquidation ----------------------------------------------


def test_margin_order_interest_call_and_liquidation(env: Env) -> None:
    trader = open_long(env)
    w = wallet(trader)
    assert w["balances"] == [
        {"asset": "BTC", "available": "0.09980000", "locked": "0.00000000"},
        {"asset": "USDT", "available": "2500.000000", "locked": "0.000000"},
    ]
    assert w["assets_value"] == "8987.000000" and w["margin_level"] == "1.1233"
    assert w["liquidation_price"] == {
        "symbol": "BTC-USDT",
        "when_mark": "at_or_below",
        "price": "59118.23",
    }
    orders = get(trader, "/api/v1/margin/orders", **ISO)["items"]
    assert [(o["side"], o["status"], o["wallet"]) for o in orders] == [("buy", "filled", "margin")]
    assert orders[0]["margin_wallet"] == "isolated"  # which wallet, for the web's lists
    # the user's own lists hold the wallet's orders and fills too, marked
    assert get(trader, "/api/v1/orders")["items"] == orders
    fills = get(trader, "/api/v1/margin/fills", **ISO)["items"]
    assert fills[0]["quantity"] == "0.1000" and fills[0]["fee"] == "0.00020000"
    assert get(trader, "/api/v1/fills")["items"] == fills

    ts = env.clock.now_ms()
    signature = sign_request(trader.secret, ts, "GET", "/ws", b"")
    with env.client.websocket_connect("/ws") as ws:
        ws.send_json({"op": "auth", "key": trader.key_id, "timestamp": ts, "signature": signature})
        assert ws.receive_json()["op"] == "authenticated"
        ws.send_json({"op": "subscribe", "channel": "margin", "id": 1})
        assert ws.receive_json()["op"] == "subscribed"
        channel = env.exchange.margin.channel
        assert channel is not None
        channel.flush()  # (the runtime's task also does, every second)
        level = next_of(ws, "level")
        assert level["wallets"][0]["margin_level"] == "1.1233"

        # an hour later the feeder's tick charges interest: ceil(8e9 * 11416 / 1e9)
        env.clock.offset += HOUR_MS
        state = env.exchange.margin.state
        assert isinstance(state, CoreMarginState)
        feed = FakeFeed(env.clock)
        feeder = feeder_for(
            env.exchange.settings,
            env.exchange.bus,
            state,
            env.exchange.catalog,
            env.clock,
            feeds={"BTC-USDT": [feed]},
        )
        env.call(feeder.round)
        assert feeder.ticks_sent == 1
        env.settle()
        interest = get(trader, "/api/v1/margin/interest")["items"]
        assert [(i["asset"], i["amount"], i["hours"]) for i in interest] == [
            ("USDT", "0.091328", 1)
        ]
        assert wallet(trader)["liabilities"][0]["interest"] == "0.091328"

        # a bid to liquidate into, then the index falls: 60,000 is a margin call
        bidder = env.user(USDT="20000")
        r = post(bidder, "/api/v1/orders", order("BTC-USDT", "buy", "58000", "0.2"))
        assert r.status_code == 201
        feed.value = Decimal("60000")
        env.call(feeder.round)
        call = next_of(ws, "margin_call")
        assert call["type"] == "margin_call" and call["symbol"] == "BTC-USDT"
        assert call["margin_level"] == "1.0609" and call["liquidation_level"] == "1.0500"
        assert wallet(trader)["margin_call"] is True

        # ...and 58,500 (within the 10 % move limit) is below the liquidation level
        feed.value = Decimal("58500")
        env.call(feeder.round)
        steps = [next_of(ws, "liquidation_started")]
        steps += [next_of(ws, "liquidation_fill"), next_of(ws, "liquidation_finished")]
        assert [s["type"] for s in steps] == [
            "liquidation_started",
            "liquidation_fill",
            "liquidation_finished",
        ]
        assert steps[1]["side"] == "sell" and steps[1]["filled"] == "0.0998"
        assert steps[1]["limit"] == "55575.00"  # the mark less the 5 % band
        finished = steps[2]
        assert finished["pool_loss"] == {} and finished["insurance_paid"] == {}
        assert finished["fee_asset"] == "USDT" and Decimal(finished["fee"]) > 0
        channel.flush()
        after = next_of(ws, "level")["wallets"][0]
        assert after["margin_level"] is None and after["liabilities_value"] == "0.000000"

    env.settle()
    w = wallet(trader)
    assert w["liabilities"] == [] and w["margin_call"] is False
    left = Decimal(finished["left"]["USDT"])
    # 998 lots sold at 58,000 less 0.2 %, plus 2,500, less the debt and the fee
    sold = Decimal("0.0998") * 58000 * Decimal("0.998")
    debt = Decimal("8000.091328")
    assert left == sold + 2500 - debt - Decimal(finished["fee"])
    assert w["balances"] == [{"asset": "USDT", "available": f"{left:.6f}", "locked": "0.000000"}]

    steps = get(trader, "/api/v1/margin/liquidations")["items"]
    assert [s["type"] for s in steps] == [
        "liquidation_finished",
        "liquidation_fill",
        "liquidation_started",
        "margin_call",
    ]
    assert steps[2]["margin_level"] == "1.0422" and steps[2]["liquidation_level"] == "1.0500"
    assert steps[2]["liabilities_value"] == "8000.091328"
    assert steps[3]["margin_level"] == "1.0609"
    loans = get(trader, "/api/v1/margin/loans")["items"]
    assert loans[0]["type"] == "repay" and loans[0]["reason"] == "liquidation"
    assert loans[0]["amount"] == "8000.091328" and loans[0]["interest_paid"] == "0.091328"

    env.call(env.exchange.margin.mailer.run_once)
    mails = get(trader, "/dev/mail/messages", to=trader.email)  # type: ignore[attr-defined]
    kinds = [m for m in mails if m["kind"] == "margin_notice"]
    assert [m["subject"] for m in kinds] == ["Tradewind: liquidation", "Tradewind: margin call"]
    assert kinds[0]["body"].startswith("Anti-phishing code:")
    assert "isolated margin wallet BTC-USDT was liquidated" in kinds[0]["body"]
    env.call(env.exchange.margin.mailer.run_once)  # mailed once only
    again = get(trader, "/dev/mail/messages", to=trader.email)  # type: ignore[attr-defined]
    assert len([m for m in again if m["kind"] == "margin_notice"]) == 2


def test_a_margin_order_is_cancelled_through_the_margin_route(env: Env) -> None:
    user = env.user(USDT="2000")
    post(
        user,
        "/api/v1/margin/transfer",
        {"asset": "USDT", "amount": "1000", "direction": "in", **ISO},
    )
    r = post(
        user,
        "/api/v1/orders",
        order("BTC-USDT", "buy", "50000", "0.1", auto_borrow=True, wallet="isolated"),
    )
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    w = wallet(user)
    assert w["liabilities"][0]["principal"] == "4000.000000"  # 5,000 held, 1,000 owned
    assert {b["asset"]: b["locked"] for b in w["balances"]}["USDT"] == "5000.000000"
    # the user's own order routes know it too (the core takes the owner's amend/cancel)
    r = user.client.get(f"/api/v1/orders/{oid}", headers=user.bearer)
    assert r.status_code == 200 and r.json()["status"] == "new", r.text
    r = user.client.patch(f"/api/v1/orders/{oid}", json={"price": "49000"}, headers=user.bearer)
    assert r.status_code == 200 and r.json()["price"] == "49000.00", r.text
    other = env.user()
    r = other.client.get(f"/api/v1/orders/{oid}", headers=other.bearer)
    assert r.status_code == 404  # nobody else's
    r = user.client.delete(f"/api/v1/margin/orders/{oid}", headers=user.bearer)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    r = user.client.delete(f"/api/v1/margin/orders/{oid}", headers=user.bearer)
    assert (r.status_code, r.json()["code"]) == (409, "order_not_open")
    r = user.client.delete("/api/v1/margin/orders/999999", headers=user.bearer)
    assert (r.status_code, r.json()["code"]) == (404, "unknown_order")
    r = post(user, "/api/v1/orders", order("BTC-USDT", "buy", "40000", "0.01", wallet="isolated"))
    assert r.status_code == 201, r.text
    r = user.signed("DELETE", f"/api/v1/orders/{r.json()['id']}")  # the fast lane's cancel
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    # over 10x with auto-borrow: the borrow's own check refuses the order
    r = post(
        user,
        "/api/v1/orders",
        order("BTC-USDT", "buy", "65000", "1", auto_borrow=True, wallet="isolated"),
    )
    assert (r.status_code, r.json()["code"]) == (422, "below_initial_margin")


def test_back_office_sets_terms_and_refuses_leverage_above_10x(env: Env) -> None:
    admin = env.user()
    email = admin.email  # type: ignore[attr-defined]
    asyncio.run(create_user(env.exchange.settings, email, None, "admin"))
    plain = env.user()
    path = "/api/v1/admin/margin"
    terms = {
        "symbol": "ETH-USDT",
        "max_leverage": 5,
        "margin_call_level": "1.15",
        "liquidation_level": "1.1",
    }
    r = post(plain, f"{path}/symbols", terms)
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    jcore = env.exchange.jcore
    assert jcore is not None
    seq = jcore.last_seq
    r = post(admin, f"{path}/symbols", {**terms, "max_leverage": 11})
    assert (r.status_code, r.json()["code"]) == (422, "leverage_too_high")
    r = post(admin, f"{path}/symbols", {**terms, "margin_call_level": "1.15001"})
    assert (r.status_code, r.json()["code"]) == (400, "too_many_decimals")
    assert jcore.last_seq == seq  # refused at the edge
    r = post(admin, f"{path}/symbols", {**terms, "liquidation_level": "1.2"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_margin_terms")  # the core's

    r = post(admin, f"{path}/symbols", terms)
    assert r.status_code == 200, r.text
    config = get(admin, "/api/v1/margin/config")
    eth = next(s for s in config["symbols"] if s["symbol"] == "ETH-USDT")
    assert (eth["max_leverage"], eth["initial_level"]) == (5, "1.2500")
    assert eth["liquidation_level"] == "1.1000"
    body = {"asset": "ETH", "hourly_rate": "0.00001", "borrow_limit": "50"}
    r = post(admin, f"{path}/assets", body)
    assert r.status_code == 200, r.text
    config = get(admin, "/api/v1/margin/config")
    eth_terms = next(a for a in config["assets"] if a["asset"] == "ETH")
    assert (eth_terms["hourly_rate"], eth_terms["borrow_limit"]) == ("0.000010000", "50.00000000")
    cross = {"max_leverage": 12, "margin_call_level": "1.2", "liquidation_level": "1.1"}
    r = post(admin, f"{path}/cross", cross)
    assert (r.status_code, r.json()["code"]) == (422, "leverage_too_high")


def test_order_lists_merge_spot_and_wallet_orders_newest_first(env: Env) -> None:
    user = env.user(USDT="3000")
    body = {"asset": "USDT", "amount": "1000", "direction": "in", **ISO}
    assert post(user, "/api/v1/margin/transfer", body).status_code == 200
    ids = []
    for i, wallet in enumerate(["spot", "isolated", "spot", "isolated", "spot"]):
        extra = {} if wallet == "spot" else {"wallet": "isolated"}
        r = post(user, "/api/v1/orders", order("BTC-USDT", "buy", str(40000 + i), "0.001", **extra))
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    first = get(user, "/api/v1/orders", limit=2)
    second = get(user, "/api/v1/orders", limit=2, cursor=first["next_cursor"])
    third = get(user, "/api/v1/orders", limit=2, cursor=second["next_cursor"])
    got = [o["id"] for page in (first, second, third) for o in page["items"]]
    assert got == ids[::-1] and third["next_cursor"] is None
    marked = [o["id"] for page in (first, second, third) for o in page["items"] if "wallet" in o]
    assert marked == [ids[3], ids[1]]
    assert get(user, "/api/v1/orders", status="open")["items"][0]["id"] == ids[4]
    r = user.client.delete("/api/v1/orders", headers=user.bearer)
    assert sorted(r.json()["cancelled"]) == sorted(ids)
