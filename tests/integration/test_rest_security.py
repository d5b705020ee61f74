"""HTTP protections of the embedded exchange, as a client (or an attacker) meets them:
429 with Retry-After and X-RateLimit-* once a bucket is empty, weights, the per-IP
limit in front of login, per-account limits that follow the user across addresses,
order-rate limits in the trading path; security headers, strict CORS; and no secret
(password, token, API secret, signature) in the logs."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient

from tests.support.mail import verify_email
from tradewind.runtime.bootstrap import EmbeddedExchange, build_embedded
from tradewind.runtime.config import load_settings
from tradewind.runtime.logging import configure_logging
from tradewind.services.accounts import sign_request

PASSWORD = "correct horse battery staple"


def exchange(data_dir: Path, **overrides: object) -> EmbeddedExchange:
    settings = load_settings(
        None,
        environ={},
        overrides={"data_dir": data_dir, "demo": True, "demo_bot": False, **overrides},
    )
    return build_embedded(settings)


def register_login(client: TestClient, email: str) -> tuple[int, str]:
    r = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    user_id = r.json()["user_id"]
    verify_email(client, email)
    r = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return user_id, r.json()["token"]


def assert_limited(r: Any, scope: str) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["code"] == "rate_limited"
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["retry_after"] == int(r.headers["Retry-After"])
    assert r.headers["X-RateLimit-Scope"] == scope
    assert int(r.headers["X-RateLimit-Limit"]) >= 1


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Any]]:
    ex = exchange(
        tmp_path_factory.mktemp("limits"),
        rate_limits="ip=60/1h,auth=4/1h,user=40/1h,key=1000/1h,orders=2/1h",
    )
    with TestClient(ex.app) as client:
        yield client, ex


def test_login_is_limited_per_ip_before_any_password_check(tmp_path: Path) -> None:
    ex = exchange(tmp_path, rate_limits="auth=3/1h")
    with TestClient(ex.app) as client:
        other = TestClient(ex.app, client=("203.0.113.9", 5000))
        for _ in range(3):
            r = client.post(
                "/api/v1/auth/login", json={"email": "v@example.com", "password": "guess-1234"}
            )
            assert r.status_code == 401
        r = client.post(
            "/api/v1/auth/login", json={"email": "v@example.com", "password": "guess-1234"}
        )
        assert_limited(r, "auth")
        assert 1 <= int(r.headers["Retry-After"]) <= 1200  # one attempt back per 20 min
        # registration hashes a password too: same bucket
        r = client.post(
            "/api/v1/auth/register", json={"email": "n@example.com", "password": PASSWORD}
        )
        assert_limited(r, "auth")
        # another address has its own bucket
        r = other.post(
            "/api/v1/auth/login", json={"email": "v@example.com", "password": "guess-1234"}
        )
        assert r.status_code == 401
        # reads are not password checks
        assert client.get("/api/v1/markets").status_code == 200


def test_headers_show_the_budget_and_orders_weigh_more(
    limited: tuple[TestClient, Any],
) -> None:
    client, _ = limited
    r1 = client.get("/api/v1/markets")
    r2 = client.get("/api/v1/markets")
    assert r1.status_code == r2.status_code == 200
    assert r2.headers["X-RateLimit-Limit"] == "60"
    assert int(r1.headers["X-RateLimit-Remaining"]) - int(r2.headers["X-RateLimit-Remaining"]) == 1
    before = int(client.get("/api/v1/markets").headers["X-RateLimit-Remaining"])
    r = client.post("/api/v1/orders", json={"symbol": "BTC-USDT"})  # refused (401), but weighed
    assert r.status_code == 401
    after = int(client.get("/api/v1/markets").headers["X-RateLimit-Remaining"])
    assert before - after == 10 + 1


def test_order_rate_limit_per_account_in_the_trading_path(tmp_path: Path) -> None:
    # its own exchange, entered: a client outside the app's loop waits ~40 s on the core
    ex = exchange(tmp_path, rate_limits="user=40/1h,orders=2/1h")
    with TestClient(ex.app, client=("198.51.100.7", 4000)) as trader:
        _, token = register_login(trader, "orders@example.com")
        bearer = {"Authorization": f"Bearer {token}"}
        r = trader.post(
            "/api/v1/demo/faucet", json={"asset": "USDT", "amount": "1000"}, headers=bearer
        )
        assert r.status_code == 200, r.text
        order = {"symbol": "BTC-USDT", "side": "buy", "price": "100", "quantity": "0.1"}
        assert trader.post("/api/v1/orders", json=order, headers=bearer).status_code == 201
        assert trader.post("/api/v1/orders", json=order, headers=bearer).status_code == 201
        seq = ex.jcore.last_seq
        r = trader.post("/api/v1/orders", json=order, headers=bearer)
        assert_limited(r, "orders")
        assert ex.jcore.last_seq == seq  # refused before the core
        # cancels are never limited by the order budget
        r = trader.delete("/api/v1/orders", headers=bearer)
        assert r.status_code == 200 and len(r.json()["cancelled"]) == 2


def test_an_account_is_limited_across_addresses(limited: tuple[TestClient, Any]) -> None:
    _, ex = limited
    first = TestClient(ex.app, client=("192.0.2.1", 1000))
    _, token = register_login(first, "spread@example.com")
    bearer = {"Authorization": f"Bearer {token}"}
    statuses = []
    for i in range(45):  # user bucket: 40 per hour; each address is far below its 60
        client = TestClient(ex.app, client=(f"192.0.2.{10 + i % 5}", 1000))
        statuses.append(client.get("/api/v1/balances", headers=bearer).status_code)
    assert statuses.count(200) == 40 - 0 and statuses[-1] == 429
    client = TestClient(ex.app, client=("192.0.2.99", 1000))
    assert_limited(client.get("/api/v1/balances", headers=bearer), "user")


def test_probes_are_never_limited(tmp_path: Path) -> None:
    ex = exchange(tmp_path, rate_limits="ip=1/1h")
    with TestClient(ex.app) as client:
        assert client.get("/api/v1/markets").status_code == 200
        assert_limited(client.get("/api/v1/markets"), "ip")
        for _ in range(5):
            assert client.get("/healthz").status_code == 200


def test_security_headers_and_hsts_only_over_tls(tmp_path: Path) -> None:
    ex = exchange(tmp_path, rate_limits="off")
    with TestClient(ex.app) as client:
        r = client.get("/api/v1/markets")
        assert r.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["Cache-Control"] == "no-store"
        assert "Strict-Transport-Security" not in r.headers
        r = client.get("/api/v1/nowhere")  # errors carry them too
        assert r.status_code == 404 and r.headers["X-Frame-Options"] == "DENY"
        tls = TestClient(ex.app, base_url="https://testserver")
        assert tls.get("/healthz").headers["Strict-Transport-Security"].startswith("max-age=")


def test_cors_allows_only_configured_origins(tmp_path: Path) -> None:
    ex = exchange(tmp_path / "a", rate_limits="off")
    with TestClient(ex.app) as client:
        r = client.get("/api/v1/markets", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in r.headers
    ex = exchange(tmp_path / "b", rate_limits="off", cors_origins="https://app.example.com")
    with TestClient(ex.app) as client:
        r = client.get("/api/v1/markets", headers={"Origin": "https://app.example.com"})
        assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        assert "Access-Control-Allow-Credentials" not in r.headers
        r = client.get("/api/v1/markets", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in r.headers
        preflight = {
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
        }
        r = client.options("/api/v1/orders", headers=preflight)
        assert r.status_code == 400 and "Access-Control-Allow-Origin" not in r.headers


class Logs:
    """Every log line of the process at DEBUG: the standard library's root handler
    (where structlog sends its records) into a buffer, plus whatever reaches the
    process's stdout and stderr."""

    def __init__(self, buffer: io.StringIO, capfd: pytest.CaptureFixture[str]) -> None:
        self.buffer = buffer
        self.capfd = capfd
        self.seen: list[str] = []

    def text(self) -> str:
        out, err = self.capfd.readouterr()
        self.seen += [self.buffer.getvalue(), out, err]
        self.buffer.seek(0)
        self.buffer.truncate()
        return "\n".join(self.seen)


