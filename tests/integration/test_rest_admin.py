"""The admin API against the embedded exchange, played by attackers and staff.

- privilege escalation: every admin route refuses an ordinary user's token (403), no
  token (401) and an admin's API key (403); support cannot do what compliance or admin
  do; nobody approves their own request or changes their own role;
- two-person rule: a balance adjustment is executed only after a second admin approves,
  once, as core commands that keep the books balanced;
- freezing cancels the account's orders and blocks trading until unfrozen;
- only an admin halts and resumes a market; a halted market refuses orders;
- every action and refused attempt is in the audit log, whose chain verifies.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from tests.support.mail import verify_email
from tradewind.core.invariants import check_invariants
from tradewind.gateways.rest.middleware import UPLOAD_ROUTES
from tradewind.runtime.admin_cli import create_user, verify_audit
from tradewind.runtime.bootstrap import EmbeddedExchange, build_embedded
from tradewind.runtime.config import Settings, load_settings
from tradewind.services.accounts import sign_request
from tradewind.services.admin import ADJUSTMENT_ACCOUNT
from tradewind.services.funding.withdrawals import FEE_ACCOUNT

PASSWORD = "correct horse battery staple"


@dataclass
class Person:
    client: TestClient
    user_id: int
    email: str
    token: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str) -> Any:
        return self.client.get(path, headers=self.bearer)

    def post(self, path: str, body: Any = None) -> Any:
        return self.client.post(path, json=body, headers=self.bearer)

    def put(self, path: str, body: Any) -> Any:
        return self.client.put(path, json=body, headers=self.bearer)


class Desk:
    def __init__(self, client: TestClient, exchange: EmbeddedExchange, settings: Settings):
        self.client = client
        self.exchange = exchange
        self.settings = settings
        self._n = 0

    def person(self, role: str = "user") -> Person:
        self._n += 1
        email = f"{role}{self._n}-{time.monotonic_ns()}@example.com"
        r = self.client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        user_id = r.json()["user_id"]
        verify_email(self.client, email)
        if role != "user":
            line = asyncio.run(create_user(self.settings, email, None, role))
            assert f"role {role}" in line
        r = self.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return Person(self.client, user_id, email, r.json()["token"])

    @property
    def seq(self) -> int:
        assert self.exchange.jcore is not None
        return self.exchange.jcore.last_seq

    def available(self, account: int, asset: str) -> int:
        assert self.exchange.jcore is not None
        balance = self.exchange.jcore.core.accounts.get(account, {}).get(asset)
        return 0 if balance is None else balance.available


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": tmp_path_factory.mktemp("admin"),
            "demo": True,
            "demo_bot": False,
            "rate_limits": "off",
        },
    )
    exchange = build_embedded(settings)
    with TestClient(exchange.app) as client:
        yield Desk(client, exchange, settings)


def admin_routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, path) of the admin API, from the OpenAPI schema (which lists
    every route of every included router)."""
    routes = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith("/api/v1/admin"):
            concrete = path.replace("{user_id}", "1").replace("{approval_id}", "1")
            concrete = concrete.replace("{document_id}", "1")
            concrete = concrete.replace("{symbol}", "BTC-USDT").replace("{line_id}", "1")
            concrete = concrete.replace("{withdrawal_id}", "1")
            concrete = concrete.replace("{network}", "ethereum").replace("{asset}", "USDT")
            concrete = concrete.replace("{alert_id}", "1").replace("{tier}", "1")
            concrete = concrete.replace("{deposit_id}", "chain:1")
            assert "{" not in concrete, f"give {path} a concrete id in this test"
            routes += [(method.upper(), concrete) for method in sorted(operations)]
    return routes


