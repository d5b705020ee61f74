"""Withdrawals through the REST API of the embedded exchange (no payouts configured:
requests are checked, locked, approved and wait): every bad input refused with its
precise code and nothing changed; the address book with its cooling-off; idempotency
keys; automatic, one-person and two-person approval; cancel and reject releasing the
funds exactly once; notice emails with the anti-phishing line; audit entries."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from tests.support.mail import verify_email
from tradewind.runtime.admin_cli import create_user
from tradewind.runtime.bootstrap import EmbeddedExchange, build_embedded
from tradewind.runtime.config import Settings, load_settings
from tradewind.services.accounts import sign_request
from tradewind.services.funding.defaults import TEST_MNEMONIC_XPUB_EVM
from tradewind.services.kyc import sign_webhook

PASSWORD = "correct horse battery staple"
KYC_SECRET = "provider-secret-0123456789"
TO = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55 test vector
BLOCKED = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
OTHER = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"
FUNDING: dict[str, object] = {
    "networks": {
        "ethereum": {
            "chain_id": 1337,
            "xpub": TEST_MNEMONIC_XPUB_EVM,
            "assets": {
                "ETH": {
                    "decimals": 8,
                    "chain_decimals": 18,
                    "confirmations": 2,
                    "min_deposit": "0.001",
                    "withdrawal_fee": "0.002",
                    "min_withdrawal": "0.01",
                    "auto_approve_below": "1",
                    "two_person_above": "10",
                }
            },
        }
    },
    # an hour (the default is 24): the tests move the clock past it, and sessions last 24 h
    "withdrawals": {"cooling_off_hours": 1},
    "aml": {"blocked_addresses": [BLOCKED.lower()]},
}
COOLING_MS = 3_600_000


class ShiftedClock:
    """The wall clock plus an offset the tests move forward (cooling-off periods, and
    a fresh TOTP step for every code: each step's code is accepted once)."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


@dataclass
class Person:
    client: TestClient
    user_id: int
    email: str
    bearer: dict[str, str]
    totp: pyotp.TOTP | None = None

    def get(self, path: str) -> Any:
        return self.client.get(path, headers=self.bearer)

    def post(self, path: str, body: Any = None, **headers: str) -> Any:
        return self.client.post(path, json=body, headers={**self.bearer, **headers})


class Desk:
    def __init__(self, client: TestClient, exchange: EmbeddedExchange, settings: Settings):
        self.client = client
        self.exchange = exchange
        self.settings = settings
        self.clock: ShiftedClock = exchange.clock  # type: ignore[assignment]
        self._n = 0

    def person(self, role: str = "user", *, two_factor: bool = True, level: int = 1) -> Person:
        self._n += 1
        email = f"w{role}{self._n}-{time.monotonic_ns()}@example.com"
        r = self.client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        user_id = int(r.json()["user_id"])
        verify_email(self.client, email)
        if role != "user":
            asyncio.run(create_user(self.settings, email, None, role))
        r = self.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        p = Person(self.client, user_id, email, {"Authorization": f"Bearer {r.json()['token']}"})
        if two_factor:
            secret = p.post("/api/v1/account/2fa/setup").json()["secret"]
            p.totp = pyotp.TOTP(secret)
            r = p.post("/api/v1/account/2fa/enable", {"code": self.code(p)})
            assert r.status_code == 200, r.text
        if level:
            body = json.dumps(
                {
                    "event_id": f"e{time.monotonic_ns()}",
                    "user_id": user_id,
                    "result": "approved",
                    "level": level,
                }
            ).encode()
            r = self.client.post(
                "/api/v1/kyc/callbacks/sumsub",
                content=body,
                headers={
                    "X-Signature": sign_webhook(KYC_SECRET.encode(), body),
                    "Content-Type": "application/json",
                },
            )
            assert r.status_code == 200, r.text
        return p

    def code(self, p: Person) -> str:
        """A code of a TOTP step not used before (the clock moves one step on)."""
        assert p.totp is not None
        self.clock.offset_ms += 30_000
        return p.totp.at(self.clock.now_ms() / 1000)

    def fund(self, p: Person, amount: str) -> None:
        r = p.post("/api/v1/demo/faucet", {"asset": "ETH", "amount": amount})
        assert r.status_code == 200, r.text

    def balance(self, user: int) -> tuple[int, int]:
        assert self.exchange.jcore is not None
        b = self.exchange.jcore.core.accounts.get(user, {}).get("ETH")
        return (0, 0) if b is None else (b.available, b.locked)

    def whitelist(self, p: Person, address: str, *, cooled: bool = True) -> dict[str, Any]:
        r = p.post(
            "/api/v1/withdrawals/addresses",
            {"network": "ethereum", "address": address, "label": "mine"},
            **{"TW-TOTP": self.code(p)},
        )
        assert r.status_code == 201, r.text
        if cooled:
            self.clock.offset_ms += COOLING_MS
        return dict(r.json())

    def withdraw(self, p: Person, amount: str, key: str, address: str = TO, **extra: Any) -> Any:
        body = {"asset": "ETH", "network": "ethereum", "address": address, "amount": amount}
        body.update(extra)
        headers = {"Idempotency-Key": key}
        if p.totp is not None:
            headers["TW-TOTP"] = self.code(p)
        return p.post("/api/v1/withdrawals", body, **headers)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": tmp_path_factory.mktemp("withdrawals"),
            "demo": True,
            "demo_bot": False,
            "rate_limits": "off",
            "kyc_webhook_secrets": f"sumsub={KYC_SECRET}",
            "funding": FUNDING,
        },
    )
    exchange = build_embedded(settings, clock=ShiftedClock())
    with TestClient(exchange.app) as client:
        yield Desk(client, exchange, settings)


