"""Bitcoin withdrawal throughput end to end in one process (ADR 0029): requests checked
and locked (SQLite, a journaled core runner), then paid out by the processor: each
payout's coins read with ``scantxoutset`` from the node simulator over HTTP
(tests/support/bitcoind_sim.py, in a thread of this process), the transaction fixed,
signed through the signer service (its HTTP app over an in-process transport, the key
in a fresh SoftHSM2 token, one signature per input, each verified by the simulator with
coincurve) and broadcast; after two blocks, settled.

Phases timed separately:
- ``request``: ``WithdrawalService.request`` per withdrawal;
- ``payout``: one processor step taking every approved withdrawal through the coin
  scan, building, the signer and the broadcast;
- ``settle``: one step settling all of them (confirmations read, settle + fee).

The hot wallet holds ``--coins`` coins of ``--coin-btc`` BTC (a 2.5 BTC payout spends
three 1 BTC coins: three HSM signatures) and ``--noise`` outputs to other addresses are
in the UTXO set the scans read. Writes
bench/results/btc_payouts.json with the machine.

    .venv/bin/python bench/btc_payouts.py [--count 50] [--amount 2.5] [--coins 160]
        [--coin-btc 1] [--noise 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tradewind.runtime.benchmark import machine_info

OUT = Path(__file__).resolve().parent / "results" / "btc_payouts.json"
LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "12345678"
SECRET = "b" * 40


class NoSecondFactor:
    async def enabled(self, user_id: int) -> bool:
        return False

    async def require(self, user_id: int, code: str | None) -> None:
        return None


async def run(
    count: int, amount: str, coins: int, coin_btc: int, noise: int, root: Path
) -> dict[str, Any]:
    import httpx

    from tests.support.bitcoind_sim import BitcoindSim, SimWallet
    from tradewind.adapters.aml_list import ListScreening
    from tradewind.adapters.chain.bitcoin_tx import BitcoinTxCodec
    from tradewind.adapters.chain.bitcoind_payout import BitcoindPayoutChain
    from tradewind.adapters.chain.bitcoind_reader import BitcoindReader
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

    sim = BitcoindSim().start()
    faucet = SimWallet(sim, b"\x07" * 32)
    faucet.fund((coins * coin_btc) // 50 + 2)
    dest = SimWallet(sim, b"\x09" * 32)
    url = f"sqlite+aiosqlite:///{root / 'bench.db'}"
    await upgrade_async(url)
    db = Database.from_url(url)
    runner = CoreRunner(JournaledCore(root / "core"), clock_ms=lambda: 1_000)
    runner.start()
    await runner.submit(AddAsset(asset="BTC", decimals=8))

    class Bus:
        available = True

        async def submit(self, cmd: Any) -> Any:
            return await runner.submit(cmd)

    clock = SystemClock()
    catalog = parse_networks(
        {
            "networks": {
                "bitcoin": {
                    "chain": "regtest",
                    "assets": {
                        "BTC": {
                            "decimals": 8,
                            "confirmations": 2,
                            "min_deposit": "0.0001",
                            "withdrawal_fee": "0.0001",
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
            limits={0: LevelLimits({"BTC": 10**15})},
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
    await runner.submit(
        Deposit(user=user.id, asset="BTC", amount=count * (int(float(amount)) + 1) * 10**8)
    )
    await store.add_address(
        user_id=user.id,
        network="bitcoin",
        address=dest.address,
        label="",
        at_ms=0,
        usable_from_ms=0,
    )
    with Pkcs11Custody(LIBRARY, "bench", PIN) as custody:
        signer = SignerService(
            store=store,
            custody=custody,
            codec=EvmTxCodec(),
            utxo_codecs={"bitcoin": BitcoinTxCodec("regtest")},
            audit=audit,
            catalog=catalog,
            keys={"bitcoin": "hot"},
            secret=SECRET,
            now_ms=clock.now_ms,
        )
        hot = signer.ensure_keys()["bitcoin"]
        for start in range(0, coins, 50):
            faucet.send([(hot, coin_btc * 10**8)] * min(50, coins - start), fee=50_000)
            sim.rpc("generatetoaddress", 1, faucet.address)  # the change confirmed
        stranger = SimWallet(sim, b"\x0b" * 32)
        for start in range(0, noise, 500):
            faucet.send([(stranger.address, 1_000)] * min(500, noise - start), fee=200_000)
            sim.rpc("generatetoaddress", 1, faucet.address)
        sim.rpc("generatetoaddress", 1, faucet.address)
        node = BitcoindReader(sim.url, user=sim.user, password=sim.password)
        client = HttpSignerClient(
            "http://signer",
            SECRET,
            clock.now_ms,
            transport=httpx.ASGITransport(app=create_signer_app(signer)),
        )
        processor = PayoutProcessor(
            service, {"bitcoin": BitcoindPayoutChain(node)}, client, batch=count + 10
        )
        t0 = time.perf_counter()
        for i in range(count):
            await service.request(
                user.id,
                WithdrawalRequest("BTC", "bitcoin", dest.address, amount),
                f"bench-{i:08d}",
                None,
            )
        request_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        paid = await processor.step()
        payout_s = time.perf_counter() - t0
        inputs = [
            len(json.loads(w.tx or "{}").get("inputs", []))
            for w in await store.list_by_status(("broadcast",), limit=count + 10)
        ]
        sim.rpc("generatetoaddress", 2, faucet.address)
        t0 = time.perf_counter()
        settled = await processor.step()
        settle_s = time.perf_counter() - t0
        await client.close()
        await node.aclose()
    utxo_set = len(sim.utxos)
    sim.stop()
    await runner.stop()
    await db.dispose()
    assert paid.broadcast == count and settled.confirmed == count, (paid, settled)
    return {
        "what": "Bitcoin withdrawals: request+lock, payout (scantxoutset, build, HSM sign "
        "per input via the signer's HTTP app, broadcast) and settle; SQLite, core runner, "
        "SoftHSM2, the bitcoind simulator over HTTP in the same process",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "machine_note": "shared 2-vCPU VM, other engineers' runs loading it (load_average)",
        "count": count,
        "amount_btc": amount,
        "hot_coins": coins,
        "coin_btc": coin_btc,
        "utxo_set_size": utxo_set,
        "inputs_per_payout": {"min": min(inputs), "max": max(inputs), "total": sum(inputs)},
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
    parser.add_argument("--amount", default="2.5", help="BTC per withdrawal")
    parser.add_argument("--coins", type=int, default=160)
    parser.add_argument("--coin-btc", type=int, default=1)
    parser.add_argument("--noise", type=int, default=2000)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    root = Path(tempfile.mkdtemp(prefix="btc-payouts-bench-"))
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
    report = asyncio.run(run(args.count, args.amount, args.coins, args.coin_btc, args.noise, root))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