def test_every_admin_route_refuses_users_anonymous_and_api_keys(desk: Desk) -> None:
    routes = admin_routes(desk.exchange.app)
    assert len(routes) >= 12
    user = desk.person()
    admin = desk.person("admin")
    r = admin.post("/api/v1/api-keys", {"label": "ops", "permissions": ["read", "trade"]})
    assert r.status_code == 201, r.text
    key_id, secret = r.json()["key_id"], r.json()["secret"]
    seq = desk.seq
    body = json.dumps(
        {
            "reason": "because",
            "role": "admin",
            "user_id": 1,
            "asset": "USDT",
            "amount": "1",
            "level": 1,
            "note": "ok",
        }
    ).encode()
    for method, path in routes:
        content = body if method in ("POST", "PUT") else b""
        json_headers = {"Content-Type": "application/json"} if content else {}
        if path in UPLOAD_ROUTES:  # a file upload (a bank statement): its own media type
            media = sorted(UPLOAD_ROUTES[path][1])[0].decode()
            json_headers = {"Content-Type": media} if content else {}
        r = desk.client.request(
            method, path, content=content, headers={**user.bearer, **json_headers}
        )
        assert (r.status_code, r.json()["code"]) == (403, "role_required"), (method, path)
        r = desk.client.request(method, path, content=content, headers=json_headers)
        assert (r.status_code, r.json()["code"]) == (401, "auth_required"), (method, path)
        ts = int(time.time() * 1000)
        signed = {
            "TW-KEY": key_id,
            "TW-TIMESTAMP": str(ts),
            "TW-SIGNATURE": sign_request(secret, ts, method, path, content),
            **json_headers,
        }
        r = desk.client.request(method, path, content=content, headers=signed)
        assert (r.status_code, r.json()["code"]) == (403, "session_required"), (method, path)
    assert desk.seq == seq  # nothing reached the core
    assert admin.get("/api/v1/admin/me").json() == {"user_id": admin.user_id, "role": "admin"}


def test_support_reads_but_cannot_escalate(desk: Desk) -> None:
    support = desk.person("support")
    victim = desk.person()
    r = support.get(f"/api/v1/admin/users/{victim.user_id}")
    assert r.status_code == 200
    assert r.json()["email"] == victim.email and r.json()["role"] == "user"
    r = support.get(f"/api/v1/admin/users?email={victim.email}")
    assert [u["id"] for u in r.json()["items"]] == [victim.user_id]
    seq = desk.seq
    for method, path, body in (
        ("PUT", f"/api/v1/admin/users/{support.user_id}/role", {"role": "admin"}),
        ("PUT", f"/api/v1/admin/users/{victim.user_id}/role", {"role": "support"}),
        ("POST", f"/api/v1/admin/users/{victim.user_id}/freeze", {"reason": "looks odd"}),
        (
            "POST",
            "/api/v1/admin/adjustments",
            {"user_id": support.user_id, "asset": "USDT", "amount": "1000", "reason": "bonus"},
        ),
        ("GET", "/api/v1/admin/audit", None),
    ):
        r = support.client.request(method, path, json=body, headers=support.bearer)
        assert (r.status_code, r.json()["code"]) == (403, "role_required"), path
    assert desk.seq == seq
    assert support.get("/api/v1/admin/me").json()["role"] == "support"
    admin = desk.person("admin")
    denied = [
        e
        for e in admin.get(f"/api/v1/admin/audit?limit=50&user_id={support.user_id}").json()
        if e["action"] == "admin.denied" and e["actor_id"] == support.user_id
    ]
    assert denied and denied[0]["details"]["attempted"] in ("roles.set", "balances.adjust")


