"""A fiat withdrawal end to end through the embedded exchange, SQL and the command line
(docs/fiat.md): the IBAN into the address book (a bad one refused), the request on
``sepa`` locks the euros in the core at once, compliance approves, ``tradewind fiat
payouts`` writes one pain.001 file and marks it sent (a second run writes nothing),
``tradewind fiat confirm`` marks it paid and the exchange's fiat pass settles it once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from tests.support.mail import verify_email
from tradewind.adapters.banks.pain001 import read_pain001
from tradewind.core.commands import Deposit
from tradewind.runtime.admin_cli import create_user
from tradewind.runtime.bootstrap import EmbeddedExchange, build_embedded
from tradewind.runtime.config import Settings, load_settings
from tradewind.runtime.fiat_cli import answer_fiat_withdrawals, write_fiat_payouts
from tradewind.services.kyc import sign_webhook

PASSWORD = "correct horse battery staple"
KYC_SECRET = "provider-secret-0123456789"
IBAN = "GB82WEST12345698765432"
COOLING_MS = 3_600_000


class ShiftedClock:
    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, EmbeddedExchange, Settings]]:
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": tmp_path_factory.mktemp("fiatwd"),
            "demo": True,
            "demo_bot": False,
            "rate_limits": "off",
            "kyc_webhook_secrets": f"sumsub={KYC_SECRET}",
            "funding": {"withdrawals": {"cooling_off_hours": 1}},
        },
    )
    exchange = build_embedded(settings, clock=ShiftedClock())
    with TestClient(exchange.app) as client:
        yield client, exchange, settings


def login(client: TestClient, settings: Settings, role: str) -> dict[str, str]:
    email = f"f{role}-{time.monotonic_ns()}@example.com"
    r = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    user_id = r.json()["user_id"]
    verify_email(client, email)
    if role != "user":
        asyncio.run(create_user(settings, email, None, role))
    r = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}", "_id": str(user_id)}


def test_a_fiat_withdrawal_from_request_to_settlement(
    env: tuple[TestClient, EmbeddedExchange, Settings], tmp_path: Path
) -> None:
    client, exchange, settings = env
    clock: ShiftedClock = exchange.clock  # type: ignore[assignment]
    assert exchange.fiat.payouts is not None
    portal: Any = client.portal  # type: ignore[attr-defined]
    assert portal.call(exchange.fiat.ensure_assets)
    user = login(client, settings, "user")
    uid = int(user.pop("_id"))
    officer = login(client, settings, "compliance")
    officer.pop("_id")

    # 2FA (the default policy requires it) and KYC level 2 (fiat access)
    secret = client.post("/api/v1/account/2fa/setup", headers=user).json()["secret"]
    totp = pyotp.TOTP(secret)

    def code() -> str:
        clock.offset_ms += 30_000
        return totp.at(clock.now_ms() / 1000)

    r = client.post("/api/v1/account/2fa/enable", json={"code": code()}, headers=user)
    assert r.status_code == 200, r.text
    body = json.dumps(
        {"event_id": f"e{time.monotonic_ns()}", "user_id": uid, "result": "approved", "level": 2}
    ).encode()
    r = client.post(
        "/api/v1/kyc/callbacks/sumsub",
        content=body,
        headers={
            "X-Signature": sign_webhook(KYC_SECRET.encode(), body),
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 200, r.text
    portal.call(exchange.bus.submit, Deposit(user=uid, asset="EUR", amount=100_000))

    def book(iban: str) -> Any:
        return client.post(
            "/api/v1/withdrawals/addresses",
            json={"network": "sepa", "address": iban, "label": "Jane Doe"},
            headers={**user, "TW-TOTP": code()},
        )

    r = book("GB82WEST12345698765433")
    assert (r.status_code, r.json()["code"]) == (400, "iban_checksum_mismatch")
    assert book(IBAN).status_code == 201
    clock.offset_ms += COOLING_MS

    r = client.post(
        "/api/v1/withdrawals",
        json={"asset": "EUR", "network": "sepa", "address": IBAN, "amount": "250.25"},
        headers={**user, "Idempotency-Key": "fiat-wd-0001", "TW-TOTP": code()},
    )
    assert r.status_code in (200, 201, 202), r.text
    wid = int(r.json()["id"])
    assert r.json()["status"] == "pending_approval"
    core = exchange.jcore.core  # type: ignore[union-attr]
    b = core.accounts[uid]["EUR"]
    assert (b.available, b.locked) == (100_000 - 25_025, 25_025)

    r = client.post(f"/api/v1/admin/withdrawals/{wid}/approve", headers=officer)
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text

    out = tmp_path / "payouts.xml"
    text = asyncio.run(write_fiat_payouts(settings, out))
    assert "1 withdrawal(s)" in text, text
    paid = read_pain001(out.read_bytes()).payouts
    assert [(p.iban, p.name, str(p.amount)) for p in paid] == [(IBAN, "Jane Doe", "250.25")]
    again = tmp_path / "again.xml"
    assert asyncio.run(write_fiat_payouts(settings, again)) == "no approved fiat withdrawal to pay"
    assert not again.exists()
    assert client.get(f"/api/v1/withdrawals/{wid}", headers=user).json()["status"] == "broadcast"

    assert "1 fiat withdrawal(s) marked paid" in asyncio.run(
        answer_fiat_withdrawals(settings, [wid], paid=True, reason="camt.053 entry 42")
    )
    portal.call(exchange.fiat.payouts.finish)
    portal.call(exchange.fiat.payouts.finish)
    assert client.get(f"/api/v1/withdrawals/{wid}", headers=user).json()["status"] == "confirmed"
    b = core.accounts[uid]["EUR"]
    assert (b.available, b.locked) == (100_000 - 25_025, 0)
    assert core.withdrawn["EUR"] == 25_025
