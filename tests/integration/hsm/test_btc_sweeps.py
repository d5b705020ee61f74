"""Bitcoin sweeps for real (ADR 0035): the hot key and the BIP 84 deposit account key
sealed in a SoftHSM2 token, the signer's HTTP app in process, the node simulator over
HTTP (it verifies every input's BIP 143 signature with libsecp256k1 before taking a
transaction), SQLite and PostgreSQL.

- deposits at two users' addresses (three coins) are swept in one transaction to the hot
  wallet, less the fee at the rate; a coin worth less than its input's fee (dust) and an
  address under ``min_sweep`` stay; the simulator refuses the same sweep with its
  second input's signature altered;
- the sweeper killed at the broadcast (before and after the node took it) and
  restarted: one transaction, confirmed once, one signature; killed at each of the 11
  calls a sweep makes to the node or the signer, before or after the call: each coin in
  hot once; a signer that is down: the sweep waits, then is signed once;
- a broadcast the node refuses (its minimum relay fee) fails the row; its coins rest,
  then are swept by a later step;
- the hot wallet above its ceiling sends the excess to the cold address (its coins
  reserved from payouts meanwhile);
- the signer refuses a "sweep" paying a stranger and one spending a non-deposit coin;
- after a sweep, custody is short of the core by exactly its network fee; once the
  network-fee booking (ADR 0034) expensed it, ``tradewind reconcile --rpc bitcoin=...``
  finds no difference.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from embit.transaction import Transaction

from tests.integration.test_projectors import runner_for
from tests.support.bitcoind_sim import BitcoindSim, RpcFailure, SimWallet
from tests.support.custody_rig import Clock, Killed, RunnerBus, SweepRig, settle
from tests.support.softhsm import SoftToken
from tradewind.adapters.chain.bitcoin_tx import BitcoinTxCodec, script_of
from tradewind.adapters.chain.bitcoind_payout import BitcoindPayoutChain
from tradewind.adapters.chain.bitcoind_reader import BitcoindReader
from tradewind.adapters.chain.bitcoind_sweeps import BitcoindSweepChain
from tradewind.adapters.chain.evm_tx import EvmTxCodec
from tradewind.adapters.hsm.pkcs11_custody import Pkcs11Custody
from tradewind.adapters.signer_http import HttpSignerClient
from tradewind.adapters.sql import Database
from tradewind.adapters.sql.audit import SqlAuditStore
from tradewind.adapters.sql.chain_watch import SqlWatcherStore
from tradewind.adapters.sql.deposit_addresses import SqlDepositAddressStore
from tradewind.adapters.sql.network_fees import SqlNetworkFeeStore
from tradewind.adapters.sql.sweeps import SqlSweepStore
from tradewind.adapters.sql.withdrawals import SqlWithdrawalStore
from tradewind.core.commands import AddAsset, Deposit
from tradewind.gateways.signer_api import create_signer_app
from tradewind.journal.recovery import JournaledCore
from tradewind.runtime.config import load_settings
from tradewind.runtime.reconcile import custody, run_reconcile
from tradewind.runtime.sequencer import CoreRunner
from tradewind.services.audit import AuditLog
from tradewind.services.funding.chain_ports import ChainDeposit, WatchedBlock
from tradewind.services.funding.deposit_keys import (
    DepositKeyring,
    account_xpub,
    new_account_key,
)
from tradewind.services.funding.derivation import AddressDeriver
from tradewind.services.funding.network_fees import NetworkFeeBooker
from tradewind.services.funding.networks import parse_networks
from tradewind.services.funding.signer import SignerService
from tradewind.services.funding.sweep_config import parse_sweep_settings
from tradewind.services.funding.sweep_ports import CustodyTransfer, NewTransfer
from tradewind.services.funding.sweep_signer import SweepSigner
from tradewind.services.funding.sweeps import Sweeper
from tradewind.services.funding.utxo_sweeps import RETRY_AFTER_MS
from tradewind.services.funding.withdrawal_ports import SignedTx, SignerUnavailable
from tradewind.services.funding.withdrawals import FEE_ACCOUNT

async_test = pytest.mark.asyncio
SECRET = "t" * 40
COIN = 10**8
RATE = 10  # sat/vB: the fallback (the simulator has no estimate)
ASSET = {
    "decimals": 8,
    "confirmations": 2,
    "min_deposit": "0.000001",
    "withdrawal_fee": "0.0001",
}


class Rig(SweepRig):
    network = "bitcoin"
    email_prefix = "b"
    settle_steps = 8
    secret = SECRET

    def __init__(self, sim: BitcoindSim, db: Database, custody: Pkcs11Custody) -> None:
        self.sim = sim
        self.db = db
        self.clock = Clock()
        plain = parse_networks(
            {"networks": {"bitcoin": {"chain": "regtest", "assets": {"BTC": ASSET}}}}
        )
        bare = plain.network("bitcoin")
        assert bare is not None
        xprv = new_account_key(bare)
        self.cold = SimWallet(sim, b"\x0c" * 32)
        label = f"dep-btc-{uuid.uuid4().hex[:12]}"
        self.funding: dict[str, Any] = {
            "networks": {
                "bitcoin": {
                    "chain": "regtest",
                    "xpub": account_xpub(xprv, bare),
                    "assets": {"BTC": ASSET},
                }
            },
            "sweeps": {
                "bitcoin": {
                    "deposit_key": label,
                    "cold_address": self.cold.address,
                    "assets": {
                        "BTC": {"min_sweep": "0.001", "hot_ceiling": "2", "hot_target": "1"}
                    },
                }
            },
        }
        self.catalog = parse_networks(self.funding)
        self.settings = parse_sweep_settings(self.funding, self.catalog)
        net = self.catalog.network("bitcoin")
        assert net is not None
        self.deriver = AddressDeriver(net)
        custody.put_secret(label, xprv.encode())
        self.audit = AuditLog(SqlAuditStore(db), self.clock)
        hot_keys = {"bitcoin": f"hot-btc-{uuid.uuid4().hex[:12]}"}
        codecs = {"bitcoin": BitcoinTxCodec("regtest")}
        self.withdrawals = SqlWithdrawalStore(db)
        signer = SignerService(
            store=self.withdrawals,
            custody=custody,
            codec=EvmTxCodec(),
            utxo_codecs=codecs,
            audit=self.audit,
            catalog=self.catalog,
            keys=hot_keys,
            secret=SECRET,
            now_ms=self.clock.now_ms,
        )
        self.hot = signer.ensure_keys()["bitcoin"]
        self.store = SqlSweepStore(db)
        self.addresses = SqlDepositAddressStore(db)
        self.sweep_signer = SweepSigner(
            store=self.store,
            addresses=self.addresses,
            custody=custody,
            keyrings={"bitcoin": DepositKeyring.from_vault(net, custody, label)},
            codec=EvmTxCodec(),
            audit=self.audit,
            catalog=self.catalog,
            settings=self.settings,
            hot_keys=hot_keys,
            secret=SECRET,
            now_ms=self.clock.now_ms,
            utxo_codecs=codecs,
        )
        self.app = create_signer_app(signer, self.sweep_signer)
        self.watcher = SqlWatcherStore(db)
        self.faucet = SimWallet(sim, b"\x07" * 32)
        self.faucet.fund(2)
        self.node = BitcoindReader(sim.url, user=sim.user, password=sim.password)
        self.chain = BitcoindSweepChain(BitcoindPayoutChain(self.node, fallback_fee_rate=RATE))
        self.block = 0

    def sweeper(self, chain: object | None = None, signer: object | None = None) -> Sweeper:
        return Sweeper(
            catalog=self.catalog,
            settings=self.settings,
            store=self.store,
            withdrawals=self.withdrawals,
            chains={"bitcoin": chain or self.chain},  # type: ignore[dict-item]
            signer=signer or self.client(),  # type: ignore[arg-type]
            now_ms=self.clock.now_ms,
        )

    async def deposit(self, *paid: tuple[int, str, int]) -> str:
        """One payment from the faucet to (user, address, satoshi)..., mined two deep and
        recorded credited as the watcher does (output index = position)."""
        txid = self.faucet.send([(address, sats) for _, address, sats in paid])
        self.mine(2)
        self.block += 1
        block = WatchedBlock(self.block, secrets.token_hex(32))
        deposits = [
            ChainDeposit(
                "bitcoin", txid, n, user, "BTC", sats, sats, block.number, block.hash, "pending"
            )
            for n, (user, _, sats) in enumerate(paid)
        ]
        await self.watcher.record_block("bitcoin", block, deposits, keep=1000)
        for n in range(len(paid)):
            await self.watcher.finish("bitcoin", txid, n, "credited", seq=1)
        return txid

    def mine(self, n: int = 1) -> None:
        self.sim.rpc("generatetoaddress", n, self.faucet.address)

    def coins(self, address: str) -> list[int]:
        return sorted(c.value for _, c in self.sim.coins_of(script_of(address)))

    async def swept_audits(self) -> int:
        return len([e for e in await self.audit.recent() if e.action == "signer.swept"])


@pytest_asyncio.fixture
async def rig(sim: BitcoindSim, db: Database, softhsm_token: SoftToken) -> AsyncIterator[Rig]:
    with softhsm_token.open() as custody:
        r = Rig(sim, db, custody)
        yield r
        await r.node.aclose()


def tx_of(t: CustodyTransfer) -> dict[str, Any]:
    assert t.tx is not None
    tx: dict[str, Any] = json.loads(t.tx)
    return tx


def vsize_fee(inputs: int, outputs: int = 1) -> int:
    """The fee at RATE of P2WPKH inputs and outputs, signatures at 72 bytes."""
    base = 4 + 1 + 41 * inputs + 1 + 31 * outputs + 4
    return -(-(base * 4 + 2 + 108 * inputs) // 4) * RATE


class Tampering:
    """The real node; before each broadcast, the same transaction with its second input's
    signature altered is offered first and must be refused."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.refusals: list[str] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.rig.chain, name)

    async def broadcast(self, raw: str) -> str | None:
        tx = Transaction.parse(bytes.fromhex(raw))
        if len(tx.vin) > 1:
            der = bytearray(tx.vin[1].witness.items[0])
            der[10] ^= 0x01  # a byte of r
            tx.vin[1].witness.items[0] = bytes(der)
            with pytest.raises(RpcFailure) as refused:
                self.rig.sim.rpc("sendrawtransaction", tx.serialize().hex())
            self.refusals.append(str(refused.value))
        return await self.rig.chain.broadcast(raw)


