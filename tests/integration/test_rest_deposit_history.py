"""The deposit history on the embedded exchange: a chain deposit (the real watcher on
an eth-tester chain, crediting through the exchange's core) listed pending with its
confirmations, then credited; a bank transfer from an uploaded camt.053 listed
credited; another user's deposit id is 404; the staff list's roles and filters; bad
filters are 400; pages by cursor cover every deposit once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import web3
from fastapi.testclient import TestClient
from web3.types import Wei

from tests.support.camt import Entry, camt053
from tests.support.fake_stripe import event, fake_stripe, signature
from tests.support.mail import verify_email
from tradewind.adapters.chain.web3_reader import Web3ChainReader
from tradewind.adapters.sql.chain_watch import SqlWatcherStore
from tradewind.adapters.sql.deposit_addresses import SqlDepositAddressStore
from tradewind.runtime.admin_cli import create_user
from tradewind.runtime.bootstrap import EmbeddedExchange, build_embedded
from tradewind.runtime.config import Settings, load_settings
from tradewind.runtime.funding import network_catalog
from tradewind.services.funding.defaults import TEST_MNEMONIC_XPUB_EVM
from tradewind.services.funding.watcher import ChainWatcher

PASSWORD = "correct horse battery staple"
XML = {"Content-Type": "application/xml"}
WEBHOOK_SECRET = "whsec_test_0123456789abcdef"
CONFIRMATIONS = 3


@dataclass
class Person:
    user_id: int
    headers: dict[str, str]


@dataclass
class Env:
    client: TestClient
    exchange: EmbeddedExchange
    settings: Settings
    w3: web3.Web3
    watcher: ChainWatcher

    def person(self, role: str = "user") -> Person:
        email = f"{role}-{time.monotonic_ns()}@example.com"
        r = self.client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        user_id = int(r.json()["user_id"])
        verify_email(self.client, email)
        if role != "user":
            asyncio.run(create_user(self.settings, email, None, role))
        r = self.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return Person(user_id, {"Authorization": f"Bearer {r.json()['token']}"})

    def address(self, p: Person) -> str:
        r = self.client.get(
            "/api/v1/deposits/address?asset=ETH&network=ethereum", headers=p.headers
        )
        assert r.status_code == 200, r.text
        return str(r.json()["address"])

    def send(self, to: str, wei: int) -> str:
        w3 = self.w3
        txid = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": to, "value": Wei(wei)})
        w3.eth.wait_for_transaction_receipt(txid)
        return txid.to_0x_hex()

    def mine(self, n: int) -> None:
        self.w3.provider.ethereum_tester.mine_blocks(n)  # type: ignore[attr-defined]

    def step(self) -> None:
        """One watcher pass on the exchange's event loop (its core, its database)."""
        portal = self.client.portal
        assert portal is not None
        portal.call(self.watcher.step)

    def deposits(self, p: Person, query: str = "") -> list[dict[str, Any]]:
        r = self.client.get(f"/api/v1/deposits{query}", headers=p.headers)
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    def balance(self, user: int, asset: str) -> int:
        core = self.exchange.jcore
        assert core is not None
        return core.core.available(user, asset)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with fake_stripe() as stripe:
        yield from _env(tmp_path_factory, stripe.url)


def _env(tmp_path_factory: pytest.TempPathFactory, stripe_url: str) -> Iterator[Env]:
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": tmp_path_factory.mktemp("deposits"),
            "demo": True,
            "demo_bot": False,
            "rate_limits": "off",
            "funding": {
                "networks": {
                    "ethereum": {
                        "chain_id": 1337,
                        "xpub": TEST_MNEMONIC_XPUB_EVM,
                        "assets": {
                            "ETH": {
                                "decimals": 8,
                                "chain_decimals": 18,
                                "confirmations": CONFIRMATIONS,
                                "min_deposit": "0.001",
                                "withdrawal_fee": "0.002",
                            }
                        },
                    }
                }
            },
            "fiat": {
                "currencies": {"EUR": 2},
                "require_kyc": False,
                "bank": {
                    "iban": "DE89 3704 0044 0532 0130 00",
                    "bic": "COBADEFFXXX",
                    "beneficiary": "Tradewind Test",
                },
                "stripe": {
                    "secret_key": "sk_test_fake",
                    "webhook_secret": WEBHOOK_SECRET,
                    "max_amount": "5000",
                    "api_base": stripe_url,
                },
            },
        },
    )
    exchange = build_embedded(settings)
    catalog = network_catalog(settings)
    assert catalog is not None
    net = catalog.network("ethereum")
    assert net is not None
    w3 = web3.Web3(web3.EthereumTesterProvider())
    watcher = ChainWatcher(
        net,
        Web3ChainReader(w3),
        SqlWatcherStore(exchange.db),
        SqlDepositAddressStore(exchange.db),
        exchange.bus,
        exchange.clock.now_ms,
    )
    with TestClient(exchange.app) as client:
        for _ in range(500):  # the core lists the demo assets, the fiat pass adds EUR
            core = exchange.jcore
            if core is not None and {"ETH", "EUR"} <= set(core.core.assets):
                break
            time.sleep(0.02)
        yield Env(client, exchange, settings, w3, watcher)