def codes(r: Any) -> tuple[int, str]:
    return r.status_code, r.json().get("code")


def test_bad_requests_are_refused_with_precise_codes_and_change_nothing(desk: Desk) -> None:
    p = desk.person()
    desk.fund(p, "50")
    desk.whitelist(p, TO)
    desk.whitelist(p, BLOCKED)
    desk.whitelist(p, OTHER, cooled=False)  # still cooling off
    before = desk.balance(p.user_id)
    wrong_case = TO[:2] + TO[2].lower() + TO[3:] if TO[2].isupper() else TO.replace("a", "A", 1)
    cases: list[tuple[dict[str, Any], tuple[int, str]]] = [
        ({"network": "dogecoin"}, (400, "unknown_network")),
        ({"asset": "BTC"}, (400, "unknown_asset")),
        ({"address": "0x1234"}, (400, "invalid_address")),
        ({"address": wrong_case}, (400, "address_checksum_mismatch")),
        ({"amount": "0.005"}, (400, "below_minimum")),
        ({"amount": "0.000000001"}, (400, "invalid_amount")),
        ({"memo": "hello"}, (400, "memo_not_supported")),
        ({"address": "0x" + "12" * 20}, (403, "address_not_whitelisted")),
        ({"address": OTHER}, (403, "address_cooling_off")),
        ({"amount": "31"}, (403, "kyc_limit_exceeded")),
        ({"address": BLOCKED}, (403, "address_blocked")),
    ]
    for n, (change, expected) in enumerate(cases):
        body = {"asset": "ETH", "network": "ethereum", "address": TO, "amount": "0.5", **change}
        r = p.post(
            "/api/v1/withdrawals",
            body,
            **{"Idempotency-Key": f"bad-input-{n:04d}", "TW-TOTP": desk.code(p)},
        )
        assert codes(r) == expected, (change, r.text)
    # no code, a wrong code, no idempotency key
    body = {"asset": "ETH", "network": "ethereum", "address": TO, "amount": "0.5"}
    r = p.post("/api/v1/withdrawals", body, **{"Idempotency-Key": "no-code-0001"})
    assert codes(r) == (401, "totp_required")
    r = p.post(
        "/api/v1/withdrawals", body, **{"Idempotency-Key": "bad-code-001", "TW-TOTP": "000000"}
    )
    assert codes(r) == (401, "invalid_totp")
    r = p.post("/api/v1/withdrawals", body, **{"TW-TOTP": desk.code(p)})
    assert codes(r) == (400, "invalid_idempotency_key")
    # 2FA off while the policy requires it; KYC level 0 allows no withdrawals
    bare = desk.person(two_factor=False)
    desk.fund(bare, "5")
    assert codes(desk.withdraw(bare, "0.5", "no-2fa-0001")) == (403, "two_factor_required")
    novice = desk.person(level=0)
    desk.fund(novice, "5")
    desk.whitelist(novice, TO)
    assert codes(desk.withdraw(novice, "0.5", "level0-0001")) == (403, "kyc_limit_exceeded")

    assert desk.balance(p.user_id) == before
    assert p.get("/api/v1/withdrawals").json()["items"] == []
    assert desk.balance(novice.user_id) == (500_000_000, 0)
    audit = desk.exchange.protection.audit
    portal = desk.client.portal
    assert portal is not None
    entries = portal.call(audit.recent)
    blocked = [e for e in entries if e.action == "withdrawal.address_blocked"]
    assert blocked and blocked[0].subject_id == p.user_id