@async_test
async def test_two_users_deposits_are_swept_in_one_transaction_and_dust_stays(rig: Rig) -> None:
    u1, a1 = await rig.deposit_address()
    u2, a2 = await rig.deposit_address()
    u3, dusty = await rig.deposit_address()
    u4, small = await rig.deposit_address()
    await rig.deposit((u1, a1, 30_000_000), (u2, a2, 20_000_000), (u3, dusty, 600))
    await rig.deposit((u1, a1, 10_000_000), (u4, small, 50_000))  # under min_sweep 0.001

    chain = Tampering(rig)
    await settle(rig, rig.sweeper(chain))

    [sweep] = await rig.all_transfers()
    assert (sweep.kind, sweep.network, sweep.asset, sweep.recipient, sweep.status) == (
        "sweep",
        "bitcoin",
        "BTC",
        rig.hot,
        "confirmed",
    )
    tx = tx_of(sweep)
    assert sorted(i["address"] for i in tx["inputs"]) == sorted([a1, a1, a2])
    fee = vsize_fee(3)
    assert sweep.amount == 60_000_000 - fee
    assert tx["outputs"] == [{"address": rig.hot, "value": 60_000_000 - fee}]
    assert sweep.txid is not None and sweep.block_number is not None
    # on chain: one coin in hot; the swept addresses empty; dust and the small one stay
    assert rig.coins(rig.hot) == [60_000_000 - fee]
    assert rig.coins(a1) == [] and rig.coins(a2) == []
    assert rig.coins(dusty) == [600] and rig.coins(small) == [50_000]
    mined = rig.sim.rpc("getrawtransaction", sweep.txid, True)
    assert len(mined["vin"]) == 3 and mined["confirmations"] >= 2
    # the simulator checked each input: an altered second signature was refused
    assert len(chain.refusals) == 1 and "mandatory-script-verify-flag-failed" in chain.refusals[0]
    assert await rig.swept_audits() == 1
    # nothing more to do
    await rig.sweeper().step()
    assert len(await rig.all_transfers()) == 1


