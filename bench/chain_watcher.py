"""Chain watcher throughput on an in-process chain (web3 over eth-tester/py-evm),
SQLite and a journaled core runner: blocks scanned per second while catching up (each
block holding ``--per-block`` ETH deposits to users' deposit addresses) and deposits
credited per second once confirmed.

The chain is in the same process and py-evm is slow, so the scan figure is bounded by
eth-tester's JSON-RPC emulation (a block with its transactions and one receipt per
value transfer), not by the watcher; against a real node the RPC round trip dominates.
Writes bench/results/chain_watcher.json with the core count and the commit.

``--network bitcoin`` runs the same measure through the bitcoind JSON-RPC reader over
HTTP against the regtest simulator (tests/support/bitcoind_sim.py, in a thread of this
process): one signed transaction per block paying ``--per-block`` deposits and
``--noise`` outputs to addresses that are nobody's deposit address (a real block has
thousands of outputs, and the watcher looks up each). Writes
bench/results/chain_watcher_bitcoin.json.
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
OUT_BITCOIN = OUT.with_name("chain_watcher_bitcoin.json")


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


async def run_bitcoin(blocks: int, per_block: int, users: int, noise: int) -> dict[str, Any]:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.bitcoind_sim import BitcoindSim, SimWallet
    from tradewind.adapters.chain.bitcoind_reader import BitcoindReader
    from tradewind.adapters.sql import Database, SqlUserRepository
    from tradewind.adapters.sql.chain_watch import SqlWatcherStore
    from tradewind.adapters.sql.deposit_addresses import SqlDepositAddressStore
    from tradewind.adapters.sql.migrate import upgrade_async
    from tradewind.core.commands import AddAsset
    from tradewind.journal.recovery import JournaledCore
    from tradewind.runtime.sequencer import CoreRunner
    from tradewind.services.funding.defaults import TEST_MNEMONIC_ZPUB_REGTEST
    from tradewind.services.funding.deposit_addresses import DepositAddressService
    from tradewind.services.funding.networks import parse_networks
    from tradewind.services.funding.watcher import ChainWatcher

    confirmations = 3
    raw = {
        "chain": "regtest",
        "xpub": TEST_MNEMONIC_ZPUB_REGTEST,
        "assets": {
            "BTC": {
                "decimals": 8,
                "confirmations": confirmations,
                "min_deposit": "0.0001",
                "withdrawal_fee": "0.0002",
            }
        },
    }
    catalog = parse_networks({"networks": {"bitcoin": raw}})
    net = catalog.network("bitcoin")
    assert net is not None
    sim = BitcoindSim().start()
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
            targets.append((await addresses.address_for(user.id, "BTC", "bitcoin")).address)
        runner = CoreRunner(JournaledCore(Path(tmp) / "core"), clock_ms=lambda: 1)
        runner.start()
        await runner.submit(AddAsset(asset="BTC", decimals=8))

        class Bus:
            available = True

            async def submit(self, cmd: Any) -> Any:
                return await runner.submit(cmd)

        sender = SimWallet(sim, b"\x05" * 32)
        sender.fund(1)
        strangers = [SimWallet(sim, bytes([9, i % 256]) * 16).address for i in range(noise)]
        start = sim.height + 1
        n = 0
        t0 = time.perf_counter()
        for _ in range(blocks):
            outputs = [(targets[(n + k) % users], 1_000_000) for k in range(per_block)]
            outputs += [(a, 10_000) for a in strangers]
            n += per_block
            sender.send(outputs, fee=10_000)
            sim.rpc("generatetoaddress", 1, sender.address)
        build_s = time.perf_counter() - t0
        reader = BitcoindReader(sim.url, user=sim.user, password=sim.password)

        def watcher(confirm: int) -> ChainWatcher:
            rules = replace(
                net, assets=tuple(replace(a, confirmations=confirm) for a in net.assets)
            )
            return ChainWatcher(
                rules,
                reader,
                SqlWatcherStore(db),
                SqlDepositAddressStore(db),
                Bus(),
                lambda: 1,
                start_height=start,
            )

        t0 = time.perf_counter()
        scanned = await watcher(10_000).step(max_blocks=blocks + 10)
        scan_s = time.perf_counter() - t0
        sim.rpc("generatetoaddress", confirmations, sender.address)
        t0 = time.perf_counter()
        credited = await watcher(confirmations).step(max_blocks=blocks + 10)
        credit_s = time.perf_counter() - t0
        outputs_per_block = per_block + noise + 2  # + change, + the coinbase's payout
        await reader.aclose()
        await runner.stop()
        await db.dispose()
    sim.stop()
    return {
        "what": "chain watcher on Bitcoin: bitcoind JSON-RPC reader over HTTP against the "
        "regtest simulator (same process), SQLite, core runner",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "machine_note": "shared 2-vCPU VM, other engineers' runs loading it (load_average)",
        "blocks": blocks,
        "deposits_per_block": per_block,
        "other_outputs_per_block": noise,
        "users": users,
        "chain_build_s": round(build_s, 2),
        "scan": {
            "blocks": scanned.scanned,
            "deposits_seen": scanned.seen,
            "seconds": round(scan_s, 3),
            "blocks_per_sec": round(scanned.scanned / scan_s, 1),
            "outputs_per_sec": round(scanned.scanned * outputs_per_block / scan_s, 1),
        },
        "credit": {
            "deposits_credited": credited.credited,
            "seconds": round(credit_s, 3),
            "credits_per_sec": round(credited.credited / credit_s, 1),
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", choices=("ethereum", "bitcoin"), default="ethereum")
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--per-block", type=int, default=5, choices=range(1, 11))
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--noise", type=int, default=200, help="bitcoin: other outputs/block")
    ns = parser.parse_args()
    if ns.network == "bitcoin":
        out = OUT_BITCOIN
        report = asyncio.run(run_bitcoin(ns.blocks, ns.per_block, ns.users, ns.noise))
    else:
        out = OUT
        report = asyncio.run(run(ns.blocks, ns.per_block, ns.users))
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"wrote {out}")
