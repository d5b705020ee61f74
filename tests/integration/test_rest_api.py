"""The REST API (DESIGN §6) against the embedded exchange in a temporary data directory.

Every refused request is checked for its precise status and code and for changing
nothing: edge refusals journal no command at all (the core's seq does not move), core
rejections leave the state hash as it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.mail import verify_email
from tradewind.runtime.bootstrap import EmbeddedExchange, build_embedded
from tradewind.runtime.config import load_settings
from tradewind.services.accounts import sign_request

PASSWORD = "correct horse battery staple"


def make_exchange(data_dir: Path, **overrides: object) -> EmbeddedExchange:
    settings = load_settings(
        None,
        environ={},
        overrides={"data_dir": data_dir, "demo": True, "demo_bot": False, **overrides},
    )
    return build_embedded(settings)


@dataclass
class User:
    client: TestClient
    user_id: int
    token: str
    key_id: str = ""
    secret: str = ""

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def signed(
        self,
        method: str,
        target: str,
        body: Any = None,
        *,
        timestamp: int | None = None,
        key_id: str | None = None,
        secret: str | None = None,
        raw: bytes | None = None,
    ) -> Any:
        """Send a request signed with the user's API key (``target`` = path + query)."""
        content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        ts = int(time.time() * 1000) if timestamp is None else timestamp
        signature = sign_request(secret or self.secret, ts, method, target, content)
        headers = {
            "TW-KEY": key_id or self.key_id,
            "TW-TIMESTAMP": str(ts),
            "TW-SIGNATURE": signature,
        }
        if content:
            headers["Content-Type"] = "application/json"
        return self.client.request(method, target, content=content, headers=headers)


class Api:
    def __init__(self, client: TestClient, exchange: EmbeddedExchange) -> None:
        self.client = client
        self.exchange = exchange
        self._n = 0

    @property
    def seq(self) -> int:
        jcore = self.exchange.jcore
        assert jcore is not None
        return jcore.last_seq

    @property
    def state_hash(self) -> str:
        jcore = self.exchange.jcore
        assert jcore is not None
        return jcore.core.state_hash()

    def user(self, permissions: tuple[str, ...] = ("read", "trade"), **funds: str) -> User:
        self._n += 1
        email = f"user{self._n}-{time.monotonic_ns()}@example.com"
        r = self.client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        user_id = r.json()["user_id"]
        verify_email(self.client, email)
        r = self.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        user = User(self.client, user_id, r.json()["token"])
        r = self.client.post(
            "/api/v1/api-keys",
            json={"label": "test", "permissions": list(permissions)},
            headers=user.bearer,
        )
        assert r.status_code == 201, r.text
        user.key_id, user.secret = r.json()["key_id"], r.json()["secret"]
        for asset, amount in funds.items():
            r = self.client.post(
                "/api/v1/demo/faucet", json={"asset": asset, "amount": amount}, headers=user.bearer
            )
            assert r.status_code == 200, r.text
        return user


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    exchange = make_exchange(tmp_path_factory.mktemp("rest"))
    with TestClient(exchange.app) as client:
        yield Api(client, exchange)


def balances(user: User) -> dict[str, tuple[str, str]]:
    r = user.client.get("/api/v1/balances", headers=user.bearer)
    assert r.status_code == 200, r.text
    return {b["asset"]: (b["available"], b["locked"]) for b in r.json()}


def order(symbol: str, side: str, price: str, quantity: str, **extra: Any) -> dict[str, Any]:
    return {"symbol": symbol, "side": side, "price": price, "quantity": quantity, **extra}


# -- accounts -------------------------------------------------------------------------