@pytest.fixture
def logs(capfd: pytest.CaptureFixture[str]) -> Iterator[Logs]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("debug", "json")
    # A logger first used under a caching configuration keeps it for good, and later
    # tests' capture_logs would not see its records (the journal's, say).
    structlog.configure(cache_logger_on_first_use=False)
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield Logs(buffer, capfd)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        structlog.reset_defaults()


def test_no_secrets_in_logs(tmp_path: Path, logs: Logs) -> None:
    ex = exchange(tmp_path, rate_limits="off")
    secrets_seen: list[str] = [PASSWORD]
    with TestClient(ex.app) as client:
        _, token = register_login(client, "quiet@example.com")
        secrets_seen.append(token)
        bearer = {"Authorization": f"Bearer {token}"}
        r = client.post(
            "/api/v1/auth/login", json={"email": "quiet@example.com", "password": "wrong-pass-12"}
        )
        assert r.status_code == 401
        secrets_seen.append("wrong-pass-12")
        r = client.post(
            "/api/v1/api-keys", json={"label": "bot", "permissions": ["read"]}, headers=bearer
        )
        key_id, secret = r.json()["key_id"], r.json()["secret"]
        secrets_seen.append(secret)
        for path in ("/api/v1/balances", "/api/v1/orders"):
            ts = int(time.time() * 1000)
            signature = sign_request(secret, ts, "GET", path, b"")
            secrets_seen.append(signature)
            headers = {"TW-KEY": key_id, "TW-TIMESTAMP": str(ts), "TW-SIGNATURE": signature}
            assert client.get(path, headers=headers).status_code == 200
            # the same signature replayed: refused, and logged (if at all) without it
            assert client.get(path, headers=headers).status_code == 401
        r = client.get("/api/v1/balances", headers={"Authorization": "Bearer " + "x" * 40})
        assert r.status_code == 401
        secrets_seen.append("x" * 40)
    text = logs.text()
    assert "exchange started" in text  # the logs were captured
    for secret_value in secrets_seen:
        assert secret_value not in text


