"""Chain watcher throughput on an in-process chain (web3 over eth-tester/py-evm),
SQLite and a journaled core runner: blocks scanned per second while catching up (each
block holding ``--per-block`` ETH deposits to users' deposit addresses) and deposits
credited per second once confirmed.

The chain is in the same process and py-evm is slow, so the scan figure is bounded by
eth-tester's JSON-RPC emulation (a block with its transactions and one receipt per
value transfer), not by the watcher; against a real node the RPC round trip dominates.
Writes bench/results/chain_watcher.json with the core count and the commit.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from tradewind.runtime.benchmark import machine_info

OUT = Path(__file__).resolve().parent / "results" / "chain_watcher.json"


async def run(blocks: int, per_block: int, users: int) -> dict[str, Any]:
    import web3
    from web3.types import Wei

    from tradewind.adapters.chain.web3_reader import Web3ChainReader
    from tradewind.adapters.sql import Database, SqlUserRepository
    from tradewind.adapters.sql.chain_watch import SqlWatcherStore
    from tradewind.adapters.sql.deposit_addresses import SqlDepositAddressStore
    from tradewind.adapters.sql.migrate import upgrade_async
    from tradewind.core.commands import AddAsset
    from tradewind.journal.recovery import JournaledCore
    from tradewind.runtime.sequencer import CoreRunner
    from tradewind.services.funding.defaults import TEST_MNEMONIC_XPUB_EVM
    from tradewind.services.funding.deposit_addresses import DepositAddressService
    from tradewind.services.funding.networks import parse_networks
    from tradewind.services.funding.watcher import ChainWatcher

    confirmations = 3
    catalog = parse_networks(
        {
            "networks": {
                "ethereum": {
                    "chain_id": 1337,
                    "xpub": TEST_MNEMONIC_XPUB_EVM,
                    "assets": {
                        "ETH": {
                            "decimals": 8,
                            "chain_decimals": 18,
                            "confirmations": confirmations,
                            "min_deposit": "0.001",
                            "withdrawal_fee": "0.002",
                        }
                    },
                }
            }
        }
    )
    net = catalog.network("ethereum")
    assert net is not None
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await upgrade_async(url)
        db = Database.from_url(url)
        addresses = DepositAddressService(catalog, SqlDepositAddressStore(db), lambda: 1)
        targets = []
        for i in range(users):
            user = await SqlUserRepository(db).add(
                email=f"b{i}@example.com", password_hash="x", created_at_ms=1
            )
            assert user is not None
            targets.append((await addresses.address_for(user.id, "ETH", "ethereum")).address)
        runner = CoreRunner(JournaledCore(Path(tmp) / "core"), clock_ms=lambda: 1)
        runner.start()
        await runner.submit(AddAsset(asset="ETH", decimals=8))

        class Bus:
            available = True

            async def submit(self, cmd: Any) -> Any:
                return await runner.submit(cmd)

        w3 = web3.Web3(web3.EthereumTesterProvider())
        tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
        tester.disable_auto_mine_transactions()
        # one transaction per sender per block: eth-tester checks each nonce against
        # the last mined state, and has 10 funded accounts
        senders = list(w3.eth.accounts)[:per_block]
        n = 0
        t0 = time.perf_counter()
        for _ in range(blocks):
            for sender in senders:
                tx = {"from": sender, "to": targets[n % users], "value": Wei(10**16)}
                w3.eth.send_transaction(tx)  # type: ignore[arg-type]
                n += 1
            tester.mine_blocks(1)
        build_s = time.perf_counter() - t0

        def watcher(confirm: int) -> ChainWatcher:
            rules = replace(
                net, assets=tuple(replace(a, confirmations=confirm) for a in net.assets)
            )
            return ChainWatcher(
                rules,
                Web3ChainReader(w3),
                SqlWatcherStore(db),
                SqlDepositAddressStore(db),
                Bus(),
                lambda: 1,
                start_height=1,
            )

        # scan only (nothing is deep enough to credit), then credit everything
        t0 = time.perf_counter()
        scanned = await watcher(10_000).step(max_blocks=blocks + 10)
        scan_s = time.perf_counter() - t0
        tester.mine_blocks(confirmations)
        t0 = time.perf_counter()
        credited = await watcher(confirmations).step(max_blocks=blocks + 10)
        credit_s = time.perf_counter() - t0
        await runner.stop()
        await db.dispose()
    return {
        "what": "chain watcher: catch-up scan and crediting on eth-tester, SQLite, core runner",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "machine_note": "shared 2-vCPU VM, other engineers' runs loading it (load_average)",
        "blocks": blocks,
        "deposits_per_block": per_block,
        "users": users,
        "chain_build_s": round(build_s, 2),
        "scan": {
            "blocks": scanned.scanned,
            "deposits_seen": scanned.seen,
            "seconds": round(scan_s, 3),
            "blocks_per_sec": round(scanned.scanned / scan_s, 1),
            "deposits_seen_per_sec": round(scanned.seen / scan_s, 1),
        },
        "credit": {
            "deposits_credited": credited.credited,
            "seconds": round(credit_s, 3),
            "credits_per_sec": round(credited.credited / credit_s, 1),
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--per-block", type=int, default=5, choices=range(1, 11))
    parser.add_argument("--users", type=int, default=50)
    ns = parser.parse_args()
    report = asyncio.run(run(ns.blocks, ns.per_block, ns.users))
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"wrote {OUT}")
