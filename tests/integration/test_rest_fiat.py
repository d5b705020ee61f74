"""The fiat routes on the embedded exchange: deposit instructions behind the KYC gate,
statement upload and the review queue for staff (confirmed, audited), malicious uploads
refused, and card deposits through Stripe (a loopback fake of its API) credited once by
a correctly signed webhook, never by a forged, stale or mismatched one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.camt import Entry, camt053
from tests.support.fake_stripe import FakeStripe, event, fake_stripe, signature
from tests.support.mail import verify_email
from tradewind.adapters.sql import Database
from tradewind.adapters.sql.kyc import SqlKycStore
from tradewind.runtime.admin_cli import create_user
from tradewind.runtime.bootstrap import EmbeddedExchange, build_embedded
from tradewind.runtime.config import Settings, load_settings

PASSWORD = "correct horse battery staple"
WEBHOOK_SECRET = "whsec_test_0123456789abcdef"
XML = {"Content-Type": "application/xml"}


@dataclass
class Person:
    user_id: int
    headers: dict[str, str]


@dataclass
class Fiat:
    client: TestClient
    exchange: EmbeddedExchange
    settings: Settings
    stripe: FakeStripe

    def person(self, role: str = "user", kyc_level: int = 2) -> Person:
        email = f"{role}-{time.monotonic_ns()}@example.com"
        r = self.client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        user_id = int(r.json()["user_id"])
        verify_email(self.client, email)
        if role != "user":
            asyncio.run(create_user(self.settings, email, None, role))
        if kyc_level:
            asyncio.run(set_level(self.settings, user_id, kyc_level))
        r = self.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return Person(user_id, {"Authorization": f"Bearer {r.json()['token']}"})

    def eur(self, user: int) -> int:
        core = self.exchange.jcore
        assert core is not None
        return core.core.available(user, "EUR")

    def webhook(self, payload: bytes, sig: str | None) -> Any:
        headers = {"Content-Type": "application/json"}
        if sig is not None:
            headers["Stripe-Signature"] = sig
        return self.client.post("/api/v1/fiat/stripe/webhook", content=payload, headers=headers)


async def set_level(settings: Settings, user_id: int, level: int) -> None:
    db = Database.from_url(settings.resolved_database_url)
    try:
        await SqlKycStore(db).set_level(user_id, level, source="test", at_ms=1)
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def fiat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fiat]:
    with fake_stripe() as stripe:
        settings = load_settings(
            None,
            environ={},
            overrides={
                "data_dir": tmp_path_factory.mktemp("fiat"),
                "demo": True,
                "demo_bot": False,
                "rate_limits": "off",
                "fiat": {
                    "currencies": {"EUR": 2},
                    "bank": {
                        "iban": "DE89 3704 0044 0532 0130 00",
                        "bic": "COBADEFFXXX",
                        "beneficiary": "Tradewind Test",
                    },
                    "stripe": {
                        "secret_key": "sk_test_fake",
                        "webhook_secret": WEBHOOK_SECRET,
                        "tolerance_s": 300,
                        "max_amount": "5000",
                        "api_base": stripe.url,
                    },
                },
            },
        )
        exchange = build_embedded(settings)
        with TestClient(exchange.app) as client:
            for _ in range(500):  # the crediting pass adds EUR to the core at start
                if exchange.jcore is not None and "EUR" in exchange.jcore.core.assets:
                    break
                time.sleep(0.02)
            yield Fiat(client, exchange, settings, stripe)


def test_deposit_instructions_give_a_stable_reference_behind_kyc(fiat: Fiat) -> None:
    alice = fiat.person()
    r = fiat.client.get("/api/v1/fiat/deposit-instructions?currency=EUR", headers=alice.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["iban"] == "DE89370400440532013000" and body["bic"] == "COBADEFFXXX"
    assert body["beneficiary"] == "Tradewind Test"
    assert body["reference"].startswith("RF") and len(body["reference"]) == 16
    assert body["reference_display"].replace(" ", "") == body["reference"]
    again = fiat.client.get("/api/v1/fiat/deposit-instructions?currency=EUR", headers=alice.headers)
    assert again.json()["reference"] == body["reference"]
    r = fiat.client.get("/api/v1/fiat/deposit-instructions?currency=USD", headers=alice.headers)
    assert r.status_code == 400 and r.json()["code"] == "unknown_currency"
    unverified = fiat.person(kyc_level=0)
    r = fiat.client.get(
        "/api/v1/fiat/deposit-instructions?currency=EUR", headers=unverified.headers
    )
    assert r.status_code == 403 and r.json()["code"] == "kyc_level_required"
    assert fiat.client.get("/api/v1/fiat/deposit-instructions?currency=EUR").status_code == 401


def test_staff_import_a_statement_and_work_the_review_queue(fiat: Fiat) -> None:
    alice, bob = fiat.person(), fiat.person()
    officer, support = fiat.person("compliance"), fiat.person("support")
    ref = fiat.client.get(
        "/api/v1/fiat/deposit-instructions?currency=EUR", headers=alice.headers
    ).json()["reference"]
    data = camt053(
        [
            Entry("250.00", ustrd=[f"deposit {ref}"], ref="REST-1"),
            Entry("12.00", ustrd=["no reference"], ref="REST-2"),
        ],
        message_id="REST-MSG",
    )
    before = fiat.eur(alice.user_id)
    r = fiat.client.post(
        "/api/v1/admin/fiat/statements", content=data, headers={**XML, **alice.headers}
    )
    assert r.status_code == 403 and r.json()["code"] == "role_required"
    r = fiat.client.post(
        "/api/v1/admin/fiat/statements", content=data, headers={**XML, **support.headers}
    )
    assert r.status_code == 403 and r.json()["code"] == "role_required"
    r = fiat.client.post(
        "/api/v1/admin/fiat/statements",
        content=data,
        headers={"Content-Type": "application/json", **officer.headers},
    )
    assert r.status_code == 415
    r = fiat.client.post(
        "/api/v1/admin/fiat/statements", content=data, headers={**XML, **officer.headers}
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["lines"], report["new"], report["matched"], report["review"]) == (2, 2, 1, 1)
    # credited by this upload's pass, or (rarely) by the background pass just before it
    assert report["credited"] in (0, 1) and report["version"] == "camt.053.001.02"
    assert fiat.eur(alice.user_id) == before + 25_000
    again = fiat.client.post(
        "/api/v1/admin/fiat/statements", content=data, headers={**XML, **officer.headers}
    ).json()
    assert (again["new"], again["already_imported"], again["credited"]) == (0, 2, 0)
    assert fiat.eur(alice.user_id) == before + 25_000

    r = fiat.client.get("/api/v1/admin/fiat/lines", headers=support.headers)
    assert r.status_code == 200
    queue = [x for x in r.json()["items"] if x["entry_ref"] == "REST-2"]
    assert len(queue) == 1 and queue[0]["reason"] == "no_reference"
    line_id = queue[0]["id"]
    path = f"/api/v1/admin/fiat/lines/{line_id}/assign"
    body = {"user_id": bob.user_id, "note": "bob sent his bank receipt"}
    r = fiat.client.post(path, json=body, headers=support.headers)
    assert r.status_code == 403
    r = fiat.client.post(path, json=body, headers=officer.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "credited" and r.json()["user_id"] == bob.user_id
    assert fiat.eur(bob.user_id) == 1_200
    r = fiat.client.post(path, json=body, headers=officer.headers)
    assert r.status_code == 409 and r.json()["code"] == "line_not_in_review"
    r = fiat.client.post(
        f"/api/v1/admin/fiat/lines/{line_id}/return", json={"note": "x"}, headers=officer.headers
    )
    assert r.status_code == 422  # a note of at least 3 characters
    audit = fiat.client.get("/api/v1/admin/audit?limit=50", headers=officer.headers)
    actions = [e["action"] for e in audit.json()]
    assert "fiat.statement_imported" in actions and "fiat.line_assigned" in actions


HOSTILE = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>&x;</MsgId></GrpHdr></BkToCstmrStmt></Document>"""