def test_a_small_withdrawal_is_approved_at_once_and_a_cancel_releases_it_once(
    desk: Desk,
) -> None:
    p = desk.person()
    desk.fund(p, "5")
    desk.whitelist(p, TO)
    r = desk.withdraw(p, "0.5", "small-0001")
    assert r.status_code == 201, r.text
    w = r.json()
    assert w["status"] == "approved" and w["required_approvals"] == 0
    assert (w["amount"], w["fee"], w["net_amount"]) == ("0.50000000", "0.00200000", "0.49800000")
    assert desk.balance(p.user_id) == (450_000_000, 50_000_000)
    # the same key and body: the same withdrawal, without a new 2FA code
    again = p.post(
        "/api/v1/withdrawals",
        {"asset": "ETH", "network": "ethereum", "address": TO, "amount": "0.5"},
        **{"Idempotency-Key": "small-0001"},
    )
    assert again.status_code == 201 and again.json()["id"] == w["id"]
    other = desk.withdraw(p, "0.6", "small-0001")
    assert codes(other) == (422, "idempotency_mismatch")
    assert desk.balance(p.user_id) == (450_000_000, 50_000_000)

    r = p.post(f"/api/v1/withdrawals/{w['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert desk.balance(p.user_id) == (500_000_000, 0)
    assert codes(p.post(f"/api/v1/withdrawals/{w['id']}/cancel")) == (
        409,
        "withdrawal_not_cancellable",
    )
    assert desk.balance(p.user_id) == (500_000_000, 0)
    detail = p.get(f"/api/v1/withdrawals/{w['id']}").json()
    assert [t["status"] for t in detail["timeline"]] == [
        "holding",
        "approved",
        "releasing",
        "cancelled",
    ]
    # another user sees nothing of it
    stranger = desk.person(two_factor=False)
    assert codes(stranger.get(f"/api/v1/withdrawals/{w['id']}")) == (404, "unknown_withdrawal")
    assert codes(stranger.post(f"/api/v1/withdrawals/{w['id']}/cancel")) == (
        404,
        "unknown_withdrawal",
    )
    mails = desk.client.get("/dev/mail/messages", params={"to": p.email}).json()
    subjects = [m["subject"] for m in mails]
    assert f"Tradewind: withdrawal {w['id']} approved" in subjects
    assert f"Tradewind: withdrawal {w['id']} cancelled" in subjects
    assert all(m["body"].startswith("Anti-phishing code:") for m in mails)


def test_large_withdrawals_need_one_or_two_approvers_and_a_rejection_releases(
    desk: Desk,
) -> None:
    p = desk.person()
    desk.fund(p, "20")
    desk.whitelist(p, TO)
    c1, c2 = desk.person("compliance", two_factor=False), desk.person("admin", two_factor=False)

    one = desk.withdraw(p, "2", "large-0001").json()
    assert one["status"] == "pending_approval" and one["required_approvals"] == 1
    two = desk.withdraw(p, "12", "large-0002").json()
    assert two["status"] == "pending_approval" and two["required_approvals"] == 2
    assert desk.balance(p.user_id) == (600_000_000, 1_400_000_000)

    assert codes(p.get("/api/v1/admin/withdrawals")) == (403, "role_required")
    queue = c1.get("/api/v1/admin/withdrawals").json()
    assert {one["id"], two["id"]} <= {w["id"] for w in queue}

    r = c1.post(f"/api/v1/admin/withdrawals/{one['id']}/approve")
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text

    r = c1.post(f"/api/v1/admin/withdrawals/{two['id']}/approve")
    assert r.status_code == 200 and r.json()["status"] == "pending_approval", r.text
    assert r.json()["approved_by"] == [c1.user_id]
    queued = {w["id"]: w for w in c2.get("/api/v1/admin/withdrawals").json()}
    assert queued[two["id"]]["approved_by"] == [c1.user_id]
    assert codes(c1.post(f"/api/v1/admin/withdrawals/{two['id']}/approve")) == (
        409,
        "already_approved",
    )
    r = c2.post(f"/api/v1/admin/withdrawals/{two['id']}/approve")
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text

    three = desk.withdraw(p, "3", "large-0003").json()
    assert codes(c1.post(f"/api/v1/admin/withdrawals/{three['id']}/reject", {"reason": "x"})) == (
        422,
        "invalid_request",
    )
    r = c1.post(f"/api/v1/admin/withdrawals/{three['id']}/reject", {"reason": "source of funds"})
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
    assert r.json()["reason"] == "source of funds"
    assert codes(c2.post(f"/api/v1/admin/withdrawals/{three['id']}/approve")) == (
        409,
        "withdrawal_not_pending",
    )
    assert desk.balance(p.user_id) == (600_000_000, 1_400_000_000)

    page = p.get("/api/v1/withdrawals?limit=2").json()
    assert [w["id"] for w in page["items"]] == [three["id"], two["id"]]
    rest = p.get(f"/api/v1/withdrawals?limit=2&cursor={page['next_cursor']}").json()
    assert [w["id"] for w in rest["items"]] == [one["id"]] and rest["next_cursor"] is None


def test_the_address_book_needs_2fa_cools_off_and_sends_a_notice(desk: Desk) -> None:
    p = desk.person()
    r = p.post(
        "/api/v1/withdrawals/addresses", {"network": "ethereum", "address": TO, "label": "x"}
    )
    assert codes(r) == (401, "totp_required")
    entry = desk.whitelist(p, TO.lower(), cooled=False)
    assert entry["address"] == TO and entry["usable"] is False
    assert entry["usable_from"] - entry["created_at"] == COOLING_MS
    r = p.post(
        "/api/v1/withdrawals/addresses",
        {"network": "ethereum", "address": TO, "label": "again"},
        **{"TW-TOTP": desk.code(p)},
    )
    assert codes(r) == (409, "address_exists")
    r = p.post(
        "/api/v1/withdrawals/addresses",
        {"network": "ethereum", "address": "0xnothex", "label": "bad"},
        **{"TW-TOTP": desk.code(p)},
    )
    assert codes(r) == (400, "invalid_address")
    listed = p.get("/api/v1/withdrawals/addresses").json()
    assert [a["address"] for a in listed] == [TO]
    mails = desk.client.get("/dev/mail/messages", params={"to": p.email}).json()
    assert any(m["subject"] == "Tradewind: withdrawal address added" for m in mails)
    r = desk.client.delete(f"/api/v1/withdrawals/addresses/{entry['id']}", headers=p.bearer)
    assert r.status_code == 204
    assert p.get("/api/v1/withdrawals/addresses").json() == []
    r = desk.client.delete(f"/api/v1/withdrawals/addresses/{entry['id']}", headers=p.bearer)
    assert codes(r) == (404, "unknown_address")


def test_api_keys_need_the_withdraw_permission_and_never_manage_addresses(desk: Desk) -> None:
    p = desk.person()
    desk.fund(p, "5")
    desk.whitelist(p, TO)

    def key(*permissions: str) -> tuple[str, str]:
        r = p.post(
            "/api/v1/api-keys",
            {"label": "bot", "permissions": list(permissions), "totp": desk.code(p)},
        )
        assert r.status_code == 201, r.text
        return r.json()["key_id"], r.json()["secret"]

    def signed(key_id: str, secret: str, path: str, body: dict[str, Any], **extra: str) -> Any:
        content = json.dumps(body).encode()
        ts = desk.clock.now_ms()
        headers = {
            "TW-KEY": key_id,
            "TW-TIMESTAMP": str(ts),
            "TW-SIGNATURE": sign_request(secret, ts, "POST", path, content),
            "Content-Type": "application/json",
            **extra,
        }
        return desk.client.post(path, content=content, headers=headers)

    body = {"asset": "ETH", "network": "ethereum", "address": TO, "amount": "0.5"}
    trader = key("read", "trade")
    r = signed(*trader, "/api/v1/withdrawals", body, **{"Idempotency-Key": "api-key-0001"})
    assert codes(r) == (403, "permission_denied")
    withdrawer = key("read", "withdraw")
    r = signed(
        *withdrawer,
        "/api/v1/withdrawals",
        body,
        **{"Idempotency-Key": "api-key-0002", "TW-TOTP": desk.code(p)},
    )
    assert r.status_code == 201 and r.json()["status"] == "approved", r.text
    r = signed(
        *withdrawer,
        "/api/v1/withdrawals/addresses",
        {"network": "ethereum", "address": OTHER, "label": "x"},
        **{"TW-TOTP": desk.code(p)},
    )
    assert codes(r) == (403, "session_required")
    assert desk.balance(p.user_id) == (450_000_000, 50_000_000)


def test_the_rules_a_form_needs_are_public(desk: Desk) -> None:
    r = desk.client.get("/api/v1/withdrawals/rules")
    assert r.status_code == 200, r.text
    rules = r.json()
    assert rules["require_2fa"] is True and rules["cooling_off_hours"] == 1
    (eth_net,) = [n for n in rules["networks"] if n["network"] == "ethereum"]
    assert eth_net["payouts"] is True
    (eth,) = eth_net["assets"]
    assert eth == {
        "asset": "ETH",
        "decimals": 8,
        "withdrawal_enabled": True,
        "fee": "0.00200000",
        "minimum": "0.01000000",
        "auto_approve_below": "1.00000000",
        "two_person_above": "10.00000000",
    }
