"""Sweeps and the cold wallet for real (ADR 0028): the hot key in a SoftHSM2 token, the
deposit account key sealed in the same token, the signer's HTTP app in process, an
in-process Ethereum chain (web3 over eth-tester/py-evm), SQLite and PostgreSQL.

- an ETH deposit is swept to the hot wallet (balances checked on chain);
- an ERC-20 deposit is swept after a gas top-up of exactly ``gas * maxFeePerGas``;
- the sweeper killed between the top-up and the sweep, restarted: one top-up, one sweep;
- the hot wallet's excess above its ceiling (after pending payouts) goes to cold, and
  payouts needing more than the hot wallet holds raise one alert;
- forged sweep requests (another recipient, a non-deposit sender, a bad HMAC) are
  refused by the signer and nothing is signed; dust stays on its address.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import web3
from eth_utils.address import to_checksum_address
from web3.types import Wei

from tests.support.custody_rig import Clock, Killed, RunnerBus, SweepRig, settle
from tests.support.softhsm import SoftToken
from tradewind.adapters.chain.evm_sweeps import Web3SweepChain
from tradewind.adapters.chain.evm_tx import EvmTxCodec
from tradewind.adapters.chain.web3_reader import Web3ChainReader
from tradewind.adapters.hsm.pkcs11_custody import Pkcs11Custody
from tradewind.adapters.sql import Database
from tradewind.adapters.sql.alerts import SqlAlertStore
from tradewind.adapters.sql.audit import SqlAuditStore
from tradewind.adapters.sql.chain_watch import SqlWatcherStore
from tradewind.adapters.sql.deposit_addresses import SqlDepositAddressStore
from tradewind.adapters.sql.sweeps import SqlSweepStore
from tradewind.adapters.sql.withdrawals import SqlWithdrawalStore
from tradewind.core.commands import AddAsset
from tradewind.gateways.signer_api import create_signer_app
from tradewind.journal.recovery import JournaledCore
from tradewind.runtime.config import load_settings
from tradewind.runtime.reconcile import custody
from tradewind.runtime.sequencer import CoreRunner
from tradewind.services.alerts import AlertService
from tradewind.services.audit import AuditLog
from tradewind.services.funding.chain_ports import ChainDeposit, WatchedBlock
from tradewind.services.funding.deposit_keys import (
    DepositKeyring,
    account_xpub,
    new_account_key,
)
from tradewind.services.funding.derivation import AddressDeriver
from tradewind.services.funding.networks import parse_networks
from tradewind.services.funding.signer import SIGNATURE_HEADER, SignerService, signed_request
from tradewind.services.funding.sweep_config import parse_sweep_settings
from tradewind.services.funding.sweep_ports import NewTransfer, TransferKind
from tradewind.services.funding.sweep_signer import SweepSigner
from tradewind.services.funding.sweeps import Sweeper
from tradewind.services.funding.watcher import ChainWatcher
from tradewind.services.funding.withdrawal_ports import TxState

async_test = pytest.mark.asyncio
SECRET = "s" * 40
DEV_TOKEN = Path(__file__).parents[2] / "support" / "contracts" / "DevToken.json"
COLD = to_checksum_address("0x" + "c0" * 20)
TOKEN_TRANSFER_GAS = 100_000  # DevToken's transfer uses about 52,000


def deploy_token(w3: web3.Web3) -> str:
    built = json.loads(DEV_TOKEN.read_text())
    factory = w3.eth.contract(abi=built["abi"], bytecode=built["bytecode"])
    txid = factory.constructor(10**15).transact({"from": w3.eth.accounts[0]})
    address = w3.eth.wait_for_transaction_receipt(txid)["contractAddress"]
    assert address is not None
    return str(address)


@dataclass(frozen=True)
class Keys:
    xprv: str
    deposit_label: str
    hot_label: str


def new_keys(custody: Pkcs11Custody) -> Keys:
    """A new deposit account key sealed in the token, and a new hot key's label."""
    made = Keys(new_account_key(), f"dep-{uuid.uuid4().hex[:12]}", f"hot-{uuid.uuid4().hex[:12]}")
    custody.put_secret(made.deposit_label, made.xprv.encode())
    return made


