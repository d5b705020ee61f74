"""A Bitcoin payout's network fee booked in the core (ADR 0034), on the node simulator.

The payout rig of test_withdrawal_bitcoin.py (the hot key in a SoftHSM2 token, the
signer's HTTP app in process, the simulator verifying and mining, a journaled core,
SQLite and PostgreSQL). The hot wallet holds exactly what the user deposited (no
operator float), the user withdraws, the payout is mined and settled, and the fee
booking reads the payout's inputs less its outputs from the node (the simulator gives
no ``fee`` field, so the booking reads the spent outputs' parents) and books it once
from the withdrawal-fee account, although a first run dies between the core's booking
and the row. ``run_reconcile`` then finds custody exactly equal to what the core owes
(satoshi are the core's units: nothing to round): no SHORTFALL, no surplus.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_projectors import runner_for
from tests.support.bitcoin_payout_rig import (
    CATALOG,
    COIN,
    FEE,
    FUNDING,
    Rig,
    request,
    run,
)
from tests.support.custody_rig import Killed, RunnerBus
from tradewind.adapters.sql import Database
from tradewind.adapters.sql.alerts import SqlAlertStore
from tradewind.adapters.sql.network_fees import SqlNetworkFeeStore
from tradewind.runtime.config import load_settings
from tradewind.runtime.reconcile import run_reconcile
from tradewind.services.alerts import AlertService
from tradewind.services.funding.network_fees import NetworkFeeBooker
from tradewind.services.funding.withdrawals import FEE_ACCOUNT

async_test = pytest.mark.asyncio


class DiesBeforeBooked(SqlNetworkFeeStore):
    async def booked(self, source: str, source_id: int, seq: int | None, at_ms: int) -> bool:
        raise Killed("killed between the core's booking and the row")


def booker(rig: Rig, store: SqlNetworkFeeStore | None = None) -> NetworkFeeBooker:
    return NetworkFeeBooker(
        catalog=CATALOG,
        store=store or SqlNetworkFeeStore(rig.db),
        readers={"bitcoin": rig.chain},
        bus=RunnerBus(rig.runner),
        now_ms=rig.clock.now_ms,
        alerts=AlertService(SqlAlertStore(rig.db), rig.audit, rig.clock),
    )


@async_test
async def test_a_bitcoin_payout_fee_is_booked_once_and_custody_equals_the_books(
    rig: Rig, tmp_path: Path, database_url: str
) -> None:
    user = await rig.user(2 * COIN)
    rig.fund_hot(COIN, COIN)  # the user's deposit, swept: two coins in the hot wallet
    service = rig.service()
    w = await service.request(user, request("0.4", rig.dest.address), "btc-fee-1", None)
    assert w.status == "approved"
    await run(rig.processor(service), rig, w.id, "confirmed")
    done = await service.get_any(w.id)
    assert done.txid is not None and done.tx is not None
    tx = json.loads(done.tx)
    fee = sum(i["value"] for i in tx["inputs"]) - sum(o["value"] for o in tx["outputs"])
    assert fee > 0 and rig.balance(FEE_ACCOUNT) == (FEE, 0)

    with pytest.raises(Killed):
        await booker(rig, DiesBeforeBooked(rig.db)).step()
    assert rig.balance(FEE_ACCOUNT) == (FEE - fee, 0)  # booked by the core already
    await booker(rig).step()
    again = await booker(rig).step()
    assert (again.recorded, again.booked) == (0, 0)

    row = await SqlNetworkFeeStore(rig.db).get("withdrawal", w.id)
    assert row is not None
    assert (row.status, row.asset, row.txid, row.fee_chain, row.amount, row.seq) == (
        "booked",
        "BTC",
        done.txid,
        fee,
        fee,
        None,  # learnt from duplicate_expense after the "crash"
    )
    core = rig.runner.jcore.core
    assert core.expensed == {"BTC": fee} and core.expense_refs == {row.ref}
    assert rig.balance(FEE_ACCOUNT) == (FEE - fee, 0)
    assert rig.balance(user) == (2 * COIN - 40_000_000, 0)
    last = core.seq

    # `tradewind reconcile`: the ledger from the journal, custody from the simulator.
    db = Database.from_url(database_url)
    try:
        await runner_for(db).catch_up(tmp_path / "core", until_seq=last)
    finally:
        await db.dispose()
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": tmp_path / "core",
            "database_url": database_url,
            "funding": FUNDING,
        },
    )
    node = rig.sim.url.replace("http://", f"http://{rig.sim.user}:{rig.sim.password}@")
    code, text = await run_reconcile(
        settings, as_json=True, rpc=[f"bitcoin={node}"], addresses=[f"bitcoin={rig.hot}"]
    )
    report = json.loads(text)
    assert (code, report["ok"], report["seq"]) == (0, True, last), text
    assert report["findings"] == []  # no shortfall, and not even a surplus
    assert report["holdings"]["BTC"] == report["liabilities"]["BTC"] == rig.hot_balance()
    assert rig.hot_balance() == 2 * COIN - (40_000_000 - FEE) - fee