def test_roles_nobody_changes_their_own(desk: Desk) -> None:
    admin = desk.person("admin")
    other = desk.person()
    r = admin.put(f"/api/v1/admin/users/{admin.user_id}/role", {"role": "user"})
    assert (r.status_code, r.json()["code"]) == (403, "self_role_change")
    r = admin.put(f"/api/v1/admin/users/{other.user_id}/role", {"role": "root"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_request")
    r = admin.put(f"/api/v1/admin/users/{other.user_id}/role", {"role": "compliance"})
    assert r.status_code == 200 and r.json()["role"] == "compliance"
    assert other.get("/api/v1/admin/me").json()["role"] == "compliance"
    r = admin.put(f"/api/v1/admin/users/{other.user_id}/role", {"role": "user"})
    assert r.status_code == 200 and r.json()["role"] == "user"
    r = other.get("/api/v1/admin/me")
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    r = admin.get("/api/v1/admin/users/999999")
    assert (r.status_code, r.json()["code"]) == (404, "unknown_user")


def test_balance_adjustment_needs_a_second_admin(desk: Desk) -> None:
    first, second = desk.person("admin"), desk.person("admin")
    compliance = desk.person("compliance")
    user = desk.person()
    before = desk.available(user.user_id, "USDT")
    pool_before = desk.available(ADJUSTMENT_ACCOUNT, "USDT")
    r = first.post(
        "/api/v1/admin/adjustments",
        {"user_id": user.user_id, "asset": "USDT", "amount": "12.5", "reason": "refund #42"},
    )
    assert r.status_code == 202, r.text
    request = r.json()
    assert request["status"] == "pending" and request["amount"] == "12.500000"
    assert desk.available(user.user_id, "USDT") == before  # nothing moved yet

    approve = f"/api/v1/admin/approvals/{request['id']}/approve"
    r = first.post(approve)
    assert (r.status_code, r.json()["code"]) == (403, "self_approval")
    r = compliance.post(approve)
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    r = user.post(approve)
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    assert desk.available(user.user_id, "USDT") == before

    r = second.post(approve)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "executed" and r.json()["decided_by"] == second.user_id
    assert desk.available(user.user_id, "USDT") == before + 12_500_000
    assert desk.available(ADJUSTMENT_ACCOUNT, "USDT") == pool_before  # funded, then moved
    r = second.post(approve)
    assert (r.status_code, r.json()["code"]) == (409, "approval_not_pending")
    assert desk.available(user.user_id, "USDT") == before + 12_500_000

    # a debit larger than the balance fails in the core and changes nothing
    r = first.post(
        "/api/v1/admin/adjustments",
        {"user_id": user.user_id, "asset": "USDT", "amount": "-1000", "reason": "chargeback"},
    )
    assert r.status_code == 202 and r.json()["amount"] == "-1000.000000"
    r = second.post(f"/api/v1/admin/approvals/{r.json()['id']}/approve")
    assert r.json()["status"] == "failed" and "insufficient_balance" in r.json()["result"]
    assert desk.available(user.user_id, "USDT") == before + 12_500_000

    # a debit within the balance moves it to the adjustments account
    r = second.post(
        "/api/v1/admin/adjustments",
        {"user_id": user.user_id, "asset": "USDT", "amount": "-2.5", "reason": "fee correction"},
    )
    r = first.post(f"/api/v1/admin/approvals/{r.json()['id']}/approve")
    assert r.json()["status"] == "executed"
    assert desk.available(user.user_id, "USDT") == before + 10_000_000
    assert desk.available(ADJUSTMENT_ACCOUNT, "USDT") == pool_before + 2_500_000

    # the withdrawal-fee account has no user row, and is funded the same way (ADR 0034)
    fees_before = desk.available(FEE_ACCOUNT, "USDT")
    r = first.post(
        "/api/v1/admin/adjustments",
        {"user_id": FEE_ACCOUNT, "asset": "USDT", "amount": "3", "reason": "network fees"},
    )
    assert r.status_code == 202, r.text
    r = second.post(f"/api/v1/admin/approvals/{r.json()['id']}/approve")
    assert r.json()["status"] == "executed"
    assert desk.available(FEE_ACCOUNT, "USDT") == fees_before + 3_000_000

    for body, code in (
        ({"user_id": user.user_id, "asset": "DOGE", "amount": "1", "reason": "x" * 5}, 400),
        ({"user_id": user.user_id, "asset": "USDT", "amount": "0", "reason": "x" * 5}, 400),
        ({"user_id": user.user_id, "asset": "USDT", "amount": "1", "reason": ""}, 400),
        ({"user_id": 999_999, "asset": "USDT", "amount": "1", "reason": "x" * 5}, 404),
    ):
        assert first.post("/api/v1/admin/adjustments", body).status_code == code, body
    jcore = desk.exchange.jcore
    assert jcore is not None
    assert check_invariants(jcore.core) == []


def test_rejected_requests_are_never_executed(desk: Desk) -> None:
    first, second = desk.person("admin"), desk.person("admin")
    user = desk.person()
    before = desk.available(user.user_id, "USDT")
    r = first.post(
        "/api/v1/admin/adjustments",
        {"user_id": user.user_id, "asset": "USDT", "amount": "5", "reason": "goodwill"},
    )
    approval = r.json()["id"]
    r = second.post(f"/api/v1/admin/approvals/{approval}/reject")
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    r = second.post(f"/api/v1/admin/approvals/{approval}/approve")
    assert (r.status_code, r.json()["code"]) == (409, "approval_not_pending")
    assert desk.available(user.user_id, "USDT") == before
    listed = second.get("/api/v1/admin/approvals?status=rejected").json()
    assert approval in [a["id"] for a in listed]


def test_freeze_cancels_orders_and_blocks_trading(desk: Desk) -> None:
    compliance = desk.person("compliance")
    user = desk.person()
    r = user.post("/api/v1/demo/faucet", {"asset": "USDT", "amount": "1000"})
    assert r.status_code == 200, r.text
    order = {"symbol": "BTC-USDT", "side": "buy", "price": "100", "quantity": "0.1"}
    r = user.post("/api/v1/orders", order)
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]

    r = compliance.post(f"/api/v1/admin/users/{user.user_id}/freeze", {"reason": "AML review"})
    assert r.status_code == 200, r.text
    assert r.json()["cancelled_orders"] == [order_id]
    assert user.get(f"/api/v1/orders/{order_id}").json()["status"] == "cancelled"
    seq = desk.seq
    r = user.post("/api/v1/orders", order)
    assert (r.status_code, r.json()["code"]) == (403, "account_frozen")
    assert desk.seq == seq
    info = compliance.get(f"/api/v1/admin/users/{user.user_id}").json()
    assert info["frozen"] is True and info["frozen_reason"] == "AML review"

    r = compliance.post(f"/api/v1/admin/users/{user.user_id}/unfreeze", {"reason": "cleared"})
    assert r.status_code == 200
    assert user.post("/api/v1/orders", order).status_code == 201


def test_admin_halts_and_resumes_a_market(desk: Desk) -> None:
    admin, compliance, user = desk.person("admin"), desk.person("compliance"), desk.person()
    r = user.post("/api/v1/demo/faucet", {"asset": "USDT", "amount": "1000"})
    assert r.status_code == 200, r.text
    order = {"symbol": "ETH-USDT", "side": "buy", "price": "100", "quantity": "0.1"}
    halt, resume = "/api/v1/admin/markets/ETH-USDT/halt", "/api/v1/admin/markets/ETH-USDT/resume"

    seq = desk.seq
    r = compliance.post(halt, {"reason": "not mine to halt"})
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    r = admin.post("/api/v1/admin/markets/NOPE-USDT/halt", {"reason": "typo"})
    assert (r.status_code, r.json()["code"]) == (404, "unknown_symbol")
    r = admin.post(halt, {"reason": "   "})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_reason")
    assert desk.seq == seq  # nothing reached the core

    r = admin.post(halt, {"reason": "oracle outage"})
    assert r.status_code == 200, r.text
    assert r.json() == {"symbol": "ETH-USDT", "status": "halted", "previous": "trading"}
    assert desk.client.get("/api/v1/markets/ETH-USDT").json()["status"] == "halted"
    r = user.post("/api/v1/orders", order)
    assert (r.status_code, r.json()["code"]) == (409, "symbol_halted"), r.text
    # other markets trade on
    r = user.post("/api/v1/orders", {**order, "symbol": "BTC-USDT"})
    assert r.status_code == 201, r.text

    r = admin.post(resume, {"reason": "oracle back"})
    assert r.json() == {"symbol": "ETH-USDT", "status": "trading", "previous": "halted"}
    assert desk.client.get("/api/v1/markets/ETH-USDT").json()["status"] == "trading"
    assert user.post("/api/v1/orders", order).status_code == 201

    entries = admin.get("/api/v1/admin/audit?limit=50").json()
    actions = [
        (e["action"], e["details"].get("symbol"), e["details"].get("reason")) for e in entries
    ]
    assert ("admin.market_halt", "ETH-USDT", "oracle outage") in actions
    assert ("admin.market_resume", "ETH-USDT", "oracle back") in actions
    assert ("admin.denied", "ETH-USDT", None) in actions


def test_two_factor_reset_needs_support_and_compliance(desk: Desk) -> None:
    support, compliance = desk.person("support"), desk.person("compliance")
    admin, victim = desk.person("admin"), desk.person()
    secret = victim.post("/api/v1/account/2fa/setup").json()["secret"]
    r = victim.post("/api/v1/account/2fa/enable", {"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 200, r.text
    assert victim.get("/api/v1/account").json()["totp_enabled"] is True

    reset = f"/api/v1/admin/users/{victim.user_id}/two-factor-reset"
    r = support.post(reset, {"reason": "lost phone"})
    assert r.status_code == 202 and r.json()["status"] == "pending", r.text
    approve = f"/api/v1/admin/approvals/{r.json()['id']}/approve"
    for who, code in (
        (support, "role_required"),
        (admin, "role_required"),
        (victim, "role_required"),
    ):
        r = who.post(approve)
        assert (r.status_code, r.json()["code"]) == (403, code)
    assert victim.get("/api/v1/account").json()["totp_enabled"] is True
    r = compliance.post(approve)
    assert r.status_code == 200 and r.json()["status"] == "executed", r.text
    assert victim.get("/api/v1/account").json()["totp_enabled"] is False
    # compliance approves, it does not ask
    r = compliance.post(reset, {"reason": "self-serve"})
    assert (r.status_code, r.json()["code"]) == (403, "role_required")


def test_staff_with_2fa_confirm_changes_with_a_code(desk: Desk) -> None:
    """A stolen staff session alone cannot act: the staff member's own code is needed."""
    compliance, user = desk.person("compliance"), desk.person()
    secret = compliance.post("/api/v1/account/2fa/setup").json()["secret"]
    totp = pyotp.TOTP(secret)
    r = compliance.post("/api/v1/account/2fa/enable", {"code": totp.now()})
    assert r.status_code == 200, r.text
    freeze = f"/api/v1/admin/users/{user.user_id}/freeze"
    r = compliance.post(freeze, {"reason": "stolen session"})
    assert (r.status_code, r.json()["code"]) == (401, "totp_required")
    r = compliance.client.post(
        freeze, json={"reason": "wrong code"}, headers={**compliance.bearer, "TW-TOTP": "000000"}
    )
    assert (r.status_code, r.json()["code"]) == (401, "invalid_totp")
    assert compliance.get(f"/api/v1/admin/users/{user.user_id}").json()["frozen"] is False
    r = compliance.client.post(
        freeze,
        json={"reason": "confirmed"},
        # the enabling code's step is used up: the next step's code (one step of drift)
        headers={**compliance.bearer, "TW-TOTP": totp.at(time.time() + 30)},
    )
    assert r.status_code == 200, r.text
    assert compliance.get(f"/api/v1/admin/users/{user.user_id}").json()["frozen"] is True


def test_security_events_are_audited_without_secrets(desk: Desk) -> None:
    compliance, user = desk.person("compliance"), desk.person()
    r = desk.client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "not the password"}
    )
    assert r.status_code == 401
    r = user.post("/api/v1/api-keys", {"label": "bot", "permissions": ["read"]})
    key_id, secret = r.json()["key_id"], r.json()["secret"]
    assert desk.client.delete(f"/api/v1/api-keys/{key_id}", headers=user.bearer).status_code == 204
    entries = compliance.get(f"/api/v1/admin/audit?user_id={user.user_id}").json()
    actions = [e["action"] for e in entries]
    for action in (
        "security.signed_in",
        "security.sign_in_failed",
        "security.api_key_created",
        "security.api_key_revoked",
    ):
        assert action in actions, actions
    failed = next(e for e in entries if e["action"] == "security.sign_in_failed")
    assert failed["ip"] == "testclient" and failed["details"] == {"reason": "password"}
    dumped = json.dumps(entries)
    for secret_value in (secret, PASSWORD, "not the password", user.token):
        assert secret_value not in dumped


def test_audit_log_records_and_verifies(desk: Desk) -> None:
    admin, compliance = desk.person("admin"), desk.person("compliance")
    target = desk.person()
    compliance.post(f"/api/v1/admin/users/{target.user_id}/freeze", {"reason": "test freeze"})
    entries = compliance.get(f"/api/v1/admin/audit?user_id={target.user_id}").json()
    assert entries[0]["action"] == "admin.freeze"
    assert entries[0]["actor_id"] == compliance.user_id
    assert entries[0]["details"]["reason"] == "test freeze"
    assert entries[0]["ip"] == "testclient"
    r = admin.get("/api/v1/admin/audit/verify")
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["entries"] >= 1
    code, text = asyncio.run(verify_audit(desk.settings, None, as_json=False))
    assert code == 0 and text.startswith("audit log OK")


def test_cli_create_user_checks_its_input(tmp_path: Path) -> None:
    from tradewind.runtime.admin_cli import CliError

    settings = load_settings(None, environ={}, overrides={"data_dir": tmp_path})
    with pytest.raises(CliError, match="10 to 256"):
        asyncio.run(create_user(settings, "boss@example.com", "short", "admin"))
    with pytest.raises(CliError, match="role must be"):
        asyncio.run(create_user(settings, "boss@example.com", PASSWORD, "root"))
    with pytest.raises(CliError, match="give a password"):
        asyncio.run(create_user(settings, "boss@example.com", None, "admin"))
    line = asyncio.run(create_user(settings, "Boss@Example.com", PASSWORD, "admin"))
    assert line == "user 1 (boss@example.com) created with role admin"
    code, text = asyncio.run(verify_audit(settings, None, as_json=True))
    assert code == 0 and json.loads(text)["entries"] == 1


# -- alerts and fee tiers (services/alerts.py, services/fees.py) ------------------------


def raise_alert(settings: Settings, kind: str, message: str) -> int:
    """Raise an alert the way a service in another process would."""
    from tradewind.adapters.local import SystemClock
    from tradewind.adapters.sql.alerts import SqlAlertStore
    from tradewind.adapters.sql.audit import SqlAuditStore
    from tradewind.adapters.sql.engine import Database
    from tradewind.services.alerts import AlertService
    from tradewind.services.audit import AuditLog

    async def go() -> int:
        db = Database.from_url(settings.resolved_database_url)
        try:
            clock = SystemClock()
            service = AlertService(SqlAlertStore(db), AuditLog(SqlAuditStore(db), clock), clock)
            return (await service.raise_alert(kind, "critical", message, {"n": 1})).id
        finally:
            await db.dispose()

    return asyncio.run(go())


def test_staff_see_alerts_and_acknowledge_once(desk: Desk) -> None:
    support, admin, user = desk.person("support"), desk.person("admin"), desk.person()
    alert_id = raise_alert(desk.settings, "payout.failed", f"payout failed {time.monotonic_ns()}")
    assert raise_alert(desk.settings, "payout.failed", "again") != alert_id  # another key
    page = support.get("/api/v1/admin/alerts").json()
    mine = next(a for a in page["items"] if a["id"] == alert_id)
    assert (mine["severity"], mine["status"], mine["details"]) == ("critical", "open", {"n": 1})
    assert page["open_count"] >= 2
    ack = f"/api/v1/admin/alerts/{alert_id}/acknowledge"
    r = user.post(ack)
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    r = support.post(ack)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["acknowledged_by"]) == ("acknowledged", support.user_id)
    r = admin.post(ack)
    assert (r.status_code, r.json()["code"]) == (409, "alert_not_open")
    r = admin.post("/api/v1/admin/alerts/999999999/acknowledge")
    assert (r.status_code, r.json()["code"]) == (404, "unknown_alert")
    acknowledged = support.get("/api/v1/admin/alerts?status=acknowledged").json()["items"]
    assert alert_id in [a["id"] for a in acknowledged]
    assert alert_id not in [a["id"] for a in support.get("/api/v1/admin/alerts").json()["items"]]
    one = support.get("/api/v1/admin/alerts?status=all&limit=1").json()
    older = support.get(f"/api/v1/admin/alerts?status=all&limit=1&before={one['next_before']}")
    assert older.json()["items"][0]["id"] < one["items"][0]["id"]
    entries = admin.get("/api/v1/admin/audit?limit=50").json()
    assert any(
        e["action"] == "admin.alert_acknowledged" and e["details"]["alert"] == alert_id
        for e in entries
    )


