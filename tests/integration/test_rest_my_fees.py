"""``GET /api/v1/fees/mine``: a user's own fee tier and rates, as the core charges them.

The web order form previews the fee with these rates, so a user an admin put on
another tier sees what they will pay, not the base rate. Embedded exchange (SQLite).
"""

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


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Settings]]:
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": tmp_path_factory.mktemp("myfees"),
            "demo": True,
            "demo_bot": False,
            "rate_limits": "off",
        },
    )
    with TestClient(build_embedded(settings).app) as client:
        yield client, settings


def login(client: TestClient, settings: Settings, role: str = "user") -> tuple[int, Any]:
    email = f"{role}-{time.monotonic_ns()}@example.com"
    r = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    user_id = r.json()["user_id"]
    verify_email(client, email)
    if role != "user":
        asyncio.run(create_user(settings, email, None, role))
    r = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    return user_id, {"Authorization": f"Bearer {r.json()['token']}"}


def test_a_user_sees_their_own_tier_and_rates(site: tuple[TestClient, Settings]) -> None:
    client, settings = site
    assert client.get("/api/v1/fees/mine").status_code == 401
    _, admin = login(client, settings, "admin")
    user, mine = login(client, settings)
    _, other = login(client, settings)
    base = client.get("/api/v1/fees").json()
    assert client.get("/api/v1/fees/mine", headers=mine).json() == {"tier": 0, **base}

    r = client.put(
        "/api/v1/admin/fees/tiers/4", json={"maker_bps": 1, "taker_bps": 3}, headers=admin
    )
    assert r.status_code == 200, r.text
    r = client.put(f"/api/v1/admin/users/{user}/tier", json={"tier": 4}, headers=admin)
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/fees/mine", headers=mine).json() == {
        "tier": 4,
        "maker_bps": 1,
        "taker_bps": 3,
    }
    # everyone else still pays the base rate, which stays the public figure
    assert client.get("/api/v1/fees/mine", headers=other).json() == {"tier": 0, **base}
    assert client.get("/api/v1/fees").json() == base
