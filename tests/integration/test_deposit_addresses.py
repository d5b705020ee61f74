"""Deposit addresses on SQLite and PostgreSQL and through the REST API of the embedded
demo exchange: one stable address per (user, network), the same after a restart and
under racing requests, precise refusals that store nothing, and a QR code that scans
back to the address."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError

from tradewind.adapters.sql import Database, SqlUserRepository
from tradewind.adapters.sql.deposit_addresses import SqlDepositAddressStore
from tradewind.runtime.bootstrap import build_embedded
from tradewind.runtime.config import Settings, load_settings
from tradewind.services.funding.defaults import demo_networks
from tradewind.services.funding.deposit_addresses import (
    DepositAddressService,
    DepositsDisabled,
    UnknownAssetOnNetwork,
    UnknownNetwork,
)
from tradewind.services.funding.derivation import AddressDeriver
from tradewind.services.funding.ports import DepositAddressStore, StoredDepositAddress

PASSWORD = "correct horse battery staple"

async_test = pytest.mark.asyncio


async def new_user(db: Database, n: int = 0) -> int:
    user = await SqlUserRepository(db).add(
        email=f"u{n}-{time.monotonic_ns()}@example.com", password_hash="x", created_at_ms=1
    )
    assert user is not None
    return user.id


@async_test
async def test_each_user_gets_one_stable_address_per_network(db: Database) -> None:
    store: DepositAddressStore = SqlDepositAddressStore(db)
    service = DepositAddressService(demo_networks(), store, lambda: 1_000)
    alice, bob = await new_user(db, 1), await new_user(db, 2)

    eth = await service.address_for(alice, "ETH", "ethereum")
    usdt = await service.address_for(alice, "USDT", "ethereum")
    btc = await service.address_for(alice, "BTC", "bitcoin")
    other = await service.address_for(bob, "ETH", "ethereum")

    assert eth.address == usdt.address  # one address per network, every asset on it
    assert eth.address.startswith("0x") and btc.address.startswith("bcrt1q")
    assert other.address != eth.address
    assert usdt.asset.contract is not None and usdt.asset.min_deposit == 1_000_000
    assert eth.path == f"0/{alice}"
    assert await store.owner_of("ethereum", eth.address) == alice
    assert await store.owner_of("ethereum", "0x" + "0" * 40) is None

    # a later service (a restart, another replica) hands out the stored address
    later = DepositAddressService(demo_networks(), SqlDepositAddressStore(db), lambda: 9_999)
    again = await later.address_for(alice, "ETH", "ethereum")
    assert (again.address, again.created_at_ms) == (eth.address, 1_000)


@async_test
async def test_racing_requests_store_one_address(db: Database) -> None:
    store = SqlDepositAddressStore(db)
    service = DepositAddressService(demo_networks(), store, lambda: 5)
    user = await new_user(db)
    results = await asyncio.gather(*(service.address_for(user, "BTC", "bitcoin") for _ in range(8)))
    assert len({r.address for r in results}) == 1
    stored = await store.get(user, "bitcoin")
    assert stored is not None and stored.address == results[0].address


@async_test
async def test_the_first_stored_address_wins_and_addresses_are_not_shared(db: Database) -> None:
    store = SqlDepositAddressStore(db)
    alice, bob = await new_user(db, 1), await new_user(db, 2)
    first = StoredDepositAddress(alice, "bitcoin", "bcrt1qfirst", "0/1", 1)
    assert await store.put_if_absent(first) == first
    assert await store.put_if_absent(replace(first, address="bcrt1qsecond")) == first
    with pytest.raises(IntegrityError):
        await store.put_if_absent(replace(first, user_id=bob))
    assert await store.get(bob, "bitcoin") is None


@async_test
async def test_refusals_are_precise_and_store_nothing(db: Database) -> None:
    store = SqlDepositAddressStore(db)
    catalog = demo_networks()
    no_keys = replace(catalog, networks=tuple(replace(n, xpub=None) for n in catalog.networks))
    eth = catalog.network("ethereum")
    assert eth is not None
    paused = replace(
        catalog,
        networks=tuple(
            replace(n, assets=tuple(replace(a, deposit_enabled=False) for a in n.assets))
            for n in catalog.networks
        ),
    )
    user = await new_user(db)
    service = DepositAddressService(catalog, store, lambda: 1)
    with pytest.raises(UnknownNetwork, match="known: bitcoin, ethereum, bsc"):
        await service.address_for(user, "ETH", "solana")
    with pytest.raises(UnknownAssetOnNetwork, match="it is on ethereum, bsc"):
        await service.address_for(user, "USDT", "bitcoin")
    with pytest.raises(DepositsDisabled):
        await DepositAddressService(paused, store, lambda: 1).address_for(user, "ETH", "ethereum")
    with pytest.raises(DepositsDisabled, match="no key configured"):
        await DepositAddressService(no_keys, store, lambda: 1).address_for(user, "ETH", "ethereum")
    for network in ("ethereum", "bitcoin", "bsc", "solana"):
        assert await store.get(user, network) is None


# -- the REST API ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Settings]]:
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": tmp_path_factory.mktemp("funding"),
            "demo": True,
            "demo_bot": False,
            "rate_limits": "off",
        },
    )
    with TestClient(build_embedded(settings).app) as client:
        yield client, settings


def login(client: TestClient) -> tuple[int, dict[str, str]]:
    email = f"dep-{time.monotonic_ns()}@example.com"
    r = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    user_id = int(r.json()["user_id"])
    r = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return user_id, {"Authorization": f"Bearer {r.json()['token']}"}


def test_the_api_gives_the_derived_address_with_a_qr_code(
    demo: tuple[TestClient, Settings],
) -> None:
    client, _settings = demo
    user_id, bearer = login(client)
    r = client.get("/api/v1/deposits/address?asset=USDT&network=bsc", headers=bearer)
    assert r.status_code == 200, r.text
    body = r.json()
    bsc = demo_networks().network("bsc")
    assert bsc is not None
    assert body["address"] == AddressDeriver(bsc).derive(user_id).address
    assert body["asset"] == "USDT" and body["network"] == "bsc"
    assert body["min_deposit"] == "1.000000" and body["confirmations"] == 15
    assert body["withdrawal_enabled"] is False
    assert body["qr_svg"].startswith("<svg") and "path" in body["qr_svg"]
    again = client.get("/api/v1/deposits/address?asset=USDT&network=bsc", headers=bearer)
    assert again.json()["address"] == body["address"]
    btc = client.get("/api/v1/deposits/address?asset=BTC&network=bitcoin", headers=bearer)
    assert btc.status_code == 200 and btc.json()["address"].startswith("bcrt1q")


def test_the_qr_code_encodes_the_address(demo: tuple[TestClient, Settings]) -> None:
    import segno

    from tradewind.gateways.rest.funding import qr_svg

    client, _settings = demo
    _user, bearer = login(client)
    body = client.get("/api/v1/deposits/address?asset=ETH&network=ethereum", headers=bearer).json()
    assert body["qr_svg"] == qr_svg(body["address"])
    assert segno.make(body["address"], error="m").designator  # a valid symbol was built


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("asset=ETH&network=solana", 400, "unknown_network"),
        ("asset=DOGE&network=ethereum", 400, "unknown_asset"),
        ("asset=BTC&network=ethereum", 400, "unknown_asset"),
        ("asset=eth&network=ethereum", 422, "invalid_request"),
        ("network=ethereum", 422, "invalid_request"),
    ],
)
def test_bad_requests_get_precise_errors(
    demo: tuple[TestClient, Settings], query: str, status: int, code: str
) -> None:
    client, _settings = demo
    _user, bearer = login(client)
    r = client.get(f"/api/v1/deposits/address?{query}", headers=bearer)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code


def test_an_address_needs_authentication(demo: tuple[TestClient, Settings]) -> None:
    client, _settings = demo
    r = client.get("/api/v1/deposits/address?asset=ETH&network=ethereum")
    assert r.status_code == 401


def test_networks_are_listed_with_their_rules(demo: tuple[TestClient, Settings]) -> None:
    client, _settings = demo
    r = client.get("/api/v1/funding/networks")
    assert r.status_code == 200
    nets = {n["network"]: n for n in r.json()}
    assert set(nets) == {"bitcoin", "ethereum", "bsc"}
    assert nets["bitcoin"]["chain"] == "regtest" and nets["bsc"]["chain_id"] == 97
    usdt = next(a for a in nets["ethereum"]["assets"] if a["asset"] == "USDT")
    assert usdt["withdrawal_fee"] == "5.000000" and usdt["contract"].startswith("0x")


def test_without_networks_the_routes_say_so(tmp_path: Path) -> None:
    settings = load_settings(
        None, environ={}, overrides={"data_dir": tmp_path, "rate_limits": "off"}
    )
    with TestClient(build_embedded(settings).app) as client:
        r = client.get("/api/v1/funding/networks")
        assert r.status_code == 503 and r.json()["code"] == "funding_unavailable"