class Rig(SweepRig):
    network = "ethereum"
    email_prefix = "s"
    settle_steps = 12
    secret = SECRET

    def __init__(
        self,
        w3: web3.Web3,
        db: Database,
        custody: Pkcs11Custody,
        contract: str | None = None,
        keys: Keys | None = None,
    ) -> None:
        """On ``w3`` with the token at ``contract`` and the module's ``keys``; without
        them (test_network_fees_evm.py), the token is deployed and new keys made."""
        self.w3 = w3
        self.db = db
        self.clock = Clock()
        self.chain_id = int(w3.eth.chain_id)
        self.contract = contract or deploy_token(w3)
        if keys is None:
            keys = new_keys(custody)
        self.token = w3.eth.contract(
            address=to_checksum_address(self.contract),
            abi=json.loads(DEV_TOKEN.read_text())["abi"],
        )
        xprv = keys.xprv
        funding: dict[str, Any] = {  # as tomllib reads the config file
            "networks": {
                "ethereum": {
                    "chain_id": self.chain_id,
                    "xpub": account_xpub(xprv),
                    "assets": {
                        "ETH": {
                            "decimals": 8,
                            "chain_decimals": 18,
                            "confirmations": 2,
                            "min_deposit": "0.0001",
                            "withdrawal_fee": "0.002",
                        },
                        "USDT": {
                            "decimals": 6,
                            "contract": self.contract,
                            "confirmations": 2,
                            "min_deposit": "0.1",
                            "withdrawal_fee": "1",
                        },
                    },
                }
            },
            "sweeps": {
                "ethereum": {
                    "deposit_key": keys.deposit_label,
                    "cold_address": COLD.lower(),
                    "assets": {
                        "ETH": {"min_sweep": "0.01", "hot_ceiling": "5", "hot_target": "2"},
                        "USDT": {"min_sweep": "1"},
                    },
                }
            },
        }
        self.funding = funding
        self.catalog = parse_networks(funding)
        self.settings = parse_sweep_settings(funding, self.catalog)
        net = self.catalog.network("ethereum")
        assert net is not None
        self.net = net
        self.deriver = AddressDeriver(net)
        label = self.settings.networks["ethereum"].deposit_key
        self.audit = AuditLog(SqlAuditStore(db), self.clock)
        hot_keys = {"ethereum": keys.hot_label}  # made by the first test's ensure_keys
        self.withdrawal_store = SqlWithdrawalStore(db)
        signer = SignerService(
            store=self.withdrawal_store,
            custody=custody,
            codec=EvmTxCodec(),
            audit=self.audit,
            catalog=self.catalog,
            keys=hot_keys,
            secret=SECRET,
            now_ms=self.clock.now_ms,
        )
        self.hot = signer.ensure_keys()["ethereum"]
        self.store = SqlSweepStore(db)
        self.addresses = SqlDepositAddressStore(db)
        self.sweep_signer = SweepSigner(
            store=self.store,
            addresses=self.addresses,
            custody=custody,
            keyrings={"ethereum": DepositKeyring.from_vault(net, custody, label)},
            codec=EvmTxCodec(),
            audit=self.audit,
            catalog=self.catalog,
            settings=self.settings,
            hot_keys=hot_keys,
            secret=SECRET,
            now_ms=self.clock.now_ms,
        )
        self.app = create_signer_app(signer, self.sweep_signer)
        self.watcher = SqlWatcherStore(db)
        self.block = 0

    def sweeper(self, chain: object | None = None) -> Sweeper:
        return Sweeper(
            catalog=self.catalog,
            settings=self.settings,
            store=self.store,
            withdrawals=self.withdrawal_store,
            chains={"ethereum": chain or Web3SweepChain(self.w3, self.chain_id)},  # type: ignore[dict-item]
            signer=self.client(),
            now_ms=self.clock.now_ms,
            alerts=AlertService(SqlAlertStore(self.db), self.audit, self.clock),
        )

    async def credited(self, user: int, asset: str, chain_amount: int) -> None:
        """The watcher's record of a credited deposit (the core's credit is not needed:
        sweeps never touch balances)."""
        self.block += 1
        txid = "0x" + secrets.token_hex(32)
        block = WatchedBlock(self.block, "0x" + secrets.token_hex(32))
        d = ChainDeposit("ethereum", txid, -1, user, asset, chain_amount, 1, block.number,
                         block.hash, "pending")  # fmt: skip
        await self.watcher.record_block("ethereum", block, [d], keep=1000)
        await self.watcher.finish("ethereum", txid, -1, "credited", seq=1)

    def pay(self, to: str, wei: int = 0, tokens: int = 0) -> None:
        # the gas given, not estimated (eth-tester's estimate is a binary search of
        # executions, most of a payment's time): a transfer to an account, a token transfer
        eth = self.w3.eth
        if wei:
            eth.wait_for_transaction_receipt(
                eth.send_transaction(
                    {"from": eth.accounts[0], "to": to, "value": Wei(wei), "gas": 21_000}
                )
            )
        if tokens:
            eth.wait_for_transaction_receipt(
                self.token.functions.transfer(to, tokens).transact(
                    {"from": eth.accounts[0], "gas": TOKEN_TRANSFER_GAS}
                )
            )

    def eth(self, who: str) -> int:
        return int(self.w3.eth.get_balance(to_checksum_address(who)))

    def tokens(self, who: str) -> int:
        return int(self.token.functions.balanceOf(to_checksum_address(who)).call())

    def sent(self, who: str) -> int:
        return int(self.w3.eth.get_transaction_count(to_checksum_address(who)))

    def mine(self, n: int = 1) -> None:
        self.w3.provider.ethereum_tester.mine_blocks(n)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def chain() -> tuple[web3.Web3, str, int]:
    """One chain per module with the token deployed, and its snapshot there."""
    w3 = web3.Web3(web3.EthereumTesterProvider())
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    # eth-tester's ten fixed accounts, checksummed (ten keccaks) once, not at each
    # eth_accounts: web3's tester middleware asks for them for every call without "from"
    accounts = tuple(tester.get_accounts())
    tester.get_accounts = lambda: list(accounts)
    contract = deploy_token(w3)
    return w3, contract, tester.take_snapshot()


