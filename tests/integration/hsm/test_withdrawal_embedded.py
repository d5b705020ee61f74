"""A withdrawal from the REST API to the chain inside the embedded exchange: the payout
loop runs as the exchange's own task, signs through the signer service (its HTTP app in
process, the key in SoftHSM2) and pays on an in-process chain; the user watches the
status move to confirmed and the balance settle; the same loop then books the payout's
gas (read from its receipt) from the withdrawal-fee account (ADR 0034)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import web3
from eth_utils.address import to_checksum_address
from fastapi.testclient import TestClient
from web3.types import Wei

from tests.support.mail import verify_email
from tests.support.softhsm import SoftToken
from tradewind.adapters.chain.evm_payout import Web3PayoutChain
from tradewind.adapters.chain.evm_tx import EvmTxCodec
from tradewind.adapters.signer_http import HttpSignerClient
from tradewind.adapters.sql import Database
from tradewind.adapters.sql.audit import SqlAuditStore
from tradewind.adapters.sql.network_fees import SqlNetworkFeeStore
from tradewind.adapters.sql.withdrawals import SqlWithdrawalStore
from tradewind.gateways.signer_api import create_signer_app
from tradewind.runtime.bootstrap import build_embedded
from tradewind.runtime.config import load_settings
from tradewind.services.audit import AuditLog
from tradewind.services.funding.network_fees import NetworkFee
from tradewind.services.funding.payouts import PayoutProcessor
from tradewind.services.funding.signer import SignerService
from tradewind.services.funding.withdrawals import FEE_ACCOUNT
from tradewind.services.kyc import sign_webhook

PASSWORD = "correct horse battery staple"
KYC_SECRET = "provider-secret-0123456789"
SECRET = "e" * 40
TO = to_checksum_address("0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB")


def until(check: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_rest_withdrawal_is_paid_out_by_the_embedded_payout_loop(
    tmp_path: Path, softhsm_token: SoftToken
) -> None:
    w3 = web3.Web3(web3.EthereumTesterProvider())
    chain_id = int(w3.eth.chain_id)
    funding = {
        "networks": {
            "ethereum": {
                "chain_id": chain_id,
                "assets": {
                    "ETH": {
                        "decimals": 8,
                        "chain_decimals": 18,
                        "confirmations": 2,
                        "min_deposit": "0.001",
                        "withdrawal_fee": "0.002",
                        "auto_approve_below": "10",
                    }
                },
            }
        },
        "withdrawals": {"cooling_off_hours": 0, "require_2fa": False, "poll_s": 0.05},
    }
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": tmp_path / "data",
            "demo": True,
            "demo_bot": False,
            "rate_limits": "off",
            "kyc_webhook_secrets": f"sumsub={KYC_SECRET}",
            "funding": funding,
        },
    )
    exchange = build_embedded(settings)
    service = exchange.withdrawals
    assert service is not None and exchange.payouts is None  # no signer configured
    with softhsm_token.open() as custody:
        signer = SignerService(
            store=SqlWithdrawalStore(exchange.db),
            custody=custody,
            codec=EvmTxCodec(),
            audit=AuditLog(SqlAuditStore(exchange.db), exchange.clock),
            catalog=service.catalog,
            keys={"ethereum": f"hot-embedded-{time.monotonic_ns()}"},
            secret=SECRET,
            now_ms=exchange.clock.now_ms,
        )
        hot = signer.ensure_keys()["ethereum"]
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": hot, "value": Wei(10**19)})
        )
        client = HttpSignerClient(
            "http://signer",
            SECRET,
            exchange.clock.now_ms,
            transport=httpx.ASGITransport(app=create_signer_app(signer)),
        )
        # what build_processor wires from signer_url and rpc, with in-process ends
        exchange.payouts = PayoutProcessor(
            service, {"ethereum": Web3PayoutChain(w3, chain_id)}, client
        )
        with TestClient(exchange.app) as http:
            email = f"embedded-{time.monotonic_ns()}@example.com"
            r = http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
            user_id = r.json()["user_id"]
            verify_email(http, email)
            token = http.post(
                "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
            ).json()["token"]
            bearer = {"Authorization": f"Bearer {token}"}
            body = json.dumps(
                {"event_id": "embedded-1", "user_id": user_id, "result": "approved", "level": 1}
            ).encode()
            r = http.post(
                "/api/v1/kyc/callbacks/sumsub",
                content=body,
                headers={
                    "X-Signature": sign_webhook(KYC_SECRET.encode(), body),
                    "Content-Type": "application/json",
                },
            )
            assert r.status_code == 200, r.text
            r = http.post(
                "/api/v1/demo/faucet", json={"asset": "ETH", "amount": "5"}, headers=bearer
            )
            assert r.status_code == 200, r.text
            r = http.post(
                "/api/v1/withdrawals/addresses",
                json={"network": "ethereum", "address": TO, "label": "cold storage"},
                headers=bearer,
            )
            assert r.status_code == 201, r.text
            r = http.post(
                "/api/v1/withdrawals",
                json={"asset": "ETH", "network": "ethereum", "address": TO, "amount": "1.25"},
                headers={**bearer, "Idempotency-Key": "embedded-payout-1"},
            )
            assert r.status_code == 201, r.text
            wid = r.json()["id"]

            def status() -> str:
                return str(http.get(f"/api/v1/withdrawals/{wid}", headers=bearer).json()["status"])

            until(lambda: status() == "broadcast", "the broadcast")
            portal = http.portal
            assert portal is not None
            portal.call(_mine, w3)
            until(lambda: status() == "confirmed", "the confirmation")

            detail = http.get(f"/api/v1/withdrawals/{wid}", headers=bearer).json()
            assert detail["txid"] and detail["block_number"]
            assert w3.eth.get_balance(TO) == 124_800_000 * 10**10  # 1.25 less 0.002
            balances = {b["asset"]: b for b in http.get("/api/v1/balances", headers=bearer).json()}
            assert balances["ETH"]["available"] == "3.75000000"
            assert balances["ETH"]["locked"] == "0.00000000"

            def fee() -> NetworkFee | None:
                return portal.call(_fee_row, exchange.db, wid)

            until(lambda: (row := fee()) is not None and row.status == "booked", "the fee booked")
            row = fee()
            assert row is not None
            receipt = w3.eth.get_transaction_receipt(detail["txid"])
            gas = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
            assert (row.fee_chain, row.amount) == (gas, -(-gas // 10**10))
            fees = exchange.jcore.core.accounts[FEE_ACCOUNT]["ETH"]
            assert fees.available == 200_000 - row.amount  # the 0.002 kept, less the gas


async def _fee_row(db: Database, wid: int) -> NetworkFee | None:
    return await SqlNetworkFeeStore(db).get("withdrawal", wid)


async def _mine(w3: web3.Web3) -> None:
    w3.provider.ethereum_tester.mine_blocks(1)  # type: ignore[attr-defined]
