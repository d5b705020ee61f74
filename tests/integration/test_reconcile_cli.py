"""``tradewind reconcile`` on a real data directory: journal with snapshots, the SQLite
ledger written by the projectors, and custody read from an in-process EVM chain.

- a ledger that lags the core is compared at its own seq (the core is rebuilt from the
  newest snapshot at or before it plus the journal), and agrees: exit 0;
- a leg slipped into the SQL ledger is found with the account and both figures: exit 1;
- custody: deposit addresses from the SQL table plus a hot wallet given on the command
  line, native coin and token balances converted to the core's decimals; a shortfall
  is exit 1 with the missing amount;
- unreadable inputs are exit 2 with the reason.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
import web3
from typer.testing import CliRunner

from tests.integration.test_projectors import runner_for, session, write_journal
from tradewind.adapters.sql import Database, upgrade_async
from tradewind.adapters.sql.deposit_addresses import DepositAddressRow
from tradewind.adapters.sql.ledger import LedgerEntryRow
from tradewind.adapters.sql.users import UserRow
from tradewind.runtime.cli import app
from tradewind.runtime.config import Settings, load_settings
from tradewind.runtime.reconcile import run_reconcile
from tradewind.services.reconcile import liabilities


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    s = session(11, 1_000)
    write_journal(d, s.commands, snapshot_every=250)
    return d


async def project(data_dir: Path, until: int) -> Database:
    url = f"sqlite+aiosqlite:///{data_dir / 'tradewind.db'}"
    await upgrade_async(url)
    db = Database.from_url(url)
    await runner_for(db).catch_up(data_dir, until_seq=until)
    return db


def settings_for(data_dir: Path) -> Settings:
    return load_settings(None, environ={}, overrides={"data_dir": data_dir, "demo": True})


@pytest.mark.asyncio
async def test_a_lagging_ledger_is_compared_at_its_own_seq_and_agrees(data_dir: Path) -> None:
    db = await project(data_dir, until=640)  # behind the core (1,000), past a snapshot
    await db.dispose()
    code, text = await run_reconcile(settings_for(data_dir), as_json=True)
    report = json.loads(text)
    assert (code, report["ok"], report["seq"]) == (0, True, 640), text
    assert report["checks"] == ["core", "ledger"] and report["findings"] == []


def test_a_slipped_leg_is_found_with_the_account_and_both_figures(data_dir: Path) -> None:
    async def slip() -> None:
        db = await project(data_dir, until=1_000)
        async with db.write() as tx:
            await tx.execute(
                sa.insert(LedgerEntryRow).values(
                    seq=1_000,
                    event_index=99,
                    leg=0,
                    ts=0,
                    account=2,
                    bucket="available",
                    asset="USDT",
                    amount=5,
                    kind="deposit",
                    ref=None,
                )
            )
        await db.dispose()

    asyncio.run(slip())
    result = CliRunner().invoke(app, ["reconcile", "--data-dir", str(data_dir), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    (finding,) = [f for f in report["findings"] if f["account"] == 2]
    assert finding["check"] == "ledger" and finding["asset"] == "USDT"
    assert finding["difference"] == 5
    external = [f for f in report["findings"] if f["account"] is None]
    assert external == []  # an available leg, not an external one


@pytest.mark.asyncio
async def test_custody_counts_deposit_addresses_and_wallets_and_finds_a_shortfall(
    data_dir: Path,
) -> None:
    w3 = web3.Web3(web3.EthereumTesterProvider())
    funded, empty = w3.eth.accounts[0], w3.eth.accounts[1]
    db = await project(data_dir, until=1_000)
    async with db.write() as tx:
        await tx.execute(
            sa.insert(UserRow).values(
                id=1, email="a@example.com", password_hash="x", created_at_ms=0
            )
        )
        await tx.execute(
            sa.insert(DepositAddressRow).values(
                user_id=1, network="ethereum", address=empty, path="m/0/1", created_at_ms=0
            )
        )
    await db.dispose()
    settings = settings_for(data_dir)
    code, text = await run_reconcile(
        settings,
        as_json=True,
        rpc=["ethereum=http://node"],
        addresses=[f"ethereum={funded}"],
        connect=lambda url: w3,
    )
    report = json.loads(text)
    assert report["checks"] == ["core", "ledger", "custody"]
    wei = w3.eth.get_balance(funded) + w3.eth.get_balance(empty)
    assert report["holdings"]["ETH"] == wei // 10**10  # 18 decimals on chain, 8 in the demo
    # the token is not deployed on this chain: nothing held, everything owed is short
    owed = report["liabilities"]["USDT"]
    (usdt,) = [f for f in report["findings"] if f["check"] == "custody" and f["asset"] == "USDT"]
    assert (code, usdt["severity"], usdt["difference"]) == (1, "critical", -owed)
    assert f"SHORTFALL of {owed}" in usdt["message"]


@pytest.mark.asyncio
async def test_unreadable_inputs_are_exit_2(tmp_path: Path, data_dir: Path) -> None:
    code, text = await run_reconcile(settings_for(tmp_path / "nowhere"))
    assert code == 2 and "not a directory" in text
    db = await project(data_dir, until=10)
    await db.dispose()
    code, text = await run_reconcile(settings_for(data_dir), rpc=["ethereum"])
    assert code == 2 and "NETWORK=VALUE" in text
    code, text = await run_reconcile(
        settings_for(data_dir),
        rpc=["ethereum=http://127.0.0.1:9"],
        addresses=["bsc=0x0000000000000000000000000000000000000001"],
    )
    assert code == 2 and "--address bsc" in text
    (data_dir / "journal.twj").write_bytes(b"")  # the journal is gone, the ledger is not
    code, text = await run_reconcile(settings_for(data_dir))
    assert code == 2 and "seq 10" in text, text


def test_liabilities_cover_every_account_kind() -> None:
    s = session(11, 1_000)
    owed = liabilities(s.core)
    assert owed["USDT"] == s.core.deposited["USDT"] - s.core.withdrawn.get("USDT", 0)