def test_idor_another_users_order_and_key_ids_are_unknown(tmp_path: Path) -> None:
    ex = exchange(tmp_path, rate_limits="off")
    with TestClient(ex.app) as client:
        _, alice_token = register_login(client, "alice@example.com")
        _, mallory_token = register_login(client, "mallory@example.com")
        alice = {"Authorization": f"Bearer {alice_token}"}
        mallory = {"Authorization": f"Bearer {mallory_token}"}
        r = client.post(
            "/api/v1/demo/faucet", json={"asset": "USDT", "amount": "500"}, headers=alice
        )
        assert r.status_code == 200
        order = {"symbol": "BTC-USDT", "side": "buy", "price": "100", "quantity": "0.1"}
        order_id = client.post("/api/v1/orders", json=order, headers=alice).json()["id"]
        key = client.post(
            "/api/v1/api-keys", json={"label": "a", "permissions": ["read"]}, headers=alice
        ).json()
        seq = ex.jcore.last_seq
        for method, path, body in (
            ("GET", f"/api/v1/orders/{order_id}", None),
            ("DELETE", f"/api/v1/orders/{order_id}", None),
            ("PATCH", f"/api/v1/orders/{order_id}", {"quantity": "0.05"}),
        ):
            r = client.request(method, path, json=body, headers=mallory)
            assert (r.status_code, r.json()["code"]) == (404, "unknown_order"), method
        r = client.get(f"/api/v1/fills?order_id={order_id}", headers=mallory)
        assert r.status_code == 200 and r.json()["items"] == []
        r = client.delete(f"/api/v1/api-keys/{key['key_id']}", headers=mallory)
        assert (r.status_code, r.json()["code"]) == (404, "api_key_not_found")
        assert ex.jcore.last_seq == seq
        assert client.get(f"/api/v1/orders/{order_id}", headers=alice).json()["status"] == "new"
        assert [k["key_id"] for k in client.get("/api/v1/api-keys", headers=alice).json()] == [
            key["key_id"]
        ]


def test_a_captured_signed_order_cannot_be_replayed(tmp_path: Path) -> None:
    ex = exchange(tmp_path, rate_limits="off")
    with TestClient(ex.app) as client:
        _, token = register_login(client, "bot@example.com")
        bearer = {"Authorization": f"Bearer {token}"}
        client.post("/api/v1/demo/faucet", json={"asset": "USDT", "amount": "500"}, headers=bearer)
        key = client.post(
            "/api/v1/api-keys", json={"label": "b", "permissions": ["trade"]}, headers=bearer
        ).json()
        body = json.dumps(
            {"symbol": "BTC-USDT", "side": "buy", "price": "100", "quantity": "0.1"}
        ).encode()
        ts = int(time.time() * 1000)
        headers = {
            "TW-KEY": key["key_id"],
            "TW-TIMESTAMP": str(ts),
            "TW-SIGNATURE": sign_request(key["secret"], ts, "POST", "/api/v1/orders", body),
            "Content-Type": "application/json",
        }
        assert client.post("/api/v1/orders", content=body, headers=headers).status_code == 201
        seq = ex.jcore.last_seq
        r = client.post("/api/v1/orders", content=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (401, "replayed_signature")
        stale = int(time.time() * 1000) - 60_000
        headers["TW-TIMESTAMP"] = str(stale)
        headers["TW-SIGNATURE"] = sign_request(key["secret"], stale, "POST", "/api/v1/orders", body)
        r = client.post("/api/v1/orders", content=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (401, "timestamp_out_of_window")
        assert ex.jcore.last_seq == seq