def test_a_chain_deposit_is_pending_with_its_confirmations_then_credited(env: Env) -> None:
    alice, bob = env.person(), env.person()
    txid = env.send(env.address(alice), 5 * 10**17)  # 0.5 ETH
    env.step()
    (d,) = env.deposits(alice)
    assert d["id"] == f"chain:ethereum:{txid}:-1" and d["kind"] == "chain"
    assert (d["asset"], d["network"], d["txid"]) == ("ETH", "ethereum", txid)
    assert Decimal(d["amount"]) == Decimal("0.5")
    assert d["status"] == "pending"
    assert (d["confirmations"], d["confirmations_required"]) == (1, CONFIRMATIONS)
    assert d["created_at"] is not None and d["block_number"] >= 1
    assert env.balance(alice.user_id, "ETH") == 0

    env.mine(CONFIRMATIONS - 2)  # one short
    env.step()
    (d,) = env.deposits(alice)
    assert (d["status"], d["confirmations"]) == ("pending", CONFIRMATIONS - 1)

    env.mine(1)
    env.step()
    (d,) = env.deposits(alice)
    assert (d["status"], d["confirmations"]) == ("credited", CONFIRMATIONS)
    assert d["updated_at"] >= d["created_at"]
    assert env.balance(alice.user_id, "ETH") == 50_000_000

    r = env.client.get(f"/api/v1/deposits/{d['id']}", headers=alice.headers)
    assert r.status_code == 200 and r.json() == d
    # the same id asked by another user: as if it did not exist
    r = env.client.get(f"/api/v1/deposits/{d['id']}", headers=bob.headers)
    assert r.status_code == 404 and r.json()["code"] == "unknown_deposit"
    r = env.client.get("/api/v1/deposits/chain:ethereum:0xdead:-1", headers=alice.headers)
    assert r.status_code == 404 and r.json()["code"] == "unknown_deposit"
    assert env.deposits(bob) == []
    assert env.client.get("/api/v1/deposits").status_code == 401
    # the address route is still the address route
    assert env.address(alice).startswith("0x")

    assert [x["id"] for x in env.deposits(alice, "?status=credited&asset=ETH")] == [d["id"]]
    assert env.deposits(alice, "?status=pending,orphaned") == []
    assert env.deposits(alice, "?network=bank") == []


def test_a_bank_transfer_from_a_statement_is_listed_credited(env: Env) -> None:
    alice = env.person()
    officer, support = env.person("compliance"), env.person("support")
    ref = env.client.get(
        "/api/v1/fiat/deposit-instructions?currency=EUR", headers=alice.headers
    ).json()["reference"]
    entry = f"HIST-{time.monotonic_ns()}"
    data = camt053(
        [
            Entry("250.00", ustrd=[f"deposit {ref}"], ref=entry),
            Entry("12.00", ustrd=["no reference"], ref=f"{entry}-X"),
        ],
        message_id=entry,
    )
    r = env.client.post(
        "/api/v1/admin/fiat/statements", content=data, headers={**XML, **officer.headers}
    )
    assert r.status_code == 200, r.text
    assert env.balance(alice.user_id, "EUR") == 25_000
    (d,) = env.deposits(alice)
    assert d["id"].startswith("bank:") and d["kind"] == "bank"
    assert (d["asset"], d["network"], d["amount"]) == ("EUR", "bank", "250.00")
    assert (d["status"], d["reference"], d["txid"]) == ("credited", entry, None)
    assert d["confirmations"] is None and d["booking_date"]
    r = env.client.get(f"/api/v1/deposits/{d['id']}", headers=alice.headers)
    assert r.status_code == 200 and r.json()["status"] == "credited"

    # staff see the line nobody's reference matched too, with the queue's own reason
    r = env.client.get("/api/v1/admin/deposits?network=bank&limit=500", headers=support.headers)
    assert r.status_code == 200, r.text
    rows = {x["reference"]: x for x in r.json()["items"]}
    assert rows[entry]["user_id"] == alice.user_id
    stray = rows[f"{entry}-X"]
    assert (stray["user_id"], stray["status"], stray["source_status"]) == (
        None,
        "pending",
        "review",
    )
    assert stray["reason"] == "no_reference"


