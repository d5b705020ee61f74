"""Withdrawal throughput end to end in one process: requests checked and locked
(SQLite, a journaled core runner), then paid out by the processor through the signer
service (its HTTP app over an in-process transport, the key in a fresh SoftHSM2 token)
onto an in-process chain (web3 over eth-tester/py-evm), and settled.

Phases timed separately:
- ``request``: ``WithdrawalService.request`` (checks, row, ``WithdrawHold``, audit,
  notice email) per withdrawal;
- ``payout``: one processor step taking every approved withdrawal through building the
  transaction, the signer (HMAC check, store lookup, terms check, HSM signature,
  compare-and-set) and the broadcast;
- ``settle``: after the confirmations, one step settling all of them (settle + fee).

eth-tester mines a block per transaction and is the slowest piece; against a node the
JSON-RPC round trips (nonce, fees, broadcast, receipt) would be. Writes
bench/results/withdrawals.json with the machine.

    .venv/bin/python bench/withdrawals.py [--count 50]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tradewind.runtime.benchmark import machine_info

OUT = Path(__file__).resolve().parent / "results" / "withdrawals.json"
LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "12345678"
SECRET = "b" * 40
TO = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


class NoSecondFactor:
    async def enabled(self, user_id: int) -> bool:
        return False

    async def require(self, user_id: int, code: str | None) -> None:
        return None


async def run(count: int, root: Path) -> dict[str, Any]:
    import httpx
    import web3
    from web3.types import Wei

    from tradewind.adapters.aml_list import ListScreening
    from tradewind.adapters.chain.evm_payout import Web3PayoutChain
    from tradewind.adapters.chain.evm_tx import EvmTxCodec
    from tradewind.adapters.hsm.pkcs11_custody import Pkcs11Custody
    from tradewind.adapters.kyc_files import FileDocumentStore
    from tradewind.adapters.local import SystemClock
    from tradewind.adapters.signer_http import HttpSignerClient
    from tradewind.adapters.sql import Database, SqlUserRepository
    from tradewind.adapters.sql.admin import SqlAdminStore
    from tradewind.adapters.sql.audit import SqlAuditStore
    from tradewind.adapters.sql.kyc import SqlKycStore
    from tradewind.adapters.sql.migrate import upgrade_async
    from tradewind.adapters.sql.outbox import SqlOutbox
    from tradewind.adapters.sql.withdrawals import SqlWithdrawalStore
    from tradewind.core.commands import AddAsset, Deposit
    from tradewind.gateways.signer_api import create_signer_app
    from tradewind.journal.recovery import JournaledCore
    from tradewind.runtime.sequencer import CoreRunner
    from tradewind.services.admin import AdminService
    from tradewind.services.audit import AuditLog
    from tradewind.services.funding.networks import parse_networks
    from tradewind.services.funding.payouts import PayoutProcessor
    from tradewind.services.funding.signer import SignerService
    from tradewind.services.funding.withdrawal_config import WithdrawalPolicy
    from tradewind.services.funding.withdrawals import (
        MailNotifier,
        WithdrawalRequest,
        WithdrawalService,
    )
    from tradewind.services.kyc import KycService, LevelLimits

    w3 = web3.Web3(web3.EthereumTesterProvider())
    chain_id = int(w3.eth.chain_id)
    url = f"sqlite+aiosqlite:///{root / 'bench.db'}"
    await upgrade_async(url)
    db = Database.from_url(url)
    runner = CoreRunner(JournaledCore(root / "core"), clock_ms=lambda: 1_000)
    runner.start()
    await runner.submit(AddAsset(asset="ETH", decimals=8))

    class Bus:
        available = True

        async def submit(self, cmd: Any) -> Any:
            return await runner.submit(cmd)

    clock = SystemClock()
    catalog = parse_networks(
        {
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
                            "auto_approve_below": "1000",
                        }
                    },
                }
            }
        }
    )
    store = SqlWithdrawalStore(db)
    audit = AuditLog(SqlAuditStore(db), clock)
    bus = Bus()
    service = WithdrawalService(
        catalog=catalog,
        store=store,
        bus=bus,
        two_factor=NoSecondFactor(),
        kyc=KycService(
            store=SqlKycStore(db),
            documents=FileDocumentStore(root / "kyc"),
            audit=audit,
            clock=clock,
            limits={0: LevelLimits({"ETH": 10**9})},
        ),
        admin=AdminService(store=SqlAdminStore(db), bus=bus, audit=audit, clock=clock),
        audit=audit,
        notifier=MailNotifier(SqlUserRepository(db), SqlOutbox(db), clock.now_ms),
        screening=ListScreening([]),
        policy=WithdrawalPolicy(cooling_off_ms=0, require_2fa=False),
        now_ms=clock.now_ms,
    )
    user = await SqlUserRepository(db).add(
        email="bench@example.com", password_hash="x", created_at_ms=1
    )
    assert user is not None
    await runner.submit(Deposit(user=user.id, asset="ETH", amount=count * 10**8))
    await store.add_address(
        user_id=user.id, network="ethereum", address=TO, label="", at_ms=0, usable_from_ms=0
    )
    with Pkcs11Custody(LIBRARY, "bench", PIN) as custody:
        signer = SignerService(
            store=store,
            custody=custody,
            codec=EvmTxCodec(),
            audit=audit,
            catalog=catalog,
            keys={"ethereum": "hot"},
            secret=SECRET,
            now_ms=clock.now_ms,
        )
        hot = signer.ensure_keys()["ethereum"]
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_transaction(
                {"from": w3.eth.accounts[0], "to": hot, "value": Wei(count * 10**18)}
            )
        )
        client = HttpSignerClient(
            "http://signer",
            SECRET,
            clock.now_ms,
            transport=httpx.ASGITransport(app=create_signer_app(signer)),
        )
        processor = PayoutProcessor(
            service, {"ethereum": Web3PayoutChain(w3, chain_id)}, client, batch=count + 10
        )
        t0 = time.perf_counter()
        for i in range(count):
            await service.request(
                user.id,
                WithdrawalRequest("ETH", "ethereum", TO, "0.5"),
                f"bench-{i:08d}",
                None,
            )
        request_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        paid = await processor.step()
        payout_s = time.perf_counter() - t0
        w3.provider.ethereum_tester.mine_blocks(2)  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        settled = await processor.step()
        settle_s = time.perf_counter() - t0
        await client.close()
    await runner.stop()
    await db.dispose()
    assert paid.broadcast == count and settled.confirmed == count, (paid, settled)
    return {
        "what": "withdrawals: request+lock, payout (build, HSM sign via the signer's HTTP "
        "app, broadcast) and settle; SQLite, core runner, SoftHSM2, eth-tester",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "machine_note": "shared 2-vCPU VM, other engineers' runs loading it (load_average)",
        "count": count,
        "request": {
            "seconds": round(request_s, 3),
            "per_sec": round(count / request_s, 1),
            "ms_each": round(1000 * request_s / count, 2),
        },
        "payout": {
            "seconds": round(payout_s, 3),
            "per_sec": round(count / payout_s, 1),
            "ms_each": round(1000 * payout_s / count, 2),
        },
        "settle": {
            "seconds": round(settle_s, 3),
            "per_sec": round(count / settle_s, 1),
            "ms_each": round(1000 * settle_s / count, 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="withdrawals-bench-"))
    (root / "tokens").mkdir()
    (root / "softhsm2.conf").write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(root / "softhsm2.conf")
    subprocess.run(
        [
            *("softhsm2-util", "--init-token", "--free", "--label", "bench"),
            *("--so-pin", "87654321", "--pin", PIN),
        ],
        check=True,
        capture_output=True,
    )
    report = asyncio.run(run(args.count, root))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