@pytest.fixture
def w3(chain: tuple[web3.Web3, str, int]) -> web3.Web3:
    """The module's chain back at its snapshot: as new, with only the token deployed
    (no account of a test has a balance, a nonce or a transaction left from another)."""
    w3, _contract, snapshot = chain
    w3.provider.ethereum_tester.revert_to_snapshot(snapshot)  # type: ignore[attr-defined]
    return w3


@pytest.fixture(scope="module")
def keys(softhsm_token: SoftToken) -> Keys:
    """The deposit account key (sealed in the token) and the hot key's label, one per
    module: with the chain reverted per test, its addresses start each test unused."""
    with softhsm_token.open() as custody:
        return new_keys(custody)


@pytest_asyncio.fixture
async def rig(
    w3: web3.Web3,
    chain: tuple[web3.Web3, str, int],
    keys: Keys,
    db: Database,
    softhsm_token: SoftToken,
) -> AsyncIterator[Rig]:
    with softhsm_token.open() as custody:
        yield Rig(w3, db, custody, chain[1], keys)


@async_test
async def test_an_eth_deposit_is_swept_to_the_hot_wallet_and_dust_stays(
    rig: Rig, tmp_path: Path
) -> None:
    user, address = await rig.deposit_address()
    other, dusty = await rig.deposit_address()
    rig.pay(address, wei=10**18)
    rig.pay(dusty, wei=10**15)  # 0.001 ETH, under the 0.01 minimum sweep
    await rig.credited(user, "ETH", 10**18)
    await rig.credited(other, "ETH", 10**15)

    await settle(rig, rig.sweeper())

    [sweep] = await rig.all_transfers()
    assert (sweep.kind, sweep.status, sweep.sender, sweep.recipient) == (
        "sweep",
        "confirmed",
        address,
        rig.hot,
    )
    assert sweep.amount == 10**18 - 21_000 * sweep.max_fee
    assert rig.eth(rig.hot) == sweep.amount
    assert sweep.txid is not None
    receipt = rig.w3.eth.get_transaction_receipt(sweep.txid)  # type: ignore[arg-type]
    paid_gas = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    assert rig.eth(address) == 10**18 - sweep.amount - paid_gas
    assert rig.eth(dusty) == 10**15 and rig.sent(dusty) == 0
    # reconciliation's custody read finds the money: deposit addresses from the table,
    # the hot wallet given, the cold address from [funding.sweeps]; only the gas is gone
    settings = load_settings(
        None, environ={}, overrides={"data_dir": tmp_path, "funding": rig.funding}
    )
    held = await custody(
        settings, rig.db, {"ethereum": ["node"]}, {"ethereum": [rig.hot]}, lambda _u: rig.w3
    )
    assert held["ETH"].amount == (10**18 + 10**15 - paid_gas) // 10**10
    swept = [e for e in await rig.audit.recent() if e.action == "signer.swept"]
    assert len(swept) == 1 and swept[0].details_dict()["to"] == rig.hot
    # nothing more to do: more steps change nothing
    await rig.sweeper().step()
    assert len(await rig.all_transfers()) == 1