def test_malformed_and_hostile_uploads_change_nothing(fiat: Fiat) -> None:
    officer = fiat.person("admin")
    count = len(
        fiat.client.get(
            "/api/v1/admin/fiat/lines?status=all&limit=1000", headers=officer.headers
        ).json()["items"]
    )
    for data, message in [
        (HOSTILE, "line 2: a"),
        (camt053([Entry("1,00", ref="BAD-1")]), "Stmt[1]/Ntry[1]/Amt"),
        (camt053([Entry("1.00")], iban="GB29NWBK60161331926819"), "GB29NWBK60161331926819"),
        (b"", "send the statement file"),
    ]:
        r = fiat.client.post(
            "/api/v1/admin/fiat/statements", content=data, headers={**XML, **officer.headers}
        )
        assert r.status_code == 400, r.text
        assert r.json()["code"] in ("invalid_statement", "unknown_account")
        assert message in r.json()["message"]
        assert "root:" not in r.text
    after = fiat.client.get(
        "/api/v1/admin/fiat/lines?status=all&limit=1000", headers=officer.headers
    ).json()["items"]
    assert len(after) == count


def test_a_card_deposit_is_credited_once_by_a_signed_webhook(fiat: Fiat) -> None:
    alice = fiat.person()
    r = fiat.client.post(
        "/api/v1/fiat/card-deposits",
        json={"currency": "EUR", "amount": "25.50"},
        headers=alice.headers,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    pid = created["id"]
    assert created["client_secret"] == f"{pid}_secret_abc" and created["amount"] == "25.50"
    sent = fiat.stripe.requests[-1]
    assert sent["form"]["amount"] == "2550" and sent["form"]["currency"] == "eur"
    assert sent["form"]["metadata[tradewind_user]"] == str(alice.user_id)
    assert sent["authorization"] == "Bearer sk_test_fake" and sent["idempotency_key"]
    before = fiat.eur(alice.user_id)

    paid = event(pid, 2550, "eur")
    forged = fiat.webhook(paid, signature(paid, "whsec_someone_else"))
    stale = fiat.webhook(paid, signature(paid, WEBHOOK_SECRET, at=int(time.time()) - 600))
    unsigned = fiat.webhook(paid, None)
    tampered = fiat.webhook(event(pid, 255_000, "eur"), signature(paid, WEBHOOK_SECRET))
    for refused in (forged, stale, unsigned, tampered):
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "invalid_webhook_signature"
    assert fiat.eur(alice.user_id) == before

    first = fiat.webhook(paid, signature(paid, WEBHOOK_SECRET))
    assert first.status_code == 200 and first.json()["status"] == "credited"
    second = fiat.webhook(paid, signature(paid, WEBHOOK_SECRET))  # delivered again
    assert second.status_code == 200 and second.json()["status"] == "already"
    assert fiat.eur(alice.user_id) == before + 2_550
    status = fiat.client.get(f"/api/v1/fiat/card-deposits/{pid}", headers=alice.headers)
    assert status.json()["status"] == "credited"
    bob = fiat.person()
    hidden = fiat.client.get(f"/api/v1/fiat/card-deposits/{pid}", headers=bob.headers)
    assert hidden.status_code == 404


def test_a_payment_that_does_not_match_its_intent_credits_nothing(fiat: Fiat) -> None:
    alice = fiat.person()
    pid = fiat.client.post(
        "/api/v1/fiat/card-deposits",
        json={"currency": "EUR", "amount": "10"},
        headers=alice.headers,
    ).json()["id"]
    before = fiat.eur(alice.user_id)
    for payload in (event(pid, 999, "eur"), event(pid, 1000, "usd")):
        r = fiat.webhook(payload, signature(payload, WEBHOOK_SECRET))
        assert r.status_code == 200 and r.json()["status"] in ("mismatch", "already")
    ok = event(pid, 1000, "eur")  # the intent is closed as a mismatch: no credit after
    r = fiat.webhook(ok, signature(ok, WEBHOOK_SECRET))
    assert fiat.eur(alice.user_id) == before
    assert (
        fiat.client.get(f"/api/v1/fiat/card-deposits/{pid}", headers=alice.headers).json()["status"]
        == "mismatch"
    )
    unknown = event("pi_nobody", 100, "eur")
    r = fiat.webhook(unknown, signature(unknown, WEBHOOK_SECRET))
    assert r.status_code == 200 and r.json()["status"] == "unknown_intent"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"currency": "USD", "amount": "10"}, 400, "unknown_currency"),
        ({"currency": "EUR", "amount": "10.005"}, 400, "too_many_decimals"),
        ({"currency": "EUR", "amount": "5000.01"}, 400, "amount_too_large"),
        ({"currency": "EUR", "amount": "0"}, 400, "invalid_amount"),
        ({"currency": "EUR", "amount": 10}, 422, "invalid_request"),
    ],
)
def test_bad_card_deposits_are_refused_before_stripe_is_called(
    fiat: Fiat, body: dict[str, object], status: int, code: str
) -> None:
    alice = fiat.person()
    calls = len(fiat.stripe.requests)
    r = fiat.client.post("/api/v1/fiat/card-deposits", json=body, headers=alice.headers)
    assert r.status_code == status and r.json()["code"] == code, r.text
    assert len(fiat.stripe.requests) == calls


def test_without_fiat_the_routes_say_so(tmp_path: Path) -> None:
    settings = load_settings(
        None, environ={}, overrides={"data_dir": tmp_path, "rate_limits": "off"}
    )
    with TestClient(build_embedded(settings).app) as client:
        r = client.get("/api/v1/fiat/deposit-instructions?currency=EUR")
        assert r.status_code == 401  # authentication comes first
        email = f"nofiat-{time.monotonic_ns()}@example.com"
        client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        token = client.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        ).json()["token"]
        r = client.get(
            "/api/v1/fiat/deposit-instructions?currency=EUR",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 503 and r.json()["code"] == "fiat_unavailable"
        r = client.post(
            "/api/v1/fiat/stripe/webhook",
            content=b"{}",
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 404  # no card processor: no webhook endpoint