def test_register_login_and_api_keys(api: Api) -> None:
    c = api.client
    email = f"alice-{time.monotonic_ns()}@Example.com"
    r = c.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201 and r.json()["email_verification"] == "sent"
    r = c.post("/api/v1/auth/register", json={"email": email.lower(), "password": PASSWORD})
    assert (r.status_code, r.json()["code"]) == (409, "email_taken")
    r = c.post("/api/v1/auth/register", json={"email": "nope", "password": PASSWORD})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_email")
    r = c.post("/api/v1/auth/register", json={"email": "b@example.com", "password": "short"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_password")

    r = c.post("/api/v1/auth/login", json={"email": email, "password": "wrong password!"})
    assert (r.status_code, r.json()["code"]) == (401, "invalid_credentials")
    r = c.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200
    token = r.json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}

    # unverified: may read, may not create keys or trade
    r = c.post("/api/v1/api-keys", json={"label": "k", "permissions": ["read"]}, headers=bearer)
    assert (r.status_code, r.json()["code"]) == (403, "email_not_verified")
    r = c.post("/api/v1/demo/faucet", json={"asset": "USDT", "amount": "1"}, headers=bearer)
    assert (r.status_code, r.json()["code"]) == (403, "email_not_verified")
    assert c.get("/api/v1/balances", headers=bearer).status_code == 200
    verify_email(c, email)

    r = c.post("/api/v1/api-keys", json={"label": "k", "permissions": ["read"]}, headers=bearer)
    assert r.status_code == 201
    key = r.json()
    assert len(key["secret"]) == 64 and key["permissions"] == ["read"]
    listed = c.get("/api/v1/api-keys", headers=bearer).json()
    assert [k["key_id"] for k in listed] == [key["key_id"]] and "secret" not in listed[0]
    r = c.post("/api/v1/api-keys", json={"label": "k", "permissions": ["admin"]}, headers=bearer)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    r = c.post("/api/v1/api-keys", json={"label": "k", "permissions": ["read"]})
    assert (r.status_code, r.json()["code"]) == (401, "auth_required")
    r = c.get("/api/v1/balances", headers={"Authorization": "Bearer not-a-token"})
    assert (r.status_code, r.json()["code"]) == (401, "invalid_session")


def test_api_keys_are_managed_with_a_session_only(api: Api) -> None:
    user = api.user()
    r = user.signed("POST", "/api/v1/api-keys", {"label": "x", "permissions": ["read"]})
    assert (r.status_code, r.json()["code"]) == (403, "session_required")


# -- markets and faucet ---------------------------------------------------------------


def test_markets_list_with_filters_and_status(api: Api) -> None:
    markets = api.client.get("/api/v1/markets").json()
    assert [m["symbol"] for m in markets] == ["BTC-USDT", "ETH-BTC", "ETH-USDT"]
    btc = markets[0]
    assert btc["tick_size"] == "0.01" and btc["lot_size"] == "0.0001"
    assert btc["status"] == "trading" and btc["min_notional"] == "1.000000"
    assert [m["symbol"] for m in api.client.get("/api/v1/markets?quote=BTC").json()] == ["ETH-BTC"]
    assert api.client.get("/api/v1/markets?status=halted").json() == []
    r = api.client.get("/api/v1/markets/DOGE-USDT/book")
    assert (r.status_code, r.json()["code"]) == (404, "unknown_symbol")


def test_a_query_parameter_given_twice_is_refused(api: Api) -> None:
    # no API parameter is a list: silently taking one of two values would hide a bug
    r = api.client.get("/api/v1/markets?quote=BTC&quote=USDT")
    assert (r.status_code, r.json()["code"]) == (400, "duplicate_parameter")
    assert "'quote'" in r.json()["message"]
    assert api.client.get("/api/v1/markets?quote=BTC&status=trading").status_code == 200


def test_a_query_parameter_the_endpoint_does_not_take_is_refused(api: Api) -> None:
    # ?limit= on the book (which takes depth) would otherwise answer 100 levels
    r = api.client.get("/api/v1/markets/BTC-USDT/book?limit=3")
    assert (r.status_code, r.json()["code"]) == (400, "unknown_parameter")
    assert "'limit'" in r.json()["message"] and "takes depth" in r.json()["message"]
    assert api.client.get("/api/v1/markets/BTC-USDT/book?depth=3").status_code == 200
    r = api.client.get("/api/v1/markets?quote=BTC&qoute=USDT")
    assert (r.status_code, r.json()["code"]) == (400, "unknown_parameter")
    # a signed private read with a typo changes nothing and says what the route takes
    user = api.user(USDT="100")
    seq = api.seq
    r = user.signed("GET", "/api/v1/orders?symbl=BTC-USDT")
    assert (r.status_code, r.json()["code"]) == (400, "unknown_parameter")
    assert "symbol" in r.json()["message"] and api.seq == seq


def test_faucet_credits_and_limits(api: Api) -> None:
    user = api.user(USDT="5000")
    assert balances(user)["USDT"] == ("5000.000000", "0.000000")
    seq = api.seq
    for body, code in (
        ({"asset": "DOGE", "amount": "1"}, "unknown_asset"),
        ({"asset": "USDT", "amount": "0"}, "invalid_amount"),
        ({"asset": "USDT", "amount": "1.0000001"}, "too_many_decimals"),
        ({"asset": "USDT", "amount": "1000000"}, "faucet_limit"),
    ):
        r = api.client.post("/api/v1/demo/faucet", json=body, headers=user.bearer)
        assert (r.status_code, r.json()["code"]) == (400, code), body
    assert api.seq == seq


def test_faucet_is_404_outside_demo_mode(tmp_path: Path) -> None:
    exchange = make_exchange(tmp_path, demo=False)
    with TestClient(exchange.app) as client:
        r = client.post("/api/v1/demo/faucet", json={"asset": "BTC", "amount": "1"})
        assert (r.status_code, r.json()["code"]) == (404, "not_found")
        # nothing is seeded outside demo mode
        assert client.get("/api/v1/markets").json() == []


# -- orders ---------------------------------------------------------------------------


def test_place_amend_cancel_with_signatures(api: Api) -> None:
    user = api.user(USDT="10000")
    r = user.signed("POST", "/api/v1/orders", order("BTC-USDT", "buy", "60000.50", "0.1"))
    assert r.status_code == 201, r.text
    placed = r.json()
    assert placed["status"] == "new" and placed["filled_quantity"] == "0.0000"
    assert placed["price"] == "60000.50" and placed["quantity"] == "0.1000"
    oid = placed["id"]
    assert balances(user)["USDT"] == ("3999.950000", "6000.050000")

    r = user.signed("GET", f"/api/v1/orders/{oid}")
    assert r.status_code == 200 and r.json() == placed

    r = user.signed("PATCH", f"/api/v1/orders/{oid}", {"price": "59000", "quantity": "0.05"})
    assert r.status_code == 200, r.text
    assert r.json()["price"] == "59000.00" and r.json()["quantity"] == "0.0500"
    assert balances(user)["USDT"] == ("7050.000000", "2950.000000")

    book = api.client.get("/api/v1/markets/BTC-USDT/book?depth=5").json()
    assert ["59000.00", "0.0500"] in book["bids"] and book["seq"] > 0

    r = user.signed("DELETE", f"/api/v1/orders/{oid}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["cancel_reason"] == "user"
    assert balances(user)["USDT"] == ("10000.000000", "0.000000")
    seq = api.seq
    r = user.signed("DELETE", f"/api/v1/orders/{oid}")
    assert (r.status_code, r.json()["code"]) == (409, "order_not_open")
    r = user.signed("PATCH", f"/api/v1/orders/{oid}", {"price": "59001"})
    assert (r.status_code, r.json()["code"]) == (409, "order_not_open")
    assert api.seq == seq

    listed = user.signed("GET", "/api/v1/orders?symbol=BTC-USDT").json()
    assert [o["id"] for o in listed["items"]] == [oid]
    assert user.signed("GET", "/api/v1/orders?status=open").json()["items"] == []


def test_cancel_all_and_pagination(api: Api) -> None:
    user = api.user(USDT="10000")
    ids = []
    for i in range(5):
        r = user.signed("POST", "/api/v1/orders", order("BTC-USDT", "buy", f"{100 + i}", "0.01"))
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    seen: list[int] = []
    target = "/api/v1/orders?limit=2"
    while True:
        page = user.signed("GET", target).json()
        seen += [o["id"] for o in page["items"]]
        if page["next_cursor"] is None:
            break
        target = f"/api/v1/orders?limit=2&cursor={page['next_cursor']}"
    assert seen == ids[::-1]
    r = user.signed("GET", "/api/v1/orders?cursor=abc")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_cursor")

    r = user.signed("DELETE", "/api/v1/orders?symbol=BTC-USDT")
    assert r.status_code == 200 and sorted(r.json()["cancelled"]) == ids
    assert balances(user)["USDT"] == ("10000.000000", "0.000000")


def test_a_trade_shows_in_fills_trades_book_and_balances(api: Api) -> None:
    seller = api.user(BTC="1")
    buyer = api.user(USDT="100000")
    r = seller.signed("POST", "/api/v1/orders", order("ETH-BTC", "sell", "1", "0.5"))
    assert r.status_code == 400 and r.json()["code"] == "insufficient_balance"  # no ETH
    sell = seller.signed("POST", "/api/v1/orders", order("BTC-USDT", "sell", "65000", "0.3"))
    assert sell.status_code == 201
    buy = buyer.signed("POST", "/api/v1/orders", order("BTC-USDT", "buy", "65010", "0.2"))
    assert buy.status_code == 201, buy.text
    assert buy.json()["status"] == "filled" and buy.json()["filled_quantity"] == "0.2000"
    assert buy.json()["filled_quote_quantity"] == "13000.000000"

    fills = buyer.signed("GET", "/api/v1/fills?symbol=BTC-USDT").json()["items"]
    assert len(fills) == 1
    fill = fills[0]
    assert (fill["side"], fill["role"], fill["price"], fill["quantity"]) == (
        "buy",
        "taker",
        "65000.00",
        "0.2000",
    )
    assert (fill["fee"], fill["fee_asset"]) == ("0.00040000", "BTC")  # taker 20 bps of 0.2
    seller_fill = seller.signed("GET", "/api/v1/fills").json()["items"][0]
    assert (seller_fill["role"], seller_fill["fee"], seller_fill["fee_asset"]) == (
        "maker",
        "13.000000",  # maker 10 bps of 13000 USDT
        "USDT",
    )
    assert balances(buyer)["BTC"] == ("0.19960000", "0.00000000")
    assert balances(buyer)["USDT"] == ("87000.000000", "0.000000")
    assert balances(seller)["USDT"] == ("12987.000000", "0.000000")
    assert balances(seller)["BTC"] == ("0.70000000", "0.10000000")

    sell_view = seller.signed("GET", f"/api/v1/orders/{sell.json()['id']}").json()
    assert sell_view["status"] == "partially_filled" and sell_view["filled_quantity"] == "0.2000"

    trades = api.client.get("/api/v1/markets/BTC-USDT/trades?limit=10").json()
    assert trades["items"][0]["price"] == "65000.00" and trades["items"][0]["side"] == "buy"
    ticker = api.client.get("/api/v1/markets/BTC-USDT/ticker").json()
    assert ticker["last"] == "65000.00" and ticker["best_ask"] == "65000.00"
    candles = api.client.get("/api/v1/markets/BTC-USDT/candles?interval=1m").json()
    assert candles and candles[-1]["close"] == "65000.00"
    r = api.client.get("/api/v1/markets/BTC-USDT/candles?interval=7m")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_interval")
    seller.signed("DELETE", "/api/v1/orders")


# -- bad input: precise 4xx, nothing changes ------------------------------------------


BTC_BUY = order("BTC-USDT", "buy", "100", "0.01")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**BTC_BUY, "price": 100}, 422, "invalid_request"),
        ({**BTC_BUY, "post_only": "yes"}, 422, "invalid_request"),
        ({**BTC_BUY, "side": "up"}, 422, "invalid_request"),
        ({**BTC_BUY, "leverage": 10}, 422, "unknown_field"),
        ({**BTC_BUY, "quantity": "0"}, 400, "invalid_amount"),
        ({**BTC_BUY, "quantity": "-1"}, 400, "invalid_amount"),
        ({**BTC_BUY, "price": "-100"}, 400, "invalid_amount"),
        ({**BTC_BUY, "price": "1e3"}, 400, "invalid_decimal"),
        ({**BTC_BUY, "price": " 100"}, 400, "invalid_decimal"),
        ({**BTC_BUY, "price": "100.0000001"}, 400, "too_many_decimals"),
        ({**BTC_BUY, "quantity": "0.000000001"}, 400, "too_many_decimals"),
        ({**BTC_BUY, "price": "100.001"}, 400, "filter_violated"),
        ({**BTC_BUY, "quantity": "0.00015"}, 400, "filter_violated"),
        ({**BTC_BUY, "quantity": "99999999999999999999"}, 400, "invalid_amount"),
        ({**BTC_BUY, "symbol": "DOGE-USDT"}, 400, "unknown_symbol"),
        ({"side": "buy"}, 422, "invalid_request"),
    ],
)
def test_bad_order_bodies_are_refused_at_the_edge(
    api: Api, body: dict[str, Any], status: int, code: str
) -> None:
    user = api.user(USDT="100")
    seq, before = api.seq, balances(user)
    r = user.signed("POST", "/api/v1/orders", body)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert set(r.json()) <= {"code", "message", "filter"}
    if code == "filter_violated":
        assert r.json()["filter"] in ("tick_size", "lot_size")
    assert api.seq == seq and balances(user) == before


