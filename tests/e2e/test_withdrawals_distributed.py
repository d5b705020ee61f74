"""End to end: a withdrawal in a distributed deployment (core, projector, two API
replicas on PostgreSQL, Redis and RabbitMQ), paid out by ``tradewind withdrawals`` as
its own process through ``tradewind signer`` (its key in a SoftHSM2 token) onto a chain
served over JSON-RPC (eth-tester behind tests/support/evm_rpc.py).

A verified user at KYC level 1 adds an address, asks one replica for a withdrawal,
watches it on the other replica go from approved to broadcast, and once the block has
its confirmations, to confirmed: the destination holds the amount less the fee on chain
and the user's balance has lost the amount once. The same process then books the
payout's gas (from its receipt) in the core from the withdrawal-fee account (ADR 0034):
no extra process."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_utils.address import to_checksum_address

from tests.e2e.test_distributed import PASSWORD, Deployment, eventually
from tests.support.distributed import Process
from tests.support.evm_rpc import EvmRpcNode
from tests.support.mail import verify_email
from tests.support.server import free_port
from tests.support.softhsm import SoftToken, init_token, softhsm_missing
from tradewind.adapters.sql import Database
from tradewind.adapters.sql.network_fees import SqlNetworkFeeStore
from tradewind.services.funding.network_fees import NetworkFee
from tradewind.services.kyc import sign_webhook

SECRET = "w" * 40
KYC_SECRET = "kyc-secret-0123456789"
TO = to_checksum_address("0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB")
RUNNING = "Tradewind withdrawals processor running"


def config(path: Path, node: EvmRpcNode, token: SoftToken, signer_port: int) -> Path:
    path.write_text(
        f"""
[funding.networks.ethereum]
chain_id = {node.chain_id}

[funding.networks.ethereum.assets.ETH]
decimals = 8
chain_decimals = 18
confirmations = 2
min_deposit = "0.001"
withdrawal_fee = "0.002"
auto_approve_below = "100"

[funding.withdrawals]
cooling_off_hours = 0
require_2fa = false
signer_url = "http://127.0.0.1:{signer_port}"
signer_secret = "{SECRET}"
rpc = {{ ethereum = "{node.url}" }}
poll_s = 0.2