class KilledAfterTopUp:
    """The real chain; the process dies right after the node took the top-up."""

    def __init__(self, inner: Web3SweepChain, rig: Rig) -> None:
        self.inner = inner
        self.rig = rig

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def broadcast(self, raw: str) -> str | None:
        await self.inner.broadcast(raw)
        raise Killed("killed after broadcasting the top-up")

    async def state(self, txid: str) -> TxState:
        return await self.inner.state(txid)


@async_test
async def test_a_token_sweep_is_topped_up_with_exactly_its_gas_once_across_a_crash(
    rig: Rig,
) -> None:
    rig.pay(rig.hot, wei=3 * 10**18)
    user, address = await rig.deposit_address()
    rig.pay(address, tokens=50 * 10**6)
    await rig.credited(user, "USDT", 50 * 10**6)
    hot_before = rig.eth(rig.hot)

    crashing = rig.sweeper(KilledAfterTopUp(Web3SweepChain(rig.w3, rig.chain_id), rig))
    with pytest.raises(Killed):
        await crashing.step()
    sweep, topup = await rig.all_transfers()
    assert (sweep.kind, sweep.status, topup.kind, topup.status) == (
        "sweep",
        "waiting_gas",
        "topup",
        "signed",
    )
    assert topup.parent_id == sweep.id and topup.recipient == address
    assert topup.amount == sweep.gas * sweep.max_fee  # exactly the sweep's gas budget
    assert rig.sent(rig.hot) == 1  # the top-up reached the node before the "crash"

    await settle(rig, rig.sweeper())  # restarted

    transfers = await rig.all_transfers()
    assert [t.kind for t in transfers] == ["sweep", "topup"]  # no second top-up
    assert all(t.status == "confirmed" for t in transfers)
    assert rig.sent(rig.hot) == 1 and rig.sent(address) == 1  # one top-up, one sweep
    assert rig.tokens(rig.hot) == 50 * 10**6 and rig.tokens(address) == 0
    assert topup.txid is not None
    mined = rig.w3.eth.get_transaction(topup.txid)  # type: ignore[arg-type]
    assert int(mined["value"]) == sweep.gas * sweep.max_fee
    receipt = rig.w3.eth.get_transaction_receipt(topup.txid)  # type: ignore[arg-type]
    topup_gas = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    assert rig.eth(rig.hot) == hot_before - topup.amount - topup_gas
    # the gas left over on the deposit address is dust: no native sweep of it
    assert rig.eth(address) < 10**16


