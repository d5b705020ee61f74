"""End to end: ``tradewind serve`` as a real process, killed with SIGKILL and restarted.

Two users register, get funds from the demo faucet, trade through REST with API-key
signatures (one of them watching the trade arrive on the WebSocket); the process is
killed with SIGKILL, restarted on the same data directory, and every acknowledged order,
fill and balance must read back unchanged. Finally ``tradewind verify`` checks the
journal's invariants.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.mail import verify_email
from tests.support.server import Server, free_port
from tradewind.services.accounts import sign_request

PASSWORD = "correct horse battery staple"


class Client:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10.0)
        self.key_id = ""
        self.secret = ""
        self.user_id = 0

    def signed(self, method: str, target: str, body: Any = None) -> httpx.Response:
        content = b"" if body is None else json.dumps(body).encode()
        ts = int(time.time() * 1000)
        headers = {
            "TW-KEY": self.key_id,
            "TW-TIMESTAMP": str(ts),
            "TW-SIGNATURE": sign_request(self.secret, ts, method, target, content),
        }
        if content:
            headers["Content-Type"] = "application/json"
        return self.http.request(method, target, content=content, headers=headers)

    def ok(self, method: str, target: str, body: Any = None) -> Any:
        r = self.signed(method, target, body)
        assert r.status_code in (200, 201), f"{method} {target}: {r.status_code} {r.text}"
        return r.json()

    def state(self) -> dict[str, Any]:
        """Everything the user can read about their account."""
        orders = self.ok("GET", "/api/v1/orders?limit=1000")
        fills = self.ok("GET", "/api/v1/fills?limit=1000")
        return {
            "balances": self.ok("GET", "/api/v1/balances"),
            "orders": orders["items"],
            "fills": fills["items"],
        }


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", free_port())
    try:
        yield srv
    finally:
        srv.stop()


def onboard(url: str, email: str, asset: str, amount: str) -> Client:
    c = Client(url)
    r = c.http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    c.user_id = r.json()["user_id"]
    verify_email(c.http, email)
    r = c.http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    token = r.json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    r = c.http.post(
        "/api/v1/api-keys", json={"label": "e2e", "permissions": ["read", "trade"]}, headers=bearer
    )
    assert r.status_code == 201, r.text
    c.key_id, c.secret = r.json()["key_id"], r.json()["secret"]
    r = c.http.post("/api/v1/demo/faucet", json={"asset": asset, "amount": amount}, headers=bearer)
    assert r.status_code == 200, r.text
    return c


def test_acknowledged_state_survives_sigkill(server: Server) -> None:
    from websockets.sync.client import connect

    server.start()
    alice = onboard(server.url, "alice@example.com", "BTC", "2")
    bob = onboard(server.url, "bob@example.com", "USDT", "100000")
    ws_url = f"ws://127.0.0.1:{server.port}/ws"

    with connect(ws_url) as ws:
        ws.send(json.dumps({"op": "subscribe", "channel": "trades", "symbol": "BTC-USDT"}))
        assert json.loads(ws.recv(timeout=5))["op"] == "subscribed"

        asks = [
            alice.ok(
                "POST",
                "/api/v1/orders",
                {"symbol": "BTC-USDT", "side": "sell", "price": p, "quantity": "0.4"},
            )
            for p in ("65000", "65100", "65200")
        ]
        buy = bob.ok(
            "POST",
            "/api/v1/orders",
            {"symbol": "BTC-USDT", "side": "buy", "price": "65100", "quantity": "0.6"},
        )
        assert buy["status"] == "filled" and buy["filled_quantity"] == "0.6000"
        message = json.loads(ws.recv(timeout=5))
        assert message["channel"] == "trades"
        assert [t["price"] for t in message["data"]] == ["65000.00", "65100.00"]

    resting = bob.ok(
        "POST",
        "/api/v1/orders",
        {"symbol": "BTC-USDT", "side": "buy", "price": "64000", "quantity": "0.25"},
    )
    amended = bob.ok("PATCH", f"/api/v1/orders/{resting['id']}", {"quantity": "0.2"})
    assert amended["quantity"] == "0.2000"
    cancelled = alice.ok("DELETE", f"/api/v1/orders/{asks[2]['id']}")
    assert cancelled["status"] == "cancelled"

    before = {"alice": alice.state(), "bob": bob.state()}
    assert len(before["bob"]["fills"]) == 2 and len(before["alice"]["fills"]) == 2
    acknowledged = {o["id"] for o in asks} | {buy["id"], resting["id"]}
    book_before = httpx.get(f"{server.url}/api/v1/markets/BTC-USDT/book").json()

    server.kill()
    server.start()

    after = {"alice": alice.state(), "bob": bob.state()}
    assert after == before
    seen = {o["id"] for o in after["alice"]["orders"] + after["bob"]["orders"]}
    assert acknowledged <= seen
    book_after = httpx.get(f"{server.url}/api/v1/markets/BTC-USDT/book").json()
    assert (book_after["bids"], book_after["asks"]) == (book_before["bids"], book_before["asks"])

    # the restarted exchange keeps trading, with the same keys and order ids moving on
    more = bob.ok(
        "POST",
        "/api/v1/orders",
        {"symbol": "BTC-USDT", "side": "buy", "price": "65100", "quantity": "0.2"},
    )
    assert more["status"] == "filled" and more["id"] > max(acknowledged)

    server.stop()
    verify = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tradewind.runtime.cli import main; main()",
            "verify",
            str(server.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