def test_malformed_json_huge_body_and_empty_body(api: Api) -> None:
    user = api.user(USDT="100")
    seq = api.seq
    r = user.signed("POST", "/api/v1/orders", raw=b'{"symbol": "BTC-USDT", ')
    assert (r.status_code, r.json()["code"]) == (400, "invalid_json")
    r = user.signed("POST", "/api/v1/orders", raw=b"[1, 2]")
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    huge = json.dumps({**BTC_BUY, "client_order_id": "x" * 100_000}).encode()
    r = user.signed("POST", "/api/v1/orders", raw=huge)
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")
    r = api.client.post(
        "/api/v1/auth/register", content=b"x" * 70_000, headers={"Content-Type": "application/json"}
    )
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")
    r = user.signed("POST", "/api/v1/orders")
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    r = api.client.post(
        "/api/v1/auth/register",
        content=b"email=a@b.c&password=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (r.status_code, r.json()["code"]) == (415, "unsupported_media_type")
    assert api.seq == seq


def test_core_rejections_map_to_precise_codes(api: Api) -> None:
    user = api.user(USDT="100")
    state = api.state_hash
    r = user.signed("POST", "/api/v1/orders", order("BTC-USDT", "buy", "60000", "1"))
    assert (r.status_code, r.json()["code"]) == (400, "insufficient_balance")
    assert api.state_hash == state
    r = user.signed("POST", "/api/v1/orders", order("BTC-USDT", "buy", "1", "0.0001"))
    assert (r.status_code, r.json()["code"], r.json()["filter"]) == (
        400,
        "filter_violated",
        "min_notional",
    )
    r = user.signed("POST", "/api/v1/orders", {**order("BTC-USDT", "buy", "10", "1")})
    assert r.status_code == 201
    oid = r.json()["id"]
    r = user.signed(
        "POST", "/api/v1/orders", order("BTC-USDT", "buy", "10", "1", client_order_id="a")
    )
    assert r.status_code == 201
    state = api.state_hash
    r = user.signed(
        "POST", "/api/v1/orders", order("BTC-USDT", "buy", "10", "1", client_order_id="a")
    )
    assert (r.status_code, r.json()["code"]) == (409, "duplicate_client_id")
    assert api.state_hash == state
    r = user.signed("GET", "/api/v1/orders/999999999")
    assert (r.status_code, r.json()["code"]) == (404, "unknown_order")
    r = user.signed("DELETE", "/api/v1/orders/999999999")
    assert (r.status_code, r.json()["code"]) == (404, "unknown_order")
    r = user.signed("PATCH", f"/api/v1/orders/{oid}", {})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_order")
    assert api.state_hash == state
    other = api.user()
    r = other.signed("DELETE", f"/api/v1/orders/{oid}")
    assert (r.status_code, r.json()["code"]) == (404, "unknown_order")
    assert api.state_hash == state
    user.signed("DELETE", "/api/v1/orders")


def test_signature_failures(api: Api) -> None:
    user = api.user(USDT="100")
    seq = api.seq
    now = int(time.time() * 1000)

    r = user.signed("POST", "/api/v1/orders", BTC_BUY, secret="0" * 64)
    assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
    r = user.signed("POST", "/api/v1/orders", BTC_BUY, timestamp=now - 600_000)
    assert (r.status_code, r.json()["code"]) == (401, "timestamp_out_of_window")
    r = user.signed("POST", "/api/v1/orders", BTC_BUY, timestamp=now + 600_000)
    assert (r.status_code, r.json()["code"]) == (401, "timestamp_out_of_window")
    r = user.signed("POST", "/api/v1/orders", BTC_BUY, key_id="f" * 32)
    assert (r.status_code, r.json()["code"]) == (401, "invalid_api_key")

    # the signature covers the body: the same headers with another body fail
    body = json.dumps(BTC_BUY).encode()
    signature = sign_request(user.secret, now, "POST", "/api/v1/orders", body)
    headers = {
        "TW-KEY": user.key_id,
        "TW-TIMESTAMP": str(now),
        "TW-SIGNATURE": signature,
        "Content-Type": "application/json",
    }
    tampered = json.dumps({**BTC_BUY, "quantity": "0.02"}).encode()
    r = api.client.post("/api/v1/orders", content=tampered, headers=headers)
    assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
    # ... and the path with its query
    r = api.client.get("/api/v1/orders?limit=5", headers=headers)
    assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
    r = api.client.post("/api/v1/orders", content=body, headers={**headers, "TW-TIMESTAMP": "x1"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_timestamp")
    r = api.client.post(
        "/api/v1/orders",
        content=body,
        headers={"TW-KEY": user.key_id, "Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["code"]) == (401, "missing_signature")
    assert api.seq == seq

    r = api.client.post("/api/v1/orders", content=body, headers=headers)
    assert r.status_code == 201, r.text
    seq = api.seq
    r = api.client.post("/api/v1/orders", content=body, headers=headers)
    assert (r.status_code, r.json()["code"]) == (401, "replayed_signature")
    assert api.seq == seq
    user.signed("DELETE", "/api/v1/orders")


def test_permissions_are_enforced(api: Api) -> None:
    reader = api.user(("read",), USDT="100")
    seq = api.seq
    r = reader.signed("POST", "/api/v1/orders", BTC_BUY)
    assert (r.status_code, r.json()["code"]) == (403, "permission_denied")
    r = reader.signed("DELETE", "/api/v1/orders")
    assert (r.status_code, r.json()["code"]) == (403, "permission_denied")
    assert reader.signed("GET", "/api/v1/balances").status_code == 200
    trader = api.user(("trade",))
    r = trader.signed("GET", "/api/v1/balances")
    assert (r.status_code, r.json()["code"]) == (403, "permission_denied")
    assert api.seq == seq


# -- operations -----------------------------------------------------------------------


def test_health_ready_metrics_and_docs(api: Api) -> None:
    c = api.client
    assert c.get("/healthz").json() == {"status": "ok"}
    ready = c.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {
        "core": True,
        "database": True,
        "projectors": True,
    }
    metrics = c.get("/metrics").text
    for name in (
        "tradewind_orders_total",
        "tradewind_command_latency_seconds_bucket",
        'tradewind_queue_depth{queue="core"}',
        "tradewind_ws_clients",
    ):
        assert name in metrics
    schema = c.get("/openapi.json").json()
    for path in (
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/api-keys",
        "/api/v1/markets",
        "/api/v1/markets/{symbol}/book",
        "/api/v1/markets/{symbol}/trades",
        "/api/v1/markets/{symbol}/candles",
        "/api/v1/markets/{symbol}/ticker",
        "/api/v1/balances",
        "/api/v1/orders",
        "/api/v1/orders/{order_id}",
        "/api/v1/fills",
        "/api/v1/demo/faucet",
    ):
        assert path in schema["paths"], path
    assert c.get("/docs").status_code == 200
    r = c.get("/api/v1/nowhere")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = c.put("/api/v1/balances")
    assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed")


def test_trading_answers_503_at_once_when_the_core_is_down(tmp_path: Path) -> None:
    exchange = make_exchange(tmp_path)
    with TestClient(exchange.app) as client:
        api = Api(client, exchange)
        user = api.user(USDT="100")
        runner = exchange.runner
        assert runner is not None
        client.portal.call(runner.stop)  # type: ignore[union-attr]
        started = time.monotonic()
        r = user.signed("POST", "/api/v1/orders", BTC_BUY)
        assert (r.status_code, r.json()["code"]) == (503, "core_unavailable")
        assert time.monotonic() - started < 2
        r = client.post(
            "/api/v1/demo/faucet", json={"asset": "BTC", "amount": "1"}, headers=user.bearer
        )
        assert (r.status_code, r.json()["code"]) == (503, "core_unavailable")
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["core"] is False
        # reads that do not need the core still answer
        assert user.signed("GET", "/api/v1/orders").status_code == 200


# -- WebSocket ------------------------------------------------------------------------


def test_websocket_public_and_private_channels(api: Api) -> None:
    seller = api.user(ETH="2")
    buyer = api.user(BTC="1")
    ts = int(time.time() * 1000)
    with api.client.websocket_connect("/ws") as ws:
        ws.send_json({"op": "subscribe", "channel": "trades", "symbol": "ETH-BTC", "id": 1})
        assert ws.receive_json()["op"] == "subscribed"
        ws.send_json({"op": "subscribe", "channel": "fills", "id": 2})
        assert ws.receive_json()["code"] == "unauthorized"
        signature = sign_request(buyer.secret, ts, "GET", "/ws", b"")
        ws.send_json(
            {"op": "auth", "key": buyer.key_id, "timestamp": ts, "signature": signature, "id": 3}
        )
        assert ws.receive_json() == {"op": "authenticated", "user": buyer.user_id, "id": 3}
        ws.send_json({"op": "subscribe", "channel": "fills", "id": 4})
        assert ws.receive_json()["op"] == "subscribed"

        r = seller.signed("POST", "/api/v1/orders", order("ETH-BTC", "sell", "0.05", "1"))
        assert r.status_code == 201
        r = buyer.signed("POST", "/api/v1/orders", order("ETH-BTC", "buy", "0.05", "0.5"))
        assert r.status_code == 201 and r.json()["status"] == "filled"

        got = [ws.receive_json(), ws.receive_json()]
        trades = next(m for m in got if m.get("channel") == "trades")
        fills = next(m for m in got if m.get("channel") == "fills")
        assert trades["data"][0]["price"] == "0.05000" and trades["data"][0]["qty"] == "0.500"
        assert fills["data"]["role"] == "taker" and fills["data"]["fee_asset"] == "ETH"
    seller.signed("DELETE", "/api/v1/orders")
