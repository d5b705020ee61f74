"""The Bitcoin payout rig of tests/integration/hsm/ (test_withdrawal_bitcoin.py,
test_network_fees_bitcoin.py; the ``rig`` fixture of that directory's conftest): the hot
key in a SoftHSM2 token, the signer's HTTP app in process, the node simulator verifying
and mining, a journaled core with BTC, and the withdrawal service over SQL stores."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.bitcoind_sim import BitcoindSim, SimWallet
from tests.support.custody_rig import Clock, RunnerBus
from tests.support.second_factor import NoSecondFactor
from tests.support.softhsm import SoftToken
from tradewind.adapters.aml_list import ListScreening
from tradewind.adapters.chain.bitcoin_tx import BitcoinTxCodec
from tradewind.adapters.chain.bitcoind_payout import BitcoindPayoutChain
from tradewind.adapters.chain.bitcoind_reader import BitcoindReader
from tradewind.adapters.chain.evm_tx import EvmTxCodec
from tradewind.adapters.kyc_files import FileDocumentStore
from tradewind.adapters.signer_http import HttpSignerClient
from tradewind.adapters.sql import Database, SqlUserRepository
from tradewind.adapters.sql.admin import SqlAdminStore
from tradewind.adapters.sql.audit import SqlAuditStore
from tradewind.adapters.sql.kyc import SqlKycStore
from tradewind.adapters.sql.outbox import SqlOutbox
from tradewind.adapters.sql.withdrawals import SqlWithdrawalStore
from tradewind.core.commands import AddAsset, Deposit
from tradewind.gateways.signer_api import create_signer_app
from tradewind.journal.recovery import JournaledCore
from tradewind.runtime.sequencer import CoreRunner
from tradewind.services.admin import AdminService
from tradewind.services.audit import AuditLog
from tradewind.services.funding.networks import NetworkCatalog, parse_networks
from tradewind.services.funding.payouts import PayoutProcessor
from tradewind.services.funding.signer import SignerService
from tradewind.services.funding.withdrawal_config import WithdrawalPolicy
from tradewind.services.funding.withdrawal_ports import SignerClient
from tradewind.services.funding.withdrawals import (
    MailNotifier,
    WithdrawalRequest,
    WithdrawalService,
)
from tradewind.services.kyc import KycService, LevelLimits

SECRET = "b" * 40
COIN = 10**8
FEE = 10_000  # the withdrawal fee: 0.0001 BTC
FUNDING = {  # as the config file would say it
    "networks": {
        "bitcoin": {
            "chain": "regtest",
            "assets": {
                "BTC": {
                    "decimals": 8,
                    "confirmations": 2,
                    "min_deposit": "0.0001",
                    "withdrawal_fee": "0.0001",
                    "min_withdrawal": "0.001",
                    "auto_approve_below": "0.5",
                    "two_person_above": "5",
                }
            },
        }
    }
}
CATALOG = parse_networks(FUNDING)


class Rig:
    def __init__(self, sim: BitcoindSim, db: Database, runner: CoreRunner, custody: Any) -> None:
        self.sim = sim
        self.db = db
        self.runner = runner
        self.clock = Clock()
        self.store = SqlWithdrawalStore(db)
        self.audit = AuditLog(SqlAuditStore(db), self.clock)
        self.signer = SignerService(
            store=self.store,
            custody=custody,
            codec=EvmTxCodec(),
            utxo_codecs={"bitcoin": BitcoinTxCodec("regtest")},
            audit=self.audit,
            catalog=CATALOG,
            keys={"bitcoin": f"hot-btc-{uuid.uuid4().hex[:12]}"},
            secret=SECRET,
            now_ms=self.clock.now_ms,
        )
        self.hot = self.signer.ensure_keys()["bitcoin"]
        self.signer_app = create_signer_app(self.signer)
        self.faucet = SimWallet(sim, b"\x07" * 32)
        self.faucet.fund(2)
        self.dest = SimWallet(sim, b"\x09" * 32)
        self.node = BitcoindReader(sim.url, user=sim.user, password=sim.password)
        self.chain = BitcoindPayoutChain(self.node, fallback_fee_rate=10)

    def fund_hot(self, *sats: int) -> None:
        self.faucet.send([(self.hot, v) for v in sats])
        self.mine()

    def mine(self, n: int = 1) -> None:
        self.sim.rpc("generatetoaddress", n, self.faucet.address)

    def hot_balance(self) -> int:
        from embit.script import address_to_scriptpubkey

        script = bytes(address_to_scriptpubkey(self.hot).data)
        return sum(c.value for _, c in self.sim.coins_of(script))

    def service(self, catalog: NetworkCatalog = CATALOG) -> WithdrawalService:
        bus = RunnerBus(self.runner)
        return WithdrawalService(
            catalog=catalog,
            store=self.store,
            bus=bus,
            two_factor=NoSecondFactor(),
            kyc=KycService(
                store=SqlKycStore(self.db),
                documents=FileDocumentStore(Path("/nonexistent")),
                audit=self.audit,
                clock=self.clock,
                limits={0: LevelLimits({"BTC": 100 * COIN})},
            ),
            admin=AdminService(
                store=SqlAdminStore(self.db),
                bus=bus,
                audit=self.audit,
                clock=self.clock,
            ),
            audit=self.audit,
            notifier=MailNotifier(
                SqlUserRepository(self.db), SqlOutbox(self.db), self.clock.now_ms
            ),
            screening=ListScreening([]),
            policy=WithdrawalPolicy(cooling_off_ms=0, require_2fa=False),
            now_ms=self.clock.now_ms,
        )

    def client(self) -> HttpSignerClient:
        return HttpSignerClient(
            "http://signer",
            SECRET,
            self.clock.now_ms,
            transport=httpx.ASGITransport(app=self.signer_app),
        )

    def processor(
        self, service: WithdrawalService, signer: SignerClient | None = None, chain: Any = None
    ) -> PayoutProcessor:
        return PayoutProcessor(service, {"bitcoin": chain or self.chain}, signer or self.client())

    async def user(self, btc: int) -> int:
        added = await SqlUserRepository(self.db).add(
            email=f"b{time.monotonic_ns()}@example.com", password_hash="x", created_at_ms=1
        )
        assert added is not None
        await self.runner.submit(Deposit(user=added.id, asset="BTC", amount=btc))
        await self.store.add_address(
            user_id=added.id,
            network="bitcoin",
            address=self.dest.address,
            label="",
            at_ms=0,
            usable_from_ms=0,
        )
        return added.id

    def balance(self, user: int) -> tuple[int, int]:
        b = self.runner.jcore.core.accounts.get(user, {}).get("BTC")
        return (0, 0) if b is None else (b.available, b.locked)

    def withdrawn(self) -> int:
        return self.runner.jcore.core.withdrawn.get("BTC", 0)

    async def statuses(self, wid: int) -> list[str]:
        return [e.status for e in await self.store.timeline(wid)]

    def paid(self) -> list[tuple[str, int]]:
        """The destination's coins: (txid, satoshi)."""
        return sorted((op[0], c.value) for op, c in self.sim.coins_of(self.dest.script))


@asynccontextmanager
async def running_rig(
    sim: BitcoindSim, db: Database, core_dir: Path, token: SoftToken
) -> AsyncIterator[Rig]:
    """The rig over a journaled core in ``core_dir`` (BTC added), stopped after."""
    runner = CoreRunner(JournaledCore(core_dir), clock_ms=lambda: 1_000)
    runner.start()
    await runner.submit(AddAsset(asset="BTC", decimals=8))
    try:
        with token.open() as custody:
            r = Rig(sim, db, runner, custody)
            yield r
            await r.node.aclose()
    finally:
        await runner.stop()


def request(amount: str, address: str) -> WithdrawalRequest:
    return WithdrawalRequest("BTC", "bitcoin", address, amount)


async def run(processor: PayoutProcessor, rig: Rig, wid: int, until: str, steps: int = 6) -> None:
    for _ in range(steps):
        await processor.step()
        w = await rig.store.get(wid)
        assert w is not None
        if w.status == until:
            return
        rig.mine()
    w = await rig.store.get(wid)
    raise AssertionError(f"withdrawal {wid} is {w.status if w else None}, not {until}")