@async_test
async def test_the_excess_above_the_ceiling_goes_to_cold_and_a_short_hot_wallet_alerts(
    rig: Rig, tmp_path: Path
) -> None:
    rig.pay(rig.hot, wei=10 * 10**18)
    # a payout of 1 ETH waiting: it stays in hot, the rest above the 2 ETH target leaves
    w = await rig.withdrawal_store.create(
        user_id=5,
        asset="ETH",
        network="ethereum",
        address=COLD,
        amount=100_200_000,
        fee=200_000,
        memo=None,
        required_approvals=0,
        idempotency_key="cold-1",
        request_hash="h",
        at_ms=1,
    )
    assert await rig.withdrawal_store.transition(w.id, ("holding",), "approved", at_ms=2)

    await settle(rig, rig.sweeper())

    [cold] = await rig.all_transfers()
    assert (cold.kind, cold.recipient, cold.status) == ("cold", COLD, "confirmed")
    assert cold.amount == 10 * 10**18 - 10**18 - 2 * 10**18
    assert rig.eth(COLD) == 7 * 10**18
    settings = load_settings(
        None, environ={}, overrides={"data_dir": tmp_path, "funding": rig.funding}
    )
    held = await custody(
        settings, rig.db, {"ethereum": ["node"]}, {"ethereum": [rig.hot]}, lambda _u: rig.w3
    )
    assert held["ETH"].amount == (rig.eth(rig.hot) + 7 * 10**18) // 10**10  # cold counted
    assert await rig.store.alerts("ethereum") == []

    # payouts now need more than the hot wallet holds: one alert, however many steps
    big = await rig.withdrawal_store.create(
        user_id=5,
        asset="ETH",
        network="ethereum",
        address=COLD,
        amount=500_200_000,
        fee=200_000,
        memo=None,
        required_approvals=0,
        idempotency_key="cold-2",
        request_hash="h",
        at_ms=3,
    )
    assert await rig.withdrawal_store.transition(big.id, ("holding",), "approved", at_ms=4)
    await rig.sweeper().step()
    await rig.sweeper().step()
    [alert] = await rig.store.alerts("ethereum")
    assert (alert.kind, alert.asset, alert.resolved_at_ms) == ("hot_wallet_short", "ETH", None)
    assert len(await rig.all_transfers()) == 1  # nothing more went to cold
    # the back office sees it once too (an operator alert, critical)
    assert await SqlAlertStore(rig.db).count_open() == 1
    # funded again: the alert is resolved
    rig.pay(rig.hot, wei=5 * 10**18)
    await rig.sweeper().step()
    [alert] = await rig.store.alerts("ethereum")
    assert alert.resolved_at_ms is not None


