"""Bitcoin sweep throughput in one process (ADR 0035): ``--users`` deposit addresses with
one credited coin each (recorded as the chain watcher does; SQLite) are swept by one
sweeper step: the credited coins read, their addresses scanned with ``scantxoutset`` on
the node simulator over HTTP (tests/support/bitcoind_sim.py, in a thread of this
process, which verifies every input's signature with coincurve), transactions of up to
50 coins built and stored, signed through the signer (its HTTP app over an in-process
transport; each input with its BIP 84 child key derived from the vprv sealed in a fresh
SoftHSM2 token) and broadcast. Two blocks later one step confirms them; a last step with
nothing to do shows the steady-state cost of finding candidates.

Writes bench/results/btc_sweeps.json with the machine.

    .venv/bin/python bench/btc_sweeps.py [--users 500] [--noise 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tradewind.runtime.benchmark import machine_info

OUT = Path(__file__).resolve().parent / "results" / "btc_sweeps.json"
LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "12345678"
SECRET = "b" * 40
ASSET = {"decimals": 8, "confirmations": 2, "min_deposit": "0.0001", "withdrawal_fee": "0.0001"}


async def run(users: int, noise: int, root: Path) -> dict[str, Any]:
    import httpx

    from tests.support.bitcoind_sim import BitcoindSim, SimWallet
    from tradewind.adapters.chain.bitcoin_tx import BitcoinTxCodec, script_of
    from tradewind.adapters.chain.bitcoind_payout import BitcoindPayoutChain
    from tradewind.adapters.chain.bitcoind_reader import BitcoindReader
    from tradewind.adapters.chain.bitcoind_sweeps import BitcoindSweepChain
    from tradewind.adapters.chain.evm_tx import EvmTxCodec
    from tradewind.adapters.hsm.pkcs11_custody import Pkcs11Custody
    from tradewind.adapters.local import SystemClock
    from tradewind.adapters.signer_http import HttpSignerClient
    from tradewind.adapters.sql import Database, SqlUserRepository
    from tradewind.adapters.sql.audit import SqlAuditStore
    from tradewind.adapters.sql.chain_watch import SqlWatcherStore
    from tradewind.adapters.sql.deposit_addresses import SqlDepositAddressStore
    from tradewind.adapters.sql.migrate import upgrade_async
    from tradewind.adapters.sql.sweeps import SqlSweepStore
    from tradewind.adapters.sql.withdrawals import SqlWithdrawalStore
    from tradewind.gateways.signer_api import create_signer_app
    from tradewind.services.audit import AuditLog
    from tradewind.services.funding.chain_ports import ChainDeposit, WatchedBlock
    from tradewind.services.funding.deposit_keys import (
        DepositKeyring,
        account_xpub,
        new_account_key,
    )
    from tradewind.services.funding.derivation import AddressDeriver
    from tradewind.services.funding.networks import parse_networks
    from tradewind.services.funding.ports import StoredDepositAddress
    from tradewind.services.funding.signer import SignerService
    from tradewind.services.funding.sweep_config import parse_sweep_settings
    from tradewind.services.funding.sweep_signer import SweepSigner
    from tradewind.services.funding.sweeps import Sweeper

    sim = BitcoindSim().start()
    faucet = SimWallet(sim, b"\x07" * 32)
    faucet.fund(users // 400 + 2)
    url = f"sqlite+aiosqlite:///{root / 'bench.db'}"
    await upgrade_async(url)
    db = Database.from_url(url)
    clock = SystemClock()
    bare = parse_networks({"networks": {"bitcoin": {"chain": "regtest", "assets": {"BTC": ASSET}}}})
    bare_net = bare.network("bitcoin")
    assert bare_net is not None
    xprv = new_account_key(bare_net)
    cold = SimWallet(sim, b"\x0c" * 32)
    funding = {
        "networks": {
            "bitcoin": {
                "chain": "regtest",
                "xpub": account_xpub(xprv, bare_net),
                "assets": {"BTC": ASSET},
            }
        },
        "sweeps": {
            "bitcoin": {
                "deposit_key": "deposit-bitcoin",
                "cold_address": cold.address,
                "assets": {"BTC": {"min_sweep": "0.001"}},
            }
        },
    }
    catalog = parse_networks(funding)
    settings = parse_sweep_settings(funding, catalog)
    net = catalog.network("bitcoin")
    assert net is not None
    deriver = AddressDeriver(net)
    addresses = SqlDepositAddressStore(db)
    watcher = SqlWatcherStore(db)
    repo = SqlUserRepository(db)
    paid: list[tuple[int, str]] = []
    for i in range(users):
        user = await repo.add(email=f"u{i}@example.com", password_hash="x", created_at_ms=1)
        assert user is not None
        d = deriver.derive(user.id)
        await addresses.put_if_absent(
            StoredDepositAddress(user.id, "bitcoin", d.address, d.path, 0)
        )
        paid.append((user.id, d.address))
    amount = 1_000_000  # 0.01 BTC each
    for block_no, start in enumerate(range(0, users, 50), start=1):
        chunk = paid[start : start + 50]
        txid = faucet.send([(a, amount) for _, a in chunk], fee=50_000)
        sim.rpc("generatetoaddress", 1, faucet.address)
        block = WatchedBlock(block_no, secrets.token_hex(32))
        deposits = [
            ChainDeposit(
                "bitcoin", txid, n, u, "BTC", amount, amount, block_no, block.hash, "pending"
            )
            for n, (u, _) in enumerate(chunk)
        ]
        await watcher.record_block("bitcoin", block, deposits, keep=100_000)
        for n in range(len(chunk)):
            await watcher.finish("bitcoin", txid, n, "credited", seq=1)
    stranger = SimWallet(sim, b"\x0b" * 32)
    for start in range(0, noise, 500):
        faucet.send([(stranger.address, 1_000)] * min(500, noise - start), fee=200_000)
        sim.rpc("generatetoaddress", 1, faucet.address)
    sim.rpc("generatetoaddress", 1, faucet.address)

    with Pkcs11Custody(LIBRARY, "bench", PIN) as custody:
        custody.put_secret("deposit-bitcoin", xprv.encode())
        audit = AuditLog(SqlAuditStore(db), clock)
        codecs = {"bitcoin": BitcoinTxCodec("regtest")}
        withdrawals = SqlWithdrawalStore(db)
        signer = SignerService(
            store=withdrawals,
            custody=custody,
            codec=EvmTxCodec(),
            utxo_codecs=codecs,
            audit=audit,
            catalog=catalog,
            keys={"bitcoin": "hot"},
            secret=SECRET,
            now_ms=clock.now_ms,
        )
        hot = signer.ensure_keys()["bitcoin"]
        store = SqlSweepStore(db)
        sweeps = SweepSigner(
            store=store,
            addresses=addresses,
            custody=custody,
            keyrings={"bitcoin": DepositKeyring.from_vault(net, custody, "deposit-bitcoin")},
            codec=EvmTxCodec(),
            audit=audit,
            catalog=catalog,
            settings=settings,
            hot_keys={"bitcoin": "hot"},
            secret=SECRET,
            now_ms=clock.now_ms,
            utxo_codecs=codecs,
        )
        node = BitcoindReader(sim.url, user=sim.user, password=sim.password)
        client = HttpSignerClient(
            "http://signer",
            SECRET,
            clock.now_ms,
            transport=httpx.ASGITransport(app=create_signer_app(signer, sweeps)),
        )
        sweeper = Sweeper(
            catalog=catalog,
            settings=settings,
            store=store,
            withdrawals=withdrawals,
            chains={"bitcoin": BitcoindSweepChain(BitcoindPayoutChain(node))},
            signer=client,
            now_ms=clock.now_ms,
        )
        t0 = time.perf_counter()
        sent = await sweeper.step()
        sweep_s = time.perf_counter() - t0
        sim.rpc("generatetoaddress", 2, faucet.address)
        t0 = time.perf_counter()
        done = await sweeper.step()
        confirm_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        await sweeper.step()
        idle_s = time.perf_counter() - t0
        await client.close()
        await node.aclose()
        in_hot = sum(c.value for _, c in sim.coins_of(script_of(hot)))
    utxo_set = len(sim.utxos)
    sim.stop()
    await db.dispose()
    txs = -(-users // 50)
    assert sent.broadcast == txs and done.confirmed == txs, (sent, done)
    fees = users * amount - in_hot
    return {
        "what": "Bitcoin sweeps: one sweeper step over credited coins (SQL, scantxoutset, "
        "build, the signer's checks and one child-key signature per input via its HTTP "
        "app, broadcast); then confirming; SQLite, SoftHSM2 (sealed vprv), the bitcoind "
        "simulator over HTTP in the same process",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "machine_note": "shared 2-vCPU VM, other engineers' runs loading it (load_average)",
        "users": users,
        "coins": users,
        "transactions": txs,
        "utxo_set_size": utxo_set,
        "fees_sat": fees,
        "fee_sat_per_coin": round(fees / users, 1),
        "sweep_step": {
            "seconds": round(sweep_s, 3),
            "coins_per_sec": round(users / sweep_s, 1),
            "ms_per_coin": round(1000 * sweep_s / users, 2),
            "ms_per_tx": round(1000 * sweep_s / txs, 1),
        },
        "confirm_step": {"seconds": round(confirm_s, 3)},
        "idle_step": {"seconds": round(idle_s, 3)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--noise", type=int, default=2000)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    root = Path(tempfile.mkdtemp(prefix="btc-sweeps-bench-"))
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
    report = asyncio.run(run(args.users, args.noise, root))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
