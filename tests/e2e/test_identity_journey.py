"""End to end, through a real ``tradewind serve`` process (demo mode): a user registers,
verifies the address with the token from the outbox (/dev/mail), turns on 2FA with an
authenticator (pyotp), logs in with password and code, creates an API key restricted to
their IP address (the code is required for that too), and trades with it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyotp
import pytest

from tests.support.mail import last_mail, token_in
from tests.support.server import Server, free_port
from tradewind.services.accounts import sign_request

PASSWORD = "correct horse battery staple"
EMAIL = "satoshi@example.com"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data", free_port())
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def fresh_code(app: pyotp.TOTP, after: str | None) -> str:
    """The current code, waiting for the next step if it equals one already used."""
    while (code := app.now()) == after:
        time.sleep(0.5)
    return str(code)


def signed(
    http: httpx.Client, key: dict[str, str], method: str, path: str, body: object
) -> httpx.Response:
    content = b"" if body is None else json.dumps(body).encode()
    ts = int(time.time() * 1000)
    headers = {
        "TW-KEY": key["key_id"],
        "TW-TIMESTAMP": str(ts),
        "TW-SIGNATURE": sign_request(key["secret"], ts, method, path, content),
        "Content-Type": "application/json",
    }
    return http.request(method, path, content=content, headers=headers)


def test_register_verify_2fa_login_api_key_and_trade(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=15) as http:
        creds = {"email": EMAIL, "password": PASSWORD}
        r = http.post("/api/v1/auth/register", json=creds)
        assert r.status_code == 201, r.text

        # the inbox: demo mode's outbox, every mail headed by the anti-phishing line
        mail = last_mail(http, EMAIL, "verify_email")
        assert mail["body"].startswith("Anti-phishing code: (not set)")
        page = http.get("/dev/mail")
        assert page.status_code == 200 and "confirm your email address" in page.text
        r = http.post("/api/v1/auth/verify-email", json={"token": token_in(mail["body"])})
        assert r.status_code == 200, r.text
        r = http.post("/api/v1/auth/verify-email", json={"token": token_in(mail["body"])})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_token")

        token = http.post("/api/v1/auth/login", json=creds).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        r = http.put(
            "/api/v1/account/anti-phishing-code", json={"code": "Blue-Owl"}, headers=bearer
        )
        assert r.status_code == 204, r.text

        # 2FA with an authenticator app
        setup = http.post("/api/v1/account/2fa/setup", headers=bearer).json()
        assert setup["qr_svg"].startswith("<svg") and setup["otpauth_uri"].startswith("otpauth://")
        app = pyotp.TOTP(setup["secret"])
        used = fresh_code(app, None)
        r = http.post("/api/v1/account/2fa/enable", json={"code": used}, headers=bearer)
        assert r.status_code == 200, r.text
        assert len(r.json()["recovery_codes"]) == 10
        notice = last_mail(http, EMAIL, "security_notice")
        assert notice["body"].startswith("Anti-phishing code: Blue-Owl\n")
        assert "two-factor authentication enabled" in notice["subject"]

        # login now needs the code, and a code works once
        r = http.post("/api/v1/auth/login", json=creds)
        assert (r.status_code, r.json()["code"]) == (401, "totp_required")
        used = fresh_code(app, used)
        r = http.post("/api/v1/auth/login", json={**creds, "totp": used})
        assert r.status_code == 200, r.text
        bearer = {"Authorization": f"Bearer {r.json()['token']}"}
        r = http.post("/api/v1/auth/login", json={**creds, "totp": used})
        assert (r.status_code, r.json()["code"]) == (401, "invalid_totp")

        # an API key bound to this machine's address; creating it needs a fresh code
        body = {"label": "bot", "permissions": ["read", "trade"], "ip_allowlist": ["127.0.0.1"]}
        r = http.post("/api/v1/api-keys", json=body, headers=bearer)
        assert (r.status_code, r.json()["code"]) == (401, "totp_required")
        used = fresh_code(app, used)
        r = http.post("/api/v1/api-keys", json={**body, "totp": used}, headers=bearer)
        assert r.status_code == 201, r.text
        key = r.json()
        assert key["ip_allowlist"] == ["127.0.0.1/32"]

        r = http.post(
            "/api/v1/demo/faucet", json={"asset": "USDT", "amount": "1000"}, headers=bearer
        )
        assert r.status_code == 200, r.text
        order = {"symbol": "BTC-USDT", "side": "buy", "price": "10000", "quantity": "0.01"}
        r = signed(http, key, "POST", "/api/v1/orders", order)
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "new"
        r = signed(http, key, "GET", f"/api/v1/orders/{r.json()['id']}", None)
        assert r.status_code == 200 and r.json()["price"] == "10000.00"

        sessions = http.get("/api/v1/sessions", headers=bearer).json()
        assert sum(s["current"] for s in sessions) == 1 and len(sessions) == 2