class KilledAtBroadcast:
    def __init__(self, rig: Rig, *, before: bool) -> None:
        self.rig = rig
        self.before = before

    def __getattr__(self, name: str) -> object:
        return getattr(self.rig.chain, name)

    async def broadcast(self, raw: str) -> str | None:
        if not self.before:
            await self.rig.chain.broadcast(raw)
        raise Killed("killed at the broadcast")


@pytest.mark.parametrize("before", [True, False], ids=["before-node", "after-node"])
@async_test
async def test_a_sweeper_killed_at_the_broadcast_resumes_with_the_same_transaction(
    rig: Rig, before: bool
) -> None:
    u1, a1 = await rig.deposit_address()
    u2, a2 = await rig.deposit_address()
    await rig.deposit((u1, a1, 40_000_000), (u2, a2, 5_000_000))

    with pytest.raises(Killed):
        await rig.sweeper(KilledAtBroadcast(rig, before=before)).step()
    [signed] = await rig.all_transfers()
    assert signed.status == "signed" and signed.txid is not None
    assert (signed.txid in rig.sim.rpc("getrawmempool")) is not before

    await settle(rig, rig.sweeper())  # restarted
    [done] = await rig.all_transfers()
    assert (done.id, done.txid, done.status) == (signed.id, signed.txid, "confirmed")
    assert rig.coins(rig.hot) == [45_000_000 - vsize_fee(2)]
    assert await rig.swept_audits() == 1
    await rig.sweeper().step()
    assert len(await rig.all_transfers()) == 1


