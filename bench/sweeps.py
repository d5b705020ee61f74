"""Sweep throughput in one process: deposit addresses holding ETH or an ERC-20 token
(credited in the watcher's table), swept to the hot wallet by the sweeper through the
signer (its HTTP app over an in-process transport; the hot key and the sealed deposit
account key in a fresh SoftHSM2 token) onto an in-process chain (web3 over
eth-tester/py-evm), SQLite.

Phases timed separately:
- ``native``: one sweeper step deciding and sending ``count`` ETH sweeps (balance and
  fee reads, the row, nonce, the signer: HMAC, row and terms checks, child key derived
  from the account xprv, signature, compare-and-set; broadcast);
- ``token``: ``count`` token sweeps from decision to confirmed: the top-ups (signed in
  the HSM) sent, mined, confirmed, then the sweeps sent and confirmed (steps counted).

eth-tester mines a block per transaction and is the slowest piece. Writes
bench/results/sweeps.json with the machine.

    .venv/bin/python bench/sweeps.py [--count 30]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tradewind.runtime.benchmark import machine_info

OUT = Path(__file__).resolve().parent / "results" / "sweeps.json"
LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "12345678"
SECRET = "b" * 40
DEV_TOKEN = Path(__file__).resolve().parents[1] / "tests/support/contracts/DevToken.json"


async def run(count: int, root: Path) -> dict[str, Any]:
    import httpx
    import web3
    from eth_utils.address import to_checksum_address
    from web3.types import Wei

    from tradewind.adapters.chain.evm_sweeps import Web3SweepChain
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

    w3 = web3.Web3(web3.EthereumTesterProvider())
    eth = w3.eth
    chain_id = int(eth.chain_id)
    built = json.loads(DEV_TOKEN.read_text())
    txid = (
        eth.contract(abi=built["abi"], bytecode=built["bytecode"])
        .constructor(10**15)
        .transact({"from": eth.accounts[0]})
    )
    contract = str(eth.wait_for_transaction_receipt(txid)["contractAddress"])
    token = eth.contract(address=to_checksum_address(contract), abi=built["abi"])
    xprv = new_account_key()
    funding: dict[str, Any] = {
        "networks": {
            "ethereum": {
                "chain_id": chain_id,
                "xpub": account_xpub(xprv),
                "assets": {
                    "ETH": {
                        "decimals": 8,
                        "chain_decimals": 18,
                        "confirmations": 2,
                        "min_deposit": "0.001",
                        "withdrawal_fee": "0.002",
                    },
                    "USDT": {
                        "decimals": 6,
                        "contract": contract,
                        "confirmations": 2,
                        "min_deposit": "1",
                        "withdrawal_fee": "1",
                    },
                },
            }
        },
        "sweeps": {
            "ethereum": {
                "deposit_key": "deposit",
                "assets": {"ETH": {"min_sweep": "0.01"}, "USDT": {"min_sweep": "1"}},
            }
        },
    }
    catalog = parse_networks(funding)
    settings = parse_sweep_settings(funding, catalog)
    net = catalog.network("ethereum")
    assert net is not None
    url = f"sqlite+aiosqlite:///{root / 'bench.db'}"
    await upgrade_async(url)
    db = Database.from_url(url)
    clock = SystemClock()
    audit = AuditLog(SqlAuditStore(db), clock)
    addresses = SqlDepositAddressStore(db)
    watch = SqlWatcherStore(db)
    deriver = AddressDeriver(net)
    users = SqlUserRepository(db)

    async def deposit(asset: str, value: int, block: int) -> None:
        user = await users.add(
            email=f"b{secrets.token_hex(6)}@example.com", password_hash="x", created_at_ms=1
        )
        assert user is not None
        d = deriver.derive(user.id)
        await addresses.put_if_absent(
            StoredDepositAddress(user.id, "ethereum", d.address, d.path, 0)
        )
        if asset == "ETH":
            eth.send_transaction({"from": eth.accounts[0], "to": d.address, "value": Wei(value)})
        else:
            token.functions.transfer(d.address, value).transact({"from": eth.accounts[0]})
        tx = "0x" + secrets.token_hex(32)
        wb = WatchedBlock(block, "0x" + secrets.token_hex(32))
        row = ChainDeposit("ethereum", tx, -1, user.id, asset, value, 1, block, wb.hash, "pending")
        await watch.record_block("ethereum", wb, [row], keep=10**6)
        await watch.finish("ethereum", tx, -1, "credited", seq=1)

    with Pkcs11Custody(LIBRARY, "bench", PIN) as custody:
        custody.put_secret("deposit", xprv.encode())
        keys = {"ethereum": "hot"}
        signer = SignerService(
            store=SqlWithdrawalStore(db),
            custody=custody,
            codec=EvmTxCodec(),
            audit=audit,
            catalog=catalog,
            keys=keys,
            secret=SECRET,
            now_ms=clock.now_ms,
        )
        hot = signer.ensure_keys()["ethereum"]
        eth.send_transaction({"from": eth.accounts[0], "to": hot, "value": Wei(10**20)})
        sweeps = SweepSigner(
            store=SqlSweepStore(db),
            addresses=addresses,
            custody=custody,
            keyrings={"ethereum": DepositKeyring.from_vault(net, custody, "deposit")},
            codec=EvmTxCodec(),
            audit=audit,
            catalog=catalog,
            settings=settings,
            hot_keys=keys,
            secret=SECRET,
            now_ms=clock.now_ms,
        )
        client = HttpSignerClient(
            "http://signer",
            SECRET,
            clock.now_ms,
            transport=httpx.ASGITransport(app=create_signer_app(signer, sweeps)),
        )
        sweeper = Sweeper(
            catalog=catalog,
            settings=settings,
            store=SqlSweepStore(db),
            withdrawals=SqlWithdrawalStore(db),
            chains={"ethereum": Web3SweepChain(w3, chain_id)},
            signer=client,
            now_ms=clock.now_ms,
            batch=4 * count,
        )
        for i in range(count):
            await deposit("ETH", 10**18, 2 * i + 1)
        t0 = time.perf_counter()
        native = await sweeper.step()
        native_s = time.perf_counter() - t0
        assert native.broadcast == count, native
        w3.provider.ethereum_tester.mine_blocks(2)  # type: ignore[attr-defined]
        assert (await sweeper.step()).confirmed == count
        for i in range(count):
            await deposit("USDT", 50 * 10**6, 2 * i + 2)
        t0 = time.perf_counter()
        steps = confirmed = 0
        while confirmed < 2 * count and steps < 20:
            confirmed += (await sweeper.step()).confirmed
            steps += 1
            w3.provider.ethereum_tester.mine_blocks(2)  # type: ignore[attr-defined]
        token_s = time.perf_counter() - t0
        assert confirmed == 2 * count, confirmed
        assert int(token.functions.balanceOf(hot).call()) == count * 50 * 10**6
        await client.close()
    await db.dispose()
    return {
        "what": "sweeps: native (decide, sign with a derived deposit key via the signer's "
        "HTTP app, broadcast) and token (top-up signed in SoftHSM2, then the sweep), "
        "to confirmed; SQLite, eth-tester",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "machine_note": "shared 2-vCPU VM, other engineers' runs loading it (load_average)",
        "count": count,
        "native_step": {
            "seconds": round(native_s, 3),
            "per_sec": round(count / native_s, 1),
            "ms_each": round(1000 * native_s / count, 2),
        },
        "token_to_confirmed": {
            "seconds": round(token_s, 3),
            "steps": steps,
            "per_sec": round(count / token_s, 1),
            "ms_each": round(1000 * token_s / count, 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sweeps-bench-"))
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
