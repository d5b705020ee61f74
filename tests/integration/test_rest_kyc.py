"""KYC against the embedded exchange: levels and limits, document upload checked by
size and content (not by the declared type), files stored privately outside anything
served, the compliance queue, and provider callbacks that count only when signed and
only once."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tradewind.runtime.admin_cli import create_user
from tradewind.runtime.bootstrap import EmbeddedExchange, build_embedded
from tradewind.runtime.config import Settings, load_settings
from tradewind.services.kyc import KycLimitExceeded, sign_webhook

PASSWORD = "correct horse battery staple"
SECRET = "provider-secret-0123456789"
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


@dataclass
class Kyc:
    client: TestClient
    exchange: EmbeddedExchange
    settings: Settings

    def person(self, role: str = "user") -> tuple[int, dict[str, str]]:
        email = f"{role}-{time.monotonic_ns()}@example.com"
        r = self.client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        user_id = r.json()["user_id"]
        if role != "user":
            asyncio.run(create_user(self.settings, email, None, role))
        r = self.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return user_id, {"Authorization": f"Bearer {r.json()['token']}"}

    def upload(
        self, bearer: dict[str, str], data: bytes, media: str, kind: str = "passport"
    ) -> Any:
        return self.client.post(
            f"/api/v1/kyc/documents?kind={kind}",
            content=data,
            headers={**bearer, "Content-Type": media},
        )


@pytest.fixture(scope="module")
def kyc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kyc]:
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": tmp_path_factory.mktemp("kyc"),
            "demo": True,
            "demo_bot": False,
            "rate_limits": "off",
            "kyc_webhook_secrets": f"sumsub={SECRET}",
        },
    )
    exchange = build_embedded(settings)
    with TestClient(exchange.app) as client:
        yield Kyc(client, exchange, settings)


def me(kyc: Kyc, bearer: dict[str, str]) -> dict[str, object]:
    r = kyc.client.get("/api/v1/kyc", headers=bearer)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_new_users_are_level_0_without_withdrawals_or_fiat(kyc: Kyc) -> None:
    _, bearer = kyc.person()
    assert me(kyc, bearer) == {
        "level": 0,
        "verified_at": None,
        "limits": {"withdraw_per_day": {}, "fiat": False},
        "levels": [
            {"level": 0, "withdraw_per_day": {}, "fiat": False},
            {
                "level": 1,
                "withdraw_per_day": {"BTC": "2", "ETH": "30", "USDT": "50000"},
                "fiat": False,
            },
            {
                "level": 2,
                "withdraw_per_day": {
                    "BTC": "100",
                    "ETH": "1500",
                    "USDT": "2000000",
                    "EUR": "100000",
                    "USD": "100000",
                },
                "fiat": True,
            },
        ],
        "documents": [],
    }


def test_uploads_are_checked_by_size_and_content(kyc: Kyc) -> None:
    _, bearer = kyc.person()
    r = kyc.upload(bearer, b"hello", "text/plain")
    assert (r.status_code, r.json()["code"]) == (415, "unsupported_media_type")
    r = kyc.upload(bearer, JPEG, "image/png")  # a JPEG that claims to be a PNG
    assert (r.status_code, r.json()["code"]) == (400, "invalid_document")
    r = kyc.upload(bearer, b"<script>alert(1)</script>", "application/pdf")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_document")
    r = kyc.upload(bearer, PDF + b"x" * (5 * 1024 * 1024), "application/pdf")
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")
    r = kyc.upload(bearer, PDF, "application/pdf", kind="../../etc/passwd")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_document")
    r = kyc.client.post(
        "/api/v1/kyc/documents?kind=passport",
        content=PDF,
        headers={"Content-Type": "application/pdf"},
    )
    assert r.status_code == 401
    assert me(kyc, bearer)["documents"] == []


def test_a_document_is_stored_privately_and_reviewed_once(kyc: Kyc) -> None:
    _, bearer = kyc.person()
    r = kyc.upload(bearer, PDF, "application/pdf; charset=binary")
    assert r.status_code == 201, r.text
    document = r.json()
    assert document["status"] == "pending" and document["size"] == len(PDF)
    assert "location" not in document  # the user never learns where it is

    _, compliance = kyc.person("compliance")
    _, support = kyc.person("support")
    r = kyc.client.get("/api/v1/admin/kyc/documents", headers=support)
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    r = kyc.client.get("/api/v1/admin/kyc/documents", headers=bearer)
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    queue = kyc.client.get("/api/v1/admin/kyc/documents", headers=compliance).json()
    queued = next(d for d in queue if d["id"] == document["id"])

    root = (kyc.settings.data_dir / "kyc-documents").resolve()
    stored = root / queued["location"]
    assert stored.read_bytes() == PDF
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert stored.name != "passport.pdf" and len(stored.stem) == 32
    r = kyc.client.get(f"/kyc-documents/{queued['location']}")
    assert r.status_code == 404 or PDF not in r.content  # never served

    approve = f"/api/v1/admin/kyc/documents/{document['id']}/approve"
    r = kyc.client.post(approve, json={"level": 1, "note": "passport ok"}, headers=compliance)
    assert r.status_code == 200 and r.json()["status"] == "approved"
    assert me(kyc, bearer)["level"] == 1
    limits = me(kyc, bearer)["limits"]
    assert isinstance(limits, dict) and limits["withdraw_per_day"]["BTC"] == "2"
    r = kyc.client.post(approve, json={"level": 2, "note": "again"}, headers=compliance)
    assert (r.status_code, r.json()["code"]) == (409, "document_not_pending")
    assert me(kyc, bearer)["level"] == 1


def test_provider_callbacks_count_only_when_signed_and_once(kyc: Kyc) -> None:
    r = kyc.client.post(
        "/api/v1/auth/register", json={"email": "cb@example.com", "password": PASSWORD}
    )
    user_id = r.json()["user_id"]
    login = kyc.client.post(
        "/api/v1/auth/login", json={"email": "cb@example.com", "password": PASSWORD}
    )
    bearer = {"Authorization": f"Bearer {login.json()['token']}"}
    event = {"event_id": "evt-1", "user_id": user_id, "result": "approved", "level": 2}
    body = json.dumps(event).encode()
    url = "/api/v1/kyc/callbacks/sumsub"

    def post(content: bytes, signature: str | None) -> Any:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Signature"] = signature
        return kyc.client.post(url, content=content, headers=headers)

    r = post(body, None)
    assert (r.status_code, r.json()["code"]) == (401, "invalid_webhook_signature")
    r = post(body, sign_webhook(b"wrong-secret-0123456789", body))
    assert r.status_code == 401
    forged = json.dumps({**event, "level": 2, "user_id": user_id + 1}).encode()
    r = post(forged, sign_webhook(SECRET.encode(), body))  # signature of another body
    assert r.status_code == 401
    assert me(kyc, bearer)["level"] == 0

    r = post(body, sign_webhook(SECRET.encode(), body))
    assert r.status_code == 200 and r.json() == {"status": "applied"}
    assert me(kyc, bearer)["level"] == 2
    r = post(body, sign_webhook(SECRET.encode(), body))
    assert r.json() == {"status": "duplicate"}

    nobody = json.dumps({**event, "event_id": "evt-2", "user_id": 10**9}).encode()
    r = post(nobody, sign_webhook(SECRET.encode(), nobody))
    assert (r.status_code, r.json()["code"]) == (400, "invalid_webhook_body")
    r = kyc.client.post(
        "/api/v1/kyc/callbacks/jumio",
        content=body,
        headers={"Content-Type": "application/json", "X-Signature": "00"},
    )
    assert r.status_code == 404


def test_withdrawal_limits_follow_the_level(kyc: Kyc) -> None:
    """What the withdrawal workflow asks (in the app's own event loop)."""
    service = kyc.exchange.protection.kyc
    user_id, _ = kyc.person()
    portal = kyc.client.portal
    assert portal is not None

    def check(amount: int, today: int) -> None:
        portal.call(service.check_withdrawal, user_id, "BTC", 8, amount, today)

    with pytest.raises(KycLimitExceeded, match="no BTC withdrawals"):
        check(1, 0)
    event = json.dumps({"event_id": "w-1", "user_id": user_id, "result": "approved", "level": 1})
    r = kyc.client.post(
        "/api/v1/kyc/callbacks/sumsub",
        content=event.encode(),
        headers={
            "X-Signature": sign_webhook(SECRET.encode(), event.encode()),
            "Content-Type": "application/json",
        },
    )
    assert r.json() == {"status": "applied"}
    check(2 * 10**8, 0)  # 2 BTC a day at level 1
    with pytest.raises(KycLimitExceeded, match="2 BTC"):
        check(1, 2 * 10**8)
    with pytest.raises(Exception, match="fiat"):
        portal.call(service.check_fiat, user_id)