class SignerDown:
    """The signer unreachable for its first ``down`` sweep requests."""

    def __init__(self, inner: HttpSignerClient, down: int) -> None:
        self.inner = inner
        self.down = down

    async def address(self, network: str) -> str:
        return await self.inner.address(network)

    async def sweep(self, transfer_id: int, network: str, tx: Mapping[str, object]) -> SignedTx:
        if self.down > 0:
            self.down -= 1
            raise SignerUnavailable("signer not reachable: ConnectError")
        return await self.inner.sweep(transfer_id, network, tx)


@async_test
async def test_a_sweep_waits_for_a_signer_that_is_down_and_is_signed_once(rig: Rig) -> None:
    u1, a1 = await rig.deposit_address()
    await rig.deposit((u1, a1, 15_000_000))
    signer = SignerDown(rig.client(), down=2)
    sweeper = rig.sweeper(signer=signer)
    await sweeper.step()
    await sweeper.step()
    [waiting] = await rig.all_transfers()
    assert waiting.status == "signing" and waiting.raw_tx is None
    await settle(rig, sweeper)
    [done] = await rig.all_transfers()
    assert (done.id, done.status) == (waiting.id, "confirmed")
    assert rig.coins(rig.hot) == [15_000_000 - vsize_fee(1)]
    assert await rig.swept_audits() == 1


class Dies:
    """The node and the signer, with the process killed at the ``at``-th call to either,
    ``before`` the call or after it did its work."""

    def __init__(self, rig: Rig, at: int, *, before: bool) -> None:
        self.rig = rig
        self.at = at
        self.before = before
        self.calls = 0
        self.inner_signer = rig.client()
        self.signer = _SignerSide(self)

    def __getattr__(self, name: str) -> object:
        return getattr(self.rig.chain, name)

    async def _call(self, fn: Any, *args: Any) -> Any:
        self.calls += 1
        if self.calls == self.at and self.before:
            raise Killed(f"killed before call {self.calls}")
        out = await fn(*args)
        if self.calls == self.at:
            raise Killed(f"killed after call {self.calls}")
        return out

    async def coins_of(self, addresses: Any) -> Any:
        return await self._call(self.rig.chain.coins_of, addresses)

    async def fee_rate(self) -> int:
        rate: int = await self._call(self.rig.chain.fee_rate)
        return rate

    async def broadcast(self, raw: str) -> str | None:
        refused: str | None = await self._call(self.rig.chain.broadcast, raw)
        return refused

    async def state(self, txid: str) -> Any:
        return await self._call(self.rig.chain.state, txid)


class _SignerSide:
    def __init__(self, dies: Dies) -> None:
        self.dies = dies

    async def address(self, network: str) -> str:
        address: str = await self.dies._call(self.dies.inner_signer.address, network)
        return address

    async def sweep(self, transfer_id: int, network: str, tx: Mapping[str, object]) -> SignedTx:
        signed: SignedTx = await self.dies._call(
            self.dies.inner_signer.sweep, transfer_id, network, tx
        )
        return signed