def test_a_card_payment_is_listed_pending_then_credited(env: Env) -> None:
    erin = env.person()
    r = env.client.post(
        "/api/v1/fiat/card-deposits",
        json={"currency": "EUR", "amount": "12.50"},
        headers=erin.headers,
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    (d,) = env.deposits(erin)
    assert (d["id"], d["kind"], d["network"], d["reference"]) == (
        f"card:{pid}",
        "card",
        "card",
        pid,
    )
    assert (d["asset"], d["amount"], d["status"]) == ("EUR", "12.50", "pending")
    paid = event(pid, 1250, "eur")
    hook = env.client.post(
        "/api/v1/fiat/stripe/webhook",
        content=paid,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": signature(paid, WEBHOOK_SECRET),
        },
    )
    assert hook.status_code == 200 and hook.json()["status"] == "credited", hook.text
    (d,) = env.deposits(erin, "?network=card")
    assert d["status"] == "credited" and d["updated_at"] >= d["created_at"]
    assert env.balance(erin.user_id, "EUR") == 1_250


def test_staff_list_needs_a_staff_role_and_filters(env: Env) -> None:
    carol, support = env.person(), env.person("support")
    txid = env.send(env.address(carol), 2 * 10**17)
    env.step()
    r = env.client.get("/api/v1/admin/deposits", headers=carol.headers)
    assert r.status_code == 403 and r.json()["code"] == "role_required"
    assert env.client.get("/api/v1/admin/deposits").status_code == 401

    q = f"?user_id={carol.user_id}&network=ethereum&asset=ETH&status=pending"
    r = env.client.get(f"/api/v1/admin/deposits{q}", headers=support.headers)
    assert r.status_code == 200, r.text
    (d,) = r.json()["items"]
    assert (d["txid"], d["user_id"], d["status"], d["source_status"]) == (
        txid,
        carol.user_id,
        "pending",
        "pending",
    )
    assert d["confirmations_required"] == CONFIRMATIONS
    r = env.client.get(f"/api/v1/admin/deposits/{d['id']}", headers=support.headers)
    assert r.status_code == 200 and r.json()["user_id"] == carol.user_id
    r = env.client.get(
        f"/api/v1/admin/deposits?user_id={carol.user_id}&status=credited",
        headers=support.headers,
    )
    assert r.json()["items"] == []
    env.mine(CONFIRMATIONS)
    env.step()  # credited, so the other tests' lists stay settled


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("?status=lost", 400, "invalid_status"),
        ("?status=,", 400, "invalid_status"),
        ("?network=dogecoin", 400, "unknown_network"),
        ("?asset=eth", 422, "invalid_request"),
        ("?limit=0", 422, "invalid_request"),
        ("?cursor=yesterday", 400, "invalid_cursor"),
        ("?cursor=12~nowhere:1", 400, "invalid_cursor"),
        ("?user_id=3", 400, "unknown_parameter"),
    ],
)
def test_bad_filters_are_refused(env: Env, query: str, status: int, code: str) -> None:
    p = env.person()
    r = env.client.get(f"/api/v1/deposits{query}", headers=p.headers)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text


def test_pages_by_cursor_list_every_deposit_once(env: Env) -> None:
    dave = env.person()
    address = env.address(dave)
    sent = {env.send(address, (i + 1) * 10**16) for i in range(3)}
    env.step()  # one pass: the three are seen in the same millisecond or nearly
    env.mine(1)
    sent.add(env.send(address, 9 * 10**16))
    env.step()
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        r = env.client.get(f"/api/v1/deposits?limit=1{cursor}", headers=dave.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        seen.extend(x["txid"] for x in body["items"])
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"
    assert len(seen) == 4 and set(seen) == sent
    whole = [x["txid"] for x in env.deposits(dave)]
    assert whole == seen  # newest first, the same order page by page
