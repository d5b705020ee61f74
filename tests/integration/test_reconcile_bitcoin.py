"""``tradewind reconcile --rpc bitcoin=URL``: Bitcoin custody read with ``scantxoutset``
from the node simulator (ADR 0029), against a journaled core and its SQLite ledger.

- after a deposit (credited to one user on their deposit address) and another user's
  deposit held by the hot wallet (``--address``), the coins cover exactly what the core
  owes: no finding, exit 0;
- the deposit's coin spent elsewhere (a key the exchange does not hold any more, a
  theft): a critical SHORTFALL of exactly that amount, exit 1;
- a node that cannot be reached is an input error (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.test_projectors import write_journal
from tests.integration.test_reconcile_cli import project, settings_for
from tests.support.bitcoind_sim import BitcoindSim, SimWallet
from tradewind.adapters.sql.deposit_addresses import DepositAddressRow
from tradewind.adapters.sql.users import UserRow
from tradewind.core.commands import AddAsset, Deposit
from tradewind.runtime.reconcile import run_reconcile


def node_url(sim: BitcoindSim) -> str:
    return sim.url.replace("http://", f"http://{sim.user}:{sim.password}@")


@pytest.mark.asyncio
async def test_bitcoin_custody_balances_after_a_deposit_and_finds_a_coin_spent_elsewhere(
    tmp_path: Path,
) -> None:
    with BitcoindSim().running() as sim:
        faucet = SimWallet(sim, b"\x05" * 32)
        faucet.fund(1)
        deposit_address = SimWallet(sim, b"\x06" * 32)  # user 1's deposit address
        hot = SimWallet(sim, b"\x08" * 32)  # holds user 2's swept deposit
        txid = faucet.send([(deposit_address.address, 30_000_000), (hot.address, 50_000_000)])
        sim.rpc("generatetoaddress", 2, faucet.address)

        data_dir = tmp_path / "data"
        write_journal(
            data_dir,
            [
                AddAsset(asset="BTC", decimals=8, seq=1, ts=1),
                Deposit(
                    user=1, asset="BTC", amount=30_000_000, ref=f"bitcoin:{txid}:0", seq=2, ts=2
                ),
                Deposit(
                    user=2, asset="BTC", amount=50_000_000, ref=f"bitcoin:{txid}:1", seq=3, ts=3
                ),
            ],
            snapshot_every=1_000,
        )
        db = await project(data_dir, until=3)
        async with db.write() as tx:
            await tx.execute(
                sa.insert(UserRow).values(
                    id=1, email="btc@example.com", password_hash="x", created_at_ms=0
                )
            )
            await tx.execute(
                sa.insert(DepositAddressRow).values(
                    user_id=1,
                    network="bitcoin",
                    address=deposit_address.address,
                    path="0/1",
                    created_at_ms=0,
                )
            )
        await db.dispose()
        settings = settings_for(data_dir)
        args = {"rpc": [f"bitcoin={node_url(sim)}"], "addresses": [f"bitcoin={hot.address}"]}

        code, text = await run_reconcile(settings, as_json=True, **args)
        report = json.loads(text)
        assert (code, report["ok"]) == (0, True), text
        assert report["checks"] == ["core", "ledger", "custody"]
        assert report["holdings"] == {"BTC": 80_000_000}
        assert report["liabilities"]["BTC"] == 80_000_000
        assert report["findings"] == []

        # the deposit's coin leaves for a stranger's address, and is mined
        stranger = SimWallet(sim, b"\x0a" * 32)
        deposit_address.send([(stranger.address, 29_990_000)], fee=10_000)
        sim.rpc("generatetoaddress", 1, faucet.address)
        code, text = await run_reconcile(settings, as_json=True, **args)
        report = json.loads(text)
        assert code == 1 and report["holdings"] == {"BTC": 50_000_000}
        (short,) = [f for f in report["findings"] if f["check"] == "custody"]
        assert (short["severity"], short["asset"]) == ("critical", "BTC")
        assert (short["expected"], short["actual"], short["difference"]) == (
            80_000_000,
            50_000_000,
            -30_000_000,
        )
        assert "SHORTFALL of 30000000" in short["message"]

    # the node is gone: an input error
    code, text = await run_reconcile(settings, rpc=["bitcoin=http://u:p@127.0.0.1:9"], addresses=[])
    assert code == 2 and "--rpc bitcoin" in text, text