@async_test
async def test_a_sweeper_killed_at_any_call_and_restarted_sweeps_each_coin_once(
    rig: Rig,
) -> None:
    """Killed at each call it makes to the node or the signer (before the call, or after
    it did its work), then restarted: the coins end in hot once, one transaction."""
    in_hot = 0
    for before in (True, False):
        at = 1
        while True:
            user, address = await rig.deposit_address()
            await rig.deposit((user, address, 7_000_000))
            known = {t.id for t in await rig.all_transfers()}
            dies = Dies(rig, at, before=before)
            sweeper = rig.sweeper(dies, dies.signer)
            killed = False
            try:
                for _ in range(6):
                    await sweeper.step()
                    if not await rig.store.unfinished("bitcoin"):
                        break
                    rig.mine(1)
            except Killed:
                killed = True
            await settle(rig, rig.sweeper())  # restarted
            new = [t for t in await rig.all_transfers() if t.id not in known]
            assert [t.status for t in new] == ["confirmed"], (at, before, new)
            assert rig.coins(address) == []
            in_hot += 7_000_000 - vsize_fee(1)
            assert sum(rig.coins(rig.hot)) == in_hot, (at, before)
            if not killed:
                break
            at += 1
        assert at > 4  # it was killed at every call of a whole sweep
    assert await rig.swept_audits() == len(await rig.all_transfers())


@async_test
async def test_a_refused_broadcast_fails_and_its_coins_are_swept_later(rig: Rig) -> None:
    u1, a1 = await rig.deposit_address()
    await rig.deposit((u1, a1, 25_000_000))
    rig.sim.min_relay_fee = 50_000  # 50 sat/vB: the sweep at 10 sat/vB is refused

    await rig.sweeper().step()
    [failed] = await rig.all_transfers()
    assert failed.status == "failed" and failed.reason is not None
    assert "min relay fee not met" in failed.reason
    assert rig.coins(a1) == [25_000_000]
    await rig.sweeper().step()  # the coins rest: no second row at once
    assert len(await rig.all_transfers()) == 1

    rig.sim.min_relay_fee = 0
    rig.clock.offset_ms = RETRY_AFTER_MS + 1_000
    await settle(rig, rig.sweeper())
    first, second = await rig.all_transfers()
    assert (first.status, second.status) == ("failed", "confirmed")
    assert tx_of(second)["inputs"] == tx_of(first)["inputs"]
    assert rig.coins(a1) == [] and rig.coins(rig.hot) == [25_000_000 - vsize_fee(1)]