[funding.signer]
library = "{token.library}"
token_label = "{token.label}"
secret = "{SECRET}"
port = {signer_port}
keys = {{ ethereum = "hot-e2e" }}
"""
    )
    return path


@pytest.fixture
def node() -> Iterator[EvmRpcNode]:
    with EvmRpcNode().running() as n:
        yield n


@pytest.fixture
def deployment(
    tmp_path: Path, pg_url: str, redis_url: str, amqp_url: str, node: EvmRpcNode
) -> Iterator[Deployment]:
    if softhsm_missing():
        pytest.fail("SoftHSM2 is missing: apt-get install -y softhsm2 (make test does)")
    token = init_token(tmp_path / "softhsm")
    signer_port = free_port()
    conf = config(tmp_path / "tradewind.toml", node, token, signer_port)
    d = Deployment(tmp_path, pg_url, redis_url, amqp_url)
    extra = {"TRADEWIND_CONFIG": str(conf), "TRADEWIND_KYC_WEBHOOK_SECRETS": f"sumsub={KYC_SECRET}"}
    for p in (d.core, d.projector, *d.apis):
        p.env.update(extra)
    base = {**d.core.env, **extra}
    d.signer = Process(  # type: ignore[attr-defined]
        "signer",
        ["signer"],
        {
            **base,
            "TRADEWIND_DATA_DIR": str(tmp_path / "s"),
            "SOFTHSM2_CONF": str(token.conf),
            "TRADEWIND_SIGNER_PIN": token.pin,
        },
        tmp_path,
    )
    d.payouts = Process(  # type: ignore[attr-defined]
        "withdrawals",
        ["withdrawals"],
        {**base, "TRADEWIND_DATA_DIR": str(tmp_path / "w")},
        tmp_path,
    )
    try:
        yield d
    finally:
        d.stop(d.payouts, d.signer)  # type: ignore[attr-defined]
        d.cleanup()


def test_a_withdrawal_is_paid_out_by_the_processor_and_signer_processes(
    deployment: Deployment, node: EvmRpcNode, pg_url: str
) -> None:
    d = deployment
    signer: Process = d.signer  # type: ignore[attr-defined]
    payouts: Process = d.payouts  # type: ignore[attr-defined]
    d.start()
    signer.start(lambda: signer.printed("hot wallet on ethereum: 0x"))
    hot = signer.tail(10**6).split("hot wallet on ethereum: ", 1)[1].split()[0]
    node.pay(hot, 10 * 10**18)
    payouts.start(lambda: payouts.printed(RUNNING))

    one, two = (httpx.Client(base_url=url, timeout=10.0) for url in d.urls)
    email = f"payout-{time.monotonic_ns()}@example.com"
    r = one.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    user_id = r.json()["user_id"]
    verify_email(one, email)  # type: ignore[arg-type]
    token = one.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {token.json()['token']}"}
    body = json.dumps(
        {"event_id": "e2e-1", "user_id": user_id, "result": "approved", "level": 1}
    ).encode()
    r = one.post(
        "/api/v1/kyc/callbacks/sumsub",
        content=body,
        headers={
            "X-Signature": sign_webhook(KYC_SECRET.encode(), body),
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 200, r.text
    r = one.post("/api/v1/demo/faucet", json={"asset": "ETH", "amount": "5"}, headers=bearer)
    assert r.status_code == 200, r.text
    r = one.post(
        "/api/v1/withdrawals/addresses",
        json={"network": "ethereum", "address": TO, "label": "e2e"},
        headers=bearer,
    )
    assert r.status_code == 201, r.text
    r = one.post(
        "/api/v1/withdrawals",
        json={"asset": "ETH", "network": "ethereum", "address": TO, "amount": "1.5"},
        headers={**bearer, "Idempotency-Key": "e2e-payout-0001"},
    )
    assert r.status_code == 201 and r.json()["status"] == "approved", r.text
    wid = r.json()["id"]

    def withdrawal() -> dict[str, Any]:
        answer: dict[str, Any] = two.get(f"/api/v1/withdrawals/{wid}", headers=bearer).json()
        return answer

    sent = eventually(withdrawal, lambda w: w["status"] == "broadcast", timeout_s=30)
    assert sent["status"] == "broadcast", (sent, payouts.tail(), signer.tail())
    node.mine(1)
    done = eventually(withdrawal, lambda w: w["status"] == "confirmed", timeout_s=30)
    assert done["status"] == "confirmed", (done, payouts.tail())
    assert [t["status"] for t in done["timeline"]] == [
        "holding",
        "approved",
        "signing",
        "signed",
        "broadcast",
        "settling",
        "confirmed",
    ]
    assert node.balance(TO) == 149_800_000 * 10**10

    def eth() -> dict[str, Decimal]:
        for b in two.get("/api/v1/balances", headers=bearer).json():
            if b["asset"] == "ETH":
                return {"available": Decimal(b["available"]), "locked": Decimal(b["locked"])}
        return {}

    settled = eventually(eth, lambda b: b.get("locked") == 0, timeout_s=10)
    assert settled == {"available": Decimal("3.5"), "locked": Decimal(0)}

    async def fee_row() -> NetworkFee | None:
        db = Database.from_url(pg_url)
        try:
            return await SqlNetworkFeeStore(db).get("withdrawal", wid)
        finally:
            await db.dispose()

    row = eventually(lambda: asyncio.run(fee_row()), lambda f: f is not None and f.seq is not None)
    receipt = node.w3.eth.get_transaction_receipt(done["txid"])
    gas = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    assert row is not None and (row.status, row.fee_chain, row.amount) == (
        "booked",
        gas,
        -(-gas // 10**10),
    ), payouts.tail()
    one.close()
    two.close()