@async_test
async def test_forged_sweep_requests_are_refused_and_nothing_is_signed(rig: Rig) -> None:
    _user, address = await rig.deposit_address()
    rig.pay(address, wei=10**18)
    thief = to_checksum_address("0x" + "66" * 20)
    fee = 2 * 10**9
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.app), base_url="http://s")

    async def fixed(
        kind: TransferKind, sender: str, to: str, value: int, parent: int | None = None
    ) -> int:
        t = await rig.store.create(
            NewTransfer(
                kind,
                "ethereum",
                "ETH",
                None,
                sender,
                to,
                value,
                21_000,
                fee,
                10**9,
                "ready",
                parent,
            ),
            at_ms=1,
        )
        tx = {
            "type": 2, "chainId": rig.chain_id, "nonce": 0, "maxFeePerGas": fee,
            "maxPriorityFeePerGas": 10**9, "gas": 21_000, "to": to, "value": value,
            "data": "0x", "from": sender,
        }  # fmt: skip
        assert await rig.store.transition(
            t.id, ("ready",), "signing", at_ms=2, fields={"tx": json.dumps(tx), "nonce": 0}
        )
        return t.id

    async def post(tid: int, secret: str = SECRET) -> httpx.Response:
        t = await rig.store.get(tid)
        assert t is not None and t.tx is not None
        payload = {
            "op": "sweep",
            "transfer_id": tid,
            "network": "ethereum",
            "tx": json.loads(t.tx),
            "ts": rig.clock.now_ms(),
        }
        body, sig = signed_request(secret, payload)
        return await http.post("/v1/sweep", content=body, headers={SIGNATURE_HEADER: sig})

    cases = [
        await fixed("sweep", address, thief, 10**17),  # a sweep paying someone else
        await fixed("sweep", thief, rig.hot, 10**17),  # from an address it does not know
        await fixed("cold", rig.hot, thief, 10**17),  # "cold" that is not the cold address
        await fixed("topup", rig.hot, thief, 10**15),  # a top-up to a non-deposit address
    ]
    for tid in cases:
        r = await post(tid)
        assert (r.status_code, r.json()["code"]) == (409, "terms_mismatch"), r.text
    good = await fixed("sweep", address, rig.hot, 10**17)
    r = await post(good, secret="x" * 40)
    assert (r.status_code, r.json()["code"]) == (401, "forged_request")
    for tid in [*cases, good]:
        t = await rig.store.get(tid)
        assert t is not None and t.status == "signing" and t.raw_tx is None
    refused = [e for e in await rig.audit.recent() if e.action == "signer.refused"]
    assert len(refused) == 5
    assert not [e for e in await rig.audit.recent() if e.action == "signer.swept"]
    # the genuine request is signed once; its replay is refused
    assert (await post(good)).status_code == 200
    again = await post(good)
    assert (again.status_code, again.json()["code"]) == (409, "not_signable")
    await http.aclose()
    assert rig.eth(thief) == 0


@async_test
async def test_an_address_holding_eth_and_a_token_pays_the_token_sweep_itself(
    rig: Rig,
) -> None:
    user, address = await rig.deposit_address()
    rig.pay(address, wei=10**18, tokens=20 * 10**6)
    await rig.credited(user, "ETH", 10**18)
    await rig.credited(user, "USDT", 20 * 10**6)

    await settle(rig, rig.sweeper())
    await settle(rig, rig.sweeper())  # the native sweep once the token's is done

    transfers = await rig.all_transfers()
    assert [(t.kind, t.asset, t.status) for t in transfers] == [
        ("sweep", "USDT", "confirmed"),  # tokens first, gas from the address's own ETH
        ("sweep", "ETH", "confirmed"),  # then the ETH, after that sweep
    ]
    assert rig.tokens(rig.hot) == 20 * 10**6 and rig.sent(address) == 2
    assert rig.eth(rig.hot) == transfers[1].amount
    assert rig.eth(address) < 10**15  # unused gas only


@async_test
async def test_a_top_up_the_hot_wallet_cannot_pay_waits_without_rows(rig: Rig) -> None:
    user, address = await rig.deposit_address()
    rig.pay(address, tokens=25 * 10**6)
    await rig.credited(user, "USDT", 25 * 10**6)
    for _ in range(3):  # the hot wallet is empty: nothing is decided that would fail
        await rig.sweeper().step()
        rig.mine(1)
    [sweep] = await rig.all_transfers()
    assert (sweep.kind, sweep.status) == ("sweep", "waiting_gas")

    rig.pay(rig.hot, wei=10**18)  # funded: the top-up, then the sweep
    await settle(rig, rig.sweeper())
    assert sorted((t.kind, t.status) for t in await rig.all_transfers()) == [
        ("sweep", "confirmed"),
        ("topup", "confirmed"),
    ]
    assert rig.tokens(rig.hot) == 25 * 10**6


class Plan:
    """Where the "process" dies: at the ``at``-th call to the chain or the signer,
    before the call or right after it did its work. The flow below makes 43 such calls
    in its 8 steps; each is a kill point (before at odd, after at even ones)."""

    def __init__(self, at: int, after: bool) -> None:
        self.at = at
        self.after = after
        self.calls = 0