@async_test
async def test_the_hot_wallet_above_its_ceiling_sends_the_excess_to_cold(rig: Rig) -> None:
    rig.faucet.send([(rig.hot, COIN), (rig.hot, COIN), (rig.hot, COIN // 2)])  # 2.5 BTC
    rig.mine(1)

    sweeper = rig.sweeper()
    await sweeper.step()
    [cold] = await rig.all_transfers()
    assert (cold.kind, cold.sender, cold.recipient, cold.amount) == (
        "cold",
        rig.hot,
        rig.cold.address,
        3 * COIN // 2,  # down to the 1 BTC target
    )
    assert cold.status == "broadcast"
    spent = {f"{i['txid']}:{i['vout']}" for i in tx_of(cold)["inputs"]}
    # payouts may not pick these coins while the move is unfinished
    assert await rig.store.reserved_outpoints("bitcoin") == spent
    await sweeper.step()  # one move at a time
    assert len(await rig.all_transfers()) == 1

    await settle(rig, sweeper)
    [done] = await rig.all_transfers()
    assert done.status == "confirmed"
    assert rig.coins(rig.cold.address) == [3 * COIN // 2]
    fee = sum(i["value"] for i in tx_of(done)["inputs"]) - sum(
        o["value"] for o in tx_of(done)["outputs"]
    )
    assert sum(rig.coins(rig.hot)) == 5 * COIN // 2 - 3 * COIN // 2 - fee
    await sweeper.step()  # below the ceiling now
    assert len(await rig.all_transfers()) == 1
    assert await rig.store.reserved_outpoints("bitcoin") == set()


@async_test
async def test_the_signer_refuses_a_sweep_to_a_stranger_or_of_a_foreign_coin(rig: Rig) -> None:
    u1, a1 = await rig.deposit_address()
    txid = await rig.deposit((u1, a1, 10_000_000))
    stranger = SimWallet(rig.sim, b"\x0d" * 32)
    foreign = rig.faucet.send([(stranger.address, 10_000_000)])
    rig.mine(1)
    forged = [
        ({"txid": txid, "vout": 0, "address": a1, "value": 10_000_000}, stranger.address),
        ({"txid": foreign, "vout": 0, "address": stranger.address, "value": 10_000_000}, rig.hot),
    ]
    for coin, to in forged:
        tx = {
            "version": 2,
            "locktime": 0,
            "inputs": [coin],
            "outputs": [{"address": to, "value": 9_000_000}],
            "fee_rate": 10_000,
        }
        await rig.store.create(
            NewTransfer(
                kind="sweep",
                network="bitcoin",
                asset="BTC",
                contract=None,
                sender=str(coin["address"]),
                recipient=to,
                amount=9_000_000,
                gas=110,
                max_fee=10_000,
                priority_fee=0,
                status="signing",
                tx=json.dumps(tx),
            ),
            at_ms=rig.clock.now_ms(),
        )
    rig.sim.min_relay_fee = 10**9  # no genuine sweep gets through in this step
    await rig.sweeper().step()
    rows = await rig.all_transfers()
    refused = [t for t in rows if t.reason and "terms_mismatch" in t.reason]
    assert len(refused) == 2 and all(t.status == "failed" and t.raw_tx is None for t in refused)
    assert await rig.swept_audits() <= 1  # only the genuine sweep, if any, was signed
    assert rig.coins(stranger.address) == [10_000_000]


@async_test
async def test_reconcile_after_a_sweep_and_its_fee_booked_is_balanced(
    rig: Rig, tmp_path: Path, database_url: str
) -> None:
    """Two users' deposits credited in a journaled core and 0.001 BTC of the operator's in
    the fee account (its coin in hot): the sweep's fee leaves custody, short by exactly
    that fee until the network-fee booking (ADR 0034) expenses it; then ``tradewind
    reconcile`` finds no difference."""
    core_dir = tmp_path / "core"
    runner = CoreRunner(JournaledCore(core_dir), clock_ms=lambda: 1_000)
    runner.start()
    try:
        await runner.submit(AddAsset(asset="BTC", decimals=8))
        u1, a1 = await rig.deposit_address()
        u2, a2 = await rig.deposit_address()
        txid = await rig.deposit((u1, a1, 30_000_000), (u2, a2, 20_000_000))
        for n, (user, sats) in enumerate(((u1, 30_000_000), (u2, 20_000_000))):
            await runner.submit(
                Deposit(user=user, asset="BTC", amount=sats, ref=f"bitcoin:{txid}:{n}")
            )
        rig.faucet.send([(rig.hot, 100_000)])  # the operator's float, in the fee account
        rig.mine(1)
        await runner.submit(Deposit(user=FEE_ACCOUNT, asset="BTC", amount=100_000, ref="float"))
        settings = load_settings(
            None,
            environ={},
            overrides={"data_dir": core_dir, "database_url": database_url, "funding": rig.funding},
        )
        url = rig.sim.url.replace("http://", f"http://{rig.sim.user}:{rig.sim.password}@")
        rpc = {"bitcoin": [url]}

        await settle(rig, rig.sweeper())
        [sweep] = await rig.all_transfers()
        fee = 50_000_000 - sweep.amount
        assert fee == vsize_fee(2)
        held = await custody(settings, rig.db, rpc, {"bitcoin": [rig.hot]})
        assert held["BTC"].amount == 50_100_000 - fee  # short of the core by the fee

        booker = NetworkFeeBooker(
            catalog=rig.catalog,
            store=SqlNetworkFeeStore(rig.db),
            readers={"bitcoin": BitcoindPayoutChain(rig.node)},
            bus=RunnerBus(runner),
            now_ms=rig.clock.now_ms,
        )
        await booker.step()
        [row] = await SqlNetworkFeeStore(rig.db).all()
        assert (row.source, row.txid, row.fee_chain, row.status) == (
            "custody",
            sweep.txid,
            fee,
            "booked",
        )
        assert runner.jcore.core.expensed == {"BTC": fee}
        last = runner.jcore.core.seq
    finally:
        await runner.stop()

    await runner_for(rig.db).catch_up(core_dir, until_seq=last)
    code, text = await run_reconcile(
        settings, as_json=True, rpc=[f"bitcoin={url}"], addresses=[f"bitcoin={rig.hot}"]
    )
    report = json.loads(text)
    assert code == 0 and report["ok"], text
    assert report["holdings"] == {"BTC": 50_100_000 - fee}
    assert report["liabilities"]["BTC"] == 50_100_000 - fee
    assert not [f for f in report["findings"] if f["severity"] != "info"]
