"""Network fees booked on a real chain (ADR 0034), and ``tradewind reconcile`` after them.

The sweeps rig of test_sweeps.py (the hot key and the sealed deposit key in a SoftHSM2
token, the signer's HTTP app in process, an eth-tester chain, SQLite and PostgreSQL)
with the real chain watcher, a journaled core, and the payout processor on the same
signer: users deposit ETH and a token (credited by the watcher), the sweeper sweeps
both (the token after a gas top-up), a user withdraws ETH (paid on chain, settled),
and the fee booking reads each transaction's gas from its receipt and books it from
the withdrawal-fee account, once, although a first booking run dies between the core's
booking and the row saying so. While the fees wait for the fee account, reconcile finds
the ETH SHORTFALL and names the unbooked fees that explain it. Then ``run_reconcile``
(what ``tradewind reconcile`` runs, with the projectors' ledger caught up from the
journal) finds no difference: no ETH SHORTFALL, the ledger's external legs equal
deposits less withdrawals and fees, and custody exceeds what the core owes by less than
one minor unit per booked fee (each fee is rounded up).
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import web3

from tests.integration.hsm.test_sweeps import COLD, Rig
from tests.integration.test_projectors import runner_for
from tests.support.custody_rig import Killed, RunnerBus
from tests.support.second_factor import NoSecondFactor
from tests.support.softhsm import SoftToken
from tradewind.adapters.aml_list import ListScreening
from tradewind.adapters.chain.evm_payout import Web3PayoutChain
from tradewind.adapters.chain.web3_reader import Web3ChainReader
from tradewind.adapters.kyc_files import FileDocumentStore
from tradewind.adapters.sql import Database, SqlUserRepository
from tradewind.adapters.sql.admin import SqlAdminStore
from tradewind.adapters.sql.alerts import SqlAlertStore
from tradewind.adapters.sql.kyc import SqlKycStore
from tradewind.adapters.sql.network_fees import SqlNetworkFeeStore
from tradewind.adapters.sql.outbox import SqlOutbox
from tradewind.core.commands import AddAsset
from tradewind.core.invariants import check_invariants
from tradewind.journal.recovery import JournaledCore
from tradewind.runtime.config import load_settings
from tradewind.runtime.reconcile import run_reconcile
from tradewind.runtime.sequencer import CoreRunner
from tradewind.services.admin import AdminService
from tradewind.services.alerts import AlertService
from tradewind.services.funding.network_fees import ALERT_KIND, NetworkFeeBooker, Source
from tradewind.services.funding.networks import parse_networks
from tradewind.services.funding.payouts import PayoutProcessor
from tradewind.services.funding.watcher import ChainWatcher
from tradewind.services.funding.withdrawal_config import WithdrawalPolicy
from tradewind.services.funding.withdrawals import (
    FEE_ACCOUNT,
    MailNotifier,
    WithdrawalRequest,
    WithdrawalService,
)
from tradewind.services.kyc import KycService, LevelLimits

async_test = pytest.mark.asyncio
WEI = 10**10  # per core unit of ETH (18 decimals on chain, 8 in the core)
TO = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


class DiesBeforeBooked(SqlNetworkFeeStore):
    """The process dies after the core booked a fee, before the row says so."""

    async def booked(self, source: str, source_id: int, seq: int | None, at_ms: int) -> bool:
        raise Killed("killed between the core's booking and the row")


@pytest.fixture
def w3() -> web3.Web3:
    return web3.Web3(web3.EthereumTesterProvider())


@pytest_asyncio.fixture
async def rig(w3: web3.Web3, db: Database, softhsm_token: SoftToken) -> AsyncIterator[Rig]:
    with softhsm_token.open() as custody:
        yield Rig(w3, db, custody)


def withdrawals(rig: Rig, bus: RunnerBus, tmp: Path) -> WithdrawalService:
    funding = copy.deepcopy(rig.funding)
    funding["networks"]["ethereum"]["assets"]["ETH"]["auto_approve_below"] = "1000"
    return WithdrawalService(
        catalog=parse_networks(funding),
        store=rig.withdrawal_store,
        bus=bus,
        two_factor=NoSecondFactor(),
        kyc=KycService(
            store=SqlKycStore(rig.db),
            documents=FileDocumentStore(tmp),
            audit=rig.audit,
            clock=rig.clock,
            limits={0: LevelLimits({"ETH": 10**9, "USDT": 10**12})},
        ),
        admin=AdminService(store=SqlAdminStore(rig.db), bus=bus, audit=rig.audit, clock=rig.clock),
        audit=rig.audit,
        notifier=MailNotifier(SqlUserRepository(rig.db), SqlOutbox(rig.db), rig.clock.now_ms),
        screening=ListScreening([]),
        policy=WithdrawalPolicy(cooling_off_ms=0, require_2fa=False),
        now_ms=rig.clock.now_ms,
    )


def booker(rig: Rig, bus: RunnerBus, store: SqlNetworkFeeStore | None = None) -> NetworkFeeBooker:
    return NetworkFeeBooker(
        catalog=rig.catalog,
        store=store or SqlNetworkFeeStore(rig.db),
        readers={"ethereum": Web3PayoutChain(rig.w3, rig.chain_id)},
        bus=bus,
        now_ms=rig.clock.now_ms,
        alerts=AlertService(SqlAlertStore(rig.db), rig.audit, rig.clock),
    )


async def reconciled(rig: Rig, core_dir: Path, database_url: str, seq: int) -> dict[str, Any]:
    """``tradewind reconcile --json`` at ``seq``: the projectors' ledger caught up from the
    journal, custody read on chain (deposit addresses, the hot wallet, the cold one)."""
    db = Database.from_url(database_url)
    try:
        await runner_for(db).catch_up(core_dir, until_seq=seq)
    finally:
        await db.dispose()
    settings = load_settings(
        None,
        environ={},
        overrides={"data_dir": core_dir, "database_url": database_url, "funding": rig.funding},
    )
    code, text = await run_reconcile(
        settings,
        as_json=True,
        rpc=["ethereum=http://node"],
        addresses=[f"ethereum={rig.hot}"],
        connect=lambda _url: rig.w3,
    )
    report: dict[str, Any] = json.loads(text)
    report["code"] = code
    return report


def gas_of(rig: Rig, txid: str) -> int:
    receipt = rig.w3.eth.get_transaction_receipt(txid)  # type: ignore[arg-type]
    return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])


@async_test
async def test_payout_sweep_and_top_up_fees_are_booked_once_and_reconcile_clean(
    rig: Rig, tmp_path: Path, database_url: str
) -> None:
    core_dir = tmp_path / "core"
    runner = CoreRunner(JournaledCore(core_dir), clock_ms=lambda: 1_000)
    runner.start()
    try:
        await runner.submit(AddAsset(asset="ETH", decimals=8))
        await runner.submit(AddAsset(asset="USDT", decimals=6))
        bus = RunnerBus(runner)
        watcher = ChainWatcher(
            rig.net,
            Web3ChainReader(rig.w3, [rig.contract]),
            rig.watcher,
            rig.addresses,
            bus,
            rig.clock.now_ms,
            start_height=int(rig.w3.eth.block_number) + 1,
            own=rig.store,
        )
        # Two users deposit (no operator float anywhere: custody is the users' money).
        alice, alice_address = await rig.deposit_address()
        _bob, bob_address = await rig.deposit_address()
        rig.pay(alice_address, wei=2 * 10**18)
        rig.pay(bob_address, tokens=40 * 10**6)
        rig.mine(2)
        assert (await watcher.step()).credited == 2

        # The sweeper sweeps the ETH, tops up Bob's address with gas, sweeps the token.
        sweeper = rig.sweeper()
        for _ in range(15):
            await sweeper.step()
            await watcher.step()
            if len(await rig.all_transfers()) == 3 and not await rig.store.unfinished("ethereum"):
                break
            rig.mine(1)
        transfers = await rig.all_transfers()
        assert sorted((t.kind, t.asset, t.status) for t in transfers) == [
            ("sweep", "ETH", "confirmed"),
            ("sweep", "USDT", "confirmed"),
            ("topup", "ETH", "confirmed"),
        ]

        # Nothing is in the fee account yet: every fee waits, pending, with one alert.
        fees = booker(rig, bus)
        first = await fees.step()
        assert (first.recorded, first.booked, first.waiting, first.alerts) == (3, 0, 3, 1)
        store = SqlNetworkFeeStore(rig.db)
        assert {f.status for f in await store.all()} == {"pending"}
        open_alerts = await SqlAlertStore(rig.db).list(status="open", limit=10, before_id=None)
        assert [a.kind for a in open_alerts] == [ALERT_KIND]
        assert runner.jcore.core.expensed == {}
        # Meanwhile reconcile finds the gas missing, and says it is the unbooked fees.
        waiting = await reconciled(rig, core_dir, database_url, runner.jcore.core.seq)
        (short,) = [f for f in waiting["findings"] if f["severity"] == "critical"]
        (named,) = [f for f in waiting["findings"] if "not booked" in f["message"]]
        unbooked = sum(f.amount for f in await store.all())
        assert (waiting["code"], short["asset"], named["asset"]) == (1, "ETH", "ETH")
        assert "SHORTFALL" in short["message"] and named["actual"] == unbooked
        assert 0 < -short["difference"] <= unbooked < -short["difference"] + 3

        # Alice withdraws 1 ETH: paid from the hot wallet, settled, its fee kept.
        await rig.withdrawal_store.add_address(
            user_id=alice, network="ethereum", address=TO, label="", at_ms=0, usable_from_ms=0
        )
        service = withdrawals(rig, bus, tmp_path)
        w = await service.request(
            alice, WithdrawalRequest("ETH", "ethereum", TO, "1"), "fee-test-1", None
        )
        processor = PayoutProcessor(
            service, {"ethereum": Web3PayoutChain(rig.w3, rig.chain_id)}, rig.client()
        )
        for _ in range(6):
            await processor.step()
            if (done := await rig.withdrawal_store.get(w.id)) and done.status == "confirmed":
                break
            rig.mine(1)
        paid = await rig.withdrawal_store.get(w.id)
        assert paid is not None and paid.status == "confirmed" and paid.txid is not None

        # The booking dies after the core booked the first fee, before the row says so;
        # restarted, and run again: each fee once.
        with pytest.raises(Killed):
            await booker(rig, bus, DiesBeforeBooked(rig.db)).step()
        await booker(rig, bus).step()
        await booker(rig, bus).step()
        rows = {(f.source, f.source_id): f for f in await store.all()}
        txids: dict[tuple[Source, int], str] = {("custody", t.id): str(t.txid) for t in transfers}
        txids[("withdrawal", w.id)] = paid.txid
        assert set(rows) == set(txids)
        for key, txid in txids.items():
            row = rows[key]
            gas = gas_of(rig, txid)
            assert (row.status, row.txid, row.fee_chain) == ("booked", txid, gas)
            assert row.amount == -(-gas // WEI) and row.asset == "ETH"
        booked = sum(r.amount for r in rows.values())
        core = runner.jcore.core
        assert core.expensed == {"ETH": booked}
        assert core.expense_refs == {r.ref for r in rows.values()}
        fee_account = core.accounts[FEE_ACCOUNT]["ETH"]
        assert (fee_account.available, fee_account.locked) == (200_000 - booked, 0)
        assert check_invariants(core) == []
        last = core.seq
    finally:
        await runner.stop()

    # `tradewind reconcile`: the ledger projected from the journal, custody read on chain.
    report = await reconciled(rig, core_dir, database_url, last)
    code, text = report["code"], json.dumps(report)
    assert code == 0 and report["ok"], text
    assert report["seq"] == last and report["checks"] == ["core", "ledger", "custody"]
    assert not [f for f in report["findings"] if f["severity"] != "info"]
    assert not [f for f in report["findings"] if "not booked" in f["message"]]
    on_chain = sum(rig.eth(a) for a in (alice_address, bob_address, rig.hot, COLD))
    assert report["holdings"]["ETH"] == on_chain // WEI
    surplus = report["holdings"]["ETH"] - report["liabilities"]["ETH"]
    assert 0 <= surplus < len(rows), (surplus, rows)  # only the rounding up of each fee
    assert report["holdings"]["USDT"] == report["liabilities"]["USDT"] == 40 * 10**6
