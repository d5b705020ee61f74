"""Leverage caps per fee tier through the back office and the margin API, on the embedded
exchange (the demo's BTC-USDT at 10x, initial level 1.1112): ``PUT``/``DELETE
/api/v1/admin/margin/tiers/{tier}`` (admin role), the caps in ``GET /api/v1/margin/config``
and a capped user's max-borrowable and account view following the cap.
"""

from __future__ import annotations

import asyncio

from tests.integration.test_margin_api import ISO, Env, get, post
from tests.integration.test_margin_api import env as env  # the fixture
from tradewind.runtime.admin_cli import create_user

PATH = "/api/v1/admin/margin/tiers"


def test_admin_caps_a_tier_and_its_users_borrow_less(env: Env) -> None:
    admin = env.user()
    asyncio.run(create_user(env.exchange.settings, admin.email, None, "admin"))  # type: ignore[attr-defined]
    trader = env.user(USDT="2000")
    c = env.client

    r = c.put(f"{PATH}/1", json={"max_leverage": 3}, headers=trader.bearer)
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    r = c.delete(f"{PATH}/1", headers=trader.bearer)
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    r = c.put(f"{PATH}/1", json={"max_leverage": 11}, headers=admin.bearer)
    assert (r.status_code, r.json()["code"]) == (422, "leverage_too_high")
    r = c.put(f"{PATH}/7", json={"max_leverage": 3}, headers=admin.bearer)
    assert (r.status_code, r.json()["code"]) == (404, "unknown_tier")

    r = c.put(
        "/api/v1/admin/fees/tiers/1", json={"maker_bps": 5, "taker_bps": 8}, headers=admin.bearer
    )
    assert r.status_code == 200, r.text
    r = c.put(f"/api/v1/admin/users/{trader.user_id}/tier", json={"tier": 1}, headers=admin.bearer)
    assert r.status_code == 200, r.text
    r = c.put(f"{PATH}/1", json={"max_leverage": 3}, headers=admin.bearer)
    assert r.status_code == 200, r.text
    assert c.get("/api/v1/margin/config").json()["tier_caps"] == [{"tier": 1, "max_leverage": 3}]

    r = post(
        trader,
        "/api/v1/margin/transfer",
        {"asset": "USDT", "amount": "1000", "direction": "in", **ISO},
    )
    assert r.status_code == 200, r.text
    # 3x: initial 1.5, 1000 * 10000 >= 5000 * x -> 2000 USDT
    most = get(trader, "/api/v1/margin/max-borrowable", asset="USDT", **ISO)["amount"]
    assert most == "2000.000000"
    w = next(
        w for w in get(trader, "/api/v1/margin/account")["wallets"] if w["symbol"] == "BTC-USDT"
    )
    assert (w["max_leverage"], w["initial_level"]) == (3, "1.5000")
    r = post(trader, "/api/v1/margin/borrow", {"asset": "USDT", "amount": "2000.000001", **ISO})
    assert (r.status_code, r.json()["code"]) == (422, "below_initial_margin")

    r = c.delete(f"{PATH}/1", headers=admin.bearer)
    assert r.status_code == 200, r.text
    assert c.get("/api/v1/margin/config").json()["tier_caps"] == []
    # the symbol's 10x again: 10**9 * 10000 // 1112 minor units
    most = get(trader, "/api/v1/margin/max-borrowable", asset="USDT", **ISO)["amount"]
    assert most == "8992.805755"