def test_admin_sets_fee_tiers_and_the_public_rate_follows(desk: Desk) -> None:
    admin, support, user = desk.person("admin"), desk.person("support"), desk.person()
    before = desk.client.get("/api/v1/fees").json()
    seq = desk.seq
    for who in (support, user):
        assert who.get("/api/v1/admin/fees").status_code == 403
        r = who.put("/api/v1/admin/fees/tiers/0", {"maker_bps": 1, "taker_bps": 2})
        assert (r.status_code, r.json()["code"]) == (403, "role_required")
        r = who.put(f"/api/v1/admin/users/{user.user_id}/tier", {"tier": 0})
        assert (r.status_code, r.json()["code"]) == (403, "role_required")
    for body, code in (
        ({"maker_bps": 10_001, "taker_bps": 5}, "invalid_fee_rate"),
        ({"maker_bps": -1, "taker_bps": 5}, "invalid_fee_rate"),
        ({"maker_bps": 1.5, "taker_bps": 5}, "invalid_fee_rate"),
        ({"maker_bps": "7", "taker_bps": 5}, "invalid_fee_rate"),
    ):
        r = admin.put("/api/v1/admin/fees/tiers/0", body)
        assert (r.status_code, r.json()["code"]) == (400, code), body
    r = admin.put("/api/v1/admin/fees/tiers/101", {"maker_bps": 1, "taker_bps": 1})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_tier")
    r = admin.put(f"/api/v1/admin/users/{user.user_id}/tier", {"tier": 57})
    assert (r.status_code, r.json()["code"]) == (404, "unknown_tier")
    r = admin.put("/api/v1/admin/users/999999999/tier", {"tier": 0})
    assert (r.status_code, r.json()["code"]) == (404, "unknown_user")
    assert desk.seq == seq and desk.client.get("/api/v1/fees").json() == before

    r = admin.put("/api/v1/admin/fees/tiers/0", {"maker_bps": 7, "taker_bps": 13})
    assert r.status_code == 200, r.text
    assert desk.client.get("/api/v1/fees").json() == {"maker_bps": 7, "taker_bps": 13}
    r = admin.put("/api/v1/admin/fees/tiers/3", {"maker_bps": 0, "taker_bps": 4})
    assert r.json() == {"tier": 3, "maker_bps": 0, "taker_bps": 4, "users": []}
    r = admin.put(f"/api/v1/admin/users/{user.user_id}/tier", {"tier": 3})
    assert r.json() == {"user_id": user.user_id, "tier": 3, "previous": 0}, r.text
    tiers = {t["tier"]: t for t in admin.get("/api/v1/admin/fees").json()["tiers"]}
    assert tiers[0] == {"tier": 0, "maker_bps": 7, "taker_bps": 13, "users": []}
    assert user.user_id in tiers[3]["users"]
    assert desk.client.get("/api/v1/fees").json() == {"maker_bps": 7, "taker_bps": 13}
    actions = [e["action"] for e in admin.get("/api/v1/admin/audit?limit=20").json()]
    assert "admin.fees_set" in actions and "admin.tier_set" in actions
    r = admin.put("/api/v1/admin/fees/tiers/0", before)
    assert r.status_code == 200
