"""``PUT /api/v1/admin/funding/networks/{network}/assets/{asset}`` (ADR 0032) through the
embedded exchange: admins only (compliance and users refused, audited), stored in SQL,
and seen at once by the network listing, the withdrawal rules and the deposit-address
route of the same process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.mail import verify_email
from tradewind.runtime.admin_cli import create_user
from tradewind.runtime.bootstrap import build_embedded
from tradewind.runtime.config import Settings, load_settings

PASSWORD = "correct horse battery staple"
ROUTE = "/api/v1/admin/funding/networks/ethereum/assets/USDT"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Settings]]:
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": tmp_path_factory.mktemp("switches"),
            "demo": True,
            "demo_bot": False,
            "rate_limits": "off",
        },
    )
    exchange = build_embedded(settings)
    with TestClient(exchange.app) as client:
        yield client, settings


def login(client: TestClient, settings: Settings, role: str) -> dict[str, str]:
    email = f"{role}-{time.monotonic_ns()}@example.com"
    r = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    verify_email(client, email)
    if role != "user":
        asyncio.run(create_user(settings, email, None, role))
    r = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def usdt_on_ethereum(body: Any) -> dict[str, Any]:
    for n in body:
        if n["network"] == "ethereum":
            return next(a for a in n["assets"] if a["asset"] == "USDT")
    raise AssertionError(body)


def test_admins_switch_deposits_and_withdrawals_and_every_reader_follows(
    app: tuple[TestClient, Settings],
) -> None:
    client, settings = app
    admin = login(client, settings, "admin")
    compliance = login(client, settings, "compliance")
    user = login(client, settings, "user")

    for who in (compliance, user):
        r = client.put(ROUTE, json={"deposit_enabled": False}, headers=who)
        assert (r.status_code, r.json()["code"]) == (403, "role_required"), r.text
    r = client.put(
        "/api/v1/admin/funding/networks/ethereum/assets/DOGE",
        json={"deposit_enabled": False},
        headers=admin,
    )
    assert (r.status_code, r.json()["code"]) == (404, "unknown_funding_asset")
    r = client.put(ROUTE, json={}, headers=admin)
    assert (r.status_code, r.json()["code"]) == (400, "empty_switch")
    r = client.put(ROUTE, json={"deposit_enabled": "no"}, headers=admin)
    assert r.status_code == 422

    r = client.get("/api/v1/deposits/address?asset=USDT&network=ethereum", headers=user)
    assert r.status_code == 200, r.text

    r = client.put(
        ROUTE, json={"deposit_enabled": False, "withdrawal_enabled": False}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert (r.json()["deposit_enabled"], r.json()["withdrawal_enabled"]) == (False, False)

    listed = usdt_on_ethereum(client.get("/api/v1/funding/networks").json())
    assert (listed["deposit_enabled"], listed["withdrawal_enabled"]) == (False, False)
    rules = client.get("/api/v1/withdrawals/rules").json()
    eth = next(n for n in rules["networks"] if n["network"] == "ethereum")
    assert not next(a for a in eth["assets"] if a["asset"] == "USDT")["withdrawal_enabled"]
    r = client.get("/api/v1/deposits/address?asset=USDT&network=ethereum", headers=user)
    assert (r.status_code, r.json()["code"]) == (409, "deposits_disabled")
    r = client.get("/api/v1/deposits/address?asset=ETH&network=ethereum", headers=user)
    assert r.status_code == 200, r.text  # the other asset of the network is not touched

    r = client.put(ROUTE, json={"deposit_enabled": True}, headers=admin)
    assert (r.json()["deposit_enabled"], r.json()["withdrawal_enabled"]) == (True, False)
    r = client.get("/api/v1/deposits/address?asset=USDT&network=ethereum", headers=user)
    assert r.status_code == 200, r.text

    audit = client.get("/api/v1/admin/audit?limit=50", headers=admin).json()
    items = audit["items"] if isinstance(audit, dict) else audit
    actions = [e["action"] for e in items]
    assert actions.count("admin.funding_switch") == 2
    assert "admin.denied" in actions