class Killer:
    """The chain or the signer client, with the plan's kill in it."""

    def __init__(self, inner: object, plan: Plan) -> None:
        self._inner = inner
        self._plan = plan

    def __getattr__(self, name: str) -> object:
        target = getattr(self._inner, name)
        plan = self._plan

        async def call(*args: object, **kwargs: object) -> object:
            plan.calls += 1
            if plan.calls == plan.at and not plan.after:
                raise Killed(f"killed before {name}")
            result = await target(*args, **kwargs)
            if plan.calls == plan.at and plan.after:
                raise Killed(f"killed after {name}")
            return result

        return call


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("at", "after"), [(n, n % 2 == 0) for n in range(1, 44)])
@async_test
async def test_a_token_sweep_killed_at_any_external_call_ends_with_one_top_up_and_one_sweep(
    rig: Rig, at: int, after: bool
) -> None:
    rig.pay(rig.hot, wei=3 * 10**18)
    user, address = await rig.deposit_address()
    rig.pay(address, tokens=30 * 10**6)
    await rig.credited(user, "USDT", 30 * 10**6)
    plan = Plan(at, after)
    doomed = Sweeper(
        catalog=rig.catalog,
        settings=rig.settings,
        store=rig.store,
        withdrawals=rig.withdrawal_store,
        chains={"ethereum": Killer(Web3SweepChain(rig.w3, rig.chain_id), plan)},  # type: ignore[dict-item]
        signer=Killer(rig.client(), plan),  # type: ignore[arg-type]
        now_ms=rig.clock.now_ms,
    )
    killed = False
    try:
        for _ in range(8):
            await doomed.step()
            rig.mine(1)
    except Killed:
        killed = True
    assert killed or plan.calls < at  # past the flow's last call: nothing to kill
    await settle(rig, rig.sweeper())  # restarted

    transfers = await rig.all_transfers()
    assert sorted((t.kind, t.status) for t in transfers) == [
        ("sweep", "confirmed"),
        ("topup", "confirmed"),
    ]
    assert rig.sent(rig.hot) == 1 and rig.sent(address) == 1  # one top-up, one sweep
    assert rig.tokens(rig.hot) == 30 * 10**6 and rig.tokens(address) == 0


@async_test
async def test_the_watcher_credits_the_deposit_once_and_never_the_gas_top_up(
    rig: Rig, tmp_path: Path
) -> None:
    """The real chain watcher and core: a token deposit is credited once; the sweep's
    top-up (hot wallet -> deposit address) is not a deposit; sweeps leave balances."""
    runner = CoreRunner(JournaledCore(tmp_path / "core"), clock_ms=lambda: 1_000)
    runner.start()
    try:
        await runner.submit(AddAsset(asset="ETH", decimals=8))
        await runner.submit(AddAsset(asset="USDT", decimals=6))
        watcher = ChainWatcher(
            rig.net,
            Web3ChainReader(rig.w3, [rig.contract]),
            rig.watcher,
            rig.addresses,
            RunnerBus(runner),
            rig.clock.now_ms,
            start_height=int(rig.w3.eth.block_number) + 1,
            own=rig.store,
        )
        rig.pay(rig.hot, wei=3 * 10**18)
        user, address = await rig.deposit_address()
        rig.pay(address, tokens=40 * 10**6)
        rig.mine(2)
        assert (await watcher.step()).credited == 1
        sweeper = rig.sweeper()
        for _ in range(12):
            await sweeper.step()
            await watcher.step()
            if not await rig.store.unfinished("ethereum"):
                break
            rig.mine(1)
        sweep, topup = await rig.all_transfers()
        assert (sweep.status, topup.kind, topup.status) == ("confirmed", "topup", "confirmed")
        assert await rig.watcher.deposit("ethereum", str(topup.txid), -1) is None
        balances = runner.jcore.core.accounts[user]
        assert balances["USDT"].available == 40 * 10**6  # credited once, not moved by sweeps
        assert "ETH" not in balances or balances["ETH"].available == 0  # no top-up credit
        assert rig.tokens(rig.hot) == 40 * 10**6
    finally:
        await runner.stop()
