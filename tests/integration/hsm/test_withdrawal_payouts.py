"""Withdrawals paid out for real: a key in a SoftHSM2 token signs through the signer
service (its HTTP app, in process), transactions are mined by an in-process Ethereum
chain (web3 over eth-tester/py-evm), the funds move in a journaled core, the workflow's
tables are SQL (SQLite and PostgreSQL).

- an ETH and an ERC-20 withdrawal end confirmed: the core debits the user once, books
  the fee, and the destination holds the amount less the fee on chain;
- the signer down (before and during signing, or its answer lost) delays the payout,
  which then ends with one transaction and one debit;
- a broadcast the node refuses releases the funds once; a reverted transaction too;
- the processor killed after broadcasting, the core killed around the settle and the
  lock: after a restart, one transaction, one debit or one release;
- forged, stale, altered and replayed signer requests are refused and change nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import web3
from eth_utils.address import to_checksum_address
from web3.types import Wei

from tests.support.second_factor import NoSecondFactor
from tests.support.softhsm import SoftToken
from tradewind.adapters.aml_list import ListScreening
from tradewind.adapters.chain.evm_payout import Web3PayoutChain
from tradewind.adapters.chain.evm_tx import EvmTxCodec
from tradewind.adapters.hsm.pkcs11_custody import Pkcs11Custody
from tradewind.adapters.kyc_files import FileDocumentStore
from tradewind.adapters.signer_http import HttpSignerClient
from tradewind.adapters.sql import Database, SqlUserRepository
from tradewind.adapters.sql.admin import SqlAdminStore
from tradewind.adapters.sql.audit import SqlAuditStore
from tradewind.adapters.sql.kyc import SqlKycStore
from tradewind.adapters.sql.outbox import SqlOutbox
from tradewind.adapters.sql.withdrawals import SqlWithdrawalStore
from tradewind.core.commands import AddAsset, AnyCommand, Deposit, WithdrawHold, WithdrawSettle
from tradewind.core.invariants import check_invariants
from tradewind.gateways.signer_api import create_signer_app
from tradewind.journal.recovery import JournaledCore, recover
from tradewind.runtime.sequencer import Applied, CoreRunner
from tradewind.services.admin import AdminService
from tradewind.services.audit import AuditLog
from tradewind.services.funding.networks import NetworkCatalog, parse_networks
from tradewind.services.funding.payouts import PayoutProcessor
from tradewind.services.funding.signer import SIGNATURE_HEADER, SignerService, signed_request
from tradewind.services.funding.withdrawal_config import WithdrawalPolicy
from tradewind.services.funding.withdrawal_ports import (
    PayoutChain,
    SignedTx,
    SignerClient,
    SignerUnavailable,
    TxState,
    Withdrawal,
)
from tradewind.services.funding.withdrawals import (
    FEE_ACCOUNT,
    MailNotifier,
    WithdrawalRequest,
    WithdrawalService,
)
from tradewind.services.kyc import KycService, LevelLimits

async_test = pytest.mark.asyncio
SECRET = "s" * 40
TO = to_checksum_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
DEV_TOKEN = Path(__file__).parents[2] / "support" / "contracts" / "DevToken.json"
WEI = 10**10  # per core unit of ETH (18 decimals on chain, 8 in the core)


class Killed(BaseException):
    """A process killed at this point (not an error anything may catch)."""


class Clock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class Bus:
    """The core runner as a command bus; ``kill_after`` names a command type after
    whose application the "process" dies (once)."""

    def __init__(self, runner: CoreRunner, kill_after: type | None = None) -> None:
        self.runner = runner
        self.kill_after = kill_after

    @property
    def available(self) -> bool:
        return self.runner.running

    async def submit(self, cmd: AnyCommand) -> Applied:
        applied = await self.runner.submit(cmd)
        if self.kill_after is not None and type(cmd) is self.kill_after:
            self.kill_after = None
            raise Killed(f"killed after the core applied {type(cmd).__name__}")
        return applied


class Exchange:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.runner: CoreRunner | None = None

    async def start(self) -> CoreRunner:
        self.runner = CoreRunner(JournaledCore(self.data), clock_ms=lambda: 1_000)
        self.runner.start()
        if recover(self.data, repair=False).core.assets.get("ETH") is None:
            await self.runner.submit(AddAsset(asset="ETH", decimals=8))
            await self.runner.submit(AddAsset(asset="USDT", decimals=6))
        return self.runner

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.stop()
            self.runner = None

    def balance(self, user: int, asset: str = "ETH") -> tuple[int, int]:
        assert self.runner is not None
        core = self.runner.jcore.core
        b = core.accounts.get(user, {}).get(asset)
        return (0, 0) if b is None else (b.available, b.locked)

    def withdrawn(self, asset: str = "ETH") -> int:
        assert self.runner is not None
        return self.runner.jcore.core.withdrawn.get(asset, 0)


@pytest_asyncio.fixture
async def exchange(tmp_path: Path) -> AsyncIterator[Exchange]:
    ex = Exchange(tmp_path / "core")
    await ex.start()
    try:
        yield ex
    finally:
        if ex.runner is not None:
            check_invariants(ex.runner.jcore.core)
        await ex.stop()


def deploy_token(w3: web3.Web3) -> str:
    built = json.loads(DEV_TOKEN.read_text())
    factory = w3.eth.contract(abi=built["abi"], bytecode=built["bytecode"])
    txid = factory.constructor(10**15).transact({"from": w3.eth.accounts[0]})
    address = w3.eth.wait_for_transaction_receipt(txid)["contractAddress"]
    assert address is not None
    return str(address)


def token_of(w3: web3.Web3, contract: str) -> object:
    abi = json.loads(DEV_TOKEN.read_text())["abi"]
    return w3.eth.contract(address=to_checksum_address(contract), abi=abi)


def catalog(chain_id: int, contract: str) -> NetworkCatalog:
    return parse_networks(
        {
            "networks": {
                "ethereum": {
                    "chain_id": chain_id,
                    "assets": {
                        "ETH": {
                            "decimals": 8,
                            "chain_decimals": 18,
                            "confirmations": 2,
                            "min_deposit": "0.001",
                            "withdrawal_fee": "0.002",
                            "min_withdrawal": "0.01",
                            "auto_approve_below": "1000",
                        },
                        "USDT": {
                            "decimals": 6,
                            "contract": contract,
                            "confirmations": 2,
                            "min_deposit": "1",
                            "withdrawal_fee": "1",
                            "min_withdrawal": "2",
                            "auto_approve_below": "1000000",
                            "two_person_above": "5000000",
                        },
                    },
                }
            }
        }
    )


class Rig:
    """Everything of one test: chain, token, core, SQL, the signer and a processor."""

    def __init__(
        self, w3: web3.Web3, db: Database, exchange: Exchange, custody: Pkcs11Custody
    ) -> None:
        self.w3 = w3
        self.db = db
        self.exchange = exchange
        self.clock = Clock()
        self.chain_id = int(w3.eth.chain_id)
        self.contract = deploy_token(w3)
        self.catalog = catalog(self.chain_id, self.contract)
        self.store = SqlWithdrawalStore(db)
        self.audit = AuditLog(SqlAuditStore(db), self.clock)
        self.signer = SignerService(
            store=self.store,
            custody=custody,
            codec=EvmTxCodec(),
            audit=self.audit,
            catalog=self.catalog,
            keys={"ethereum": f"hot-{uuid.uuid4().hex[:12]}"},
            secret=SECRET,
            now_ms=self.clock.now_ms,
        )
        self.hot = self.signer.ensure_keys()["ethereum"]
        self.signer_app = create_signer_app(self.signer)

    def service(self, bus: Bus | None = None, tmp: Path | None = None) -> WithdrawalService:
        assert self.exchange.runner is not None
        bus = bus or Bus(self.exchange.runner)
        return WithdrawalService(
            catalog=self.catalog,
            store=self.store,
            bus=bus,
            two_factor=NoSecondFactor(),
            kyc=KycService(
                store=SqlKycStore(self.db),
                documents=FileDocumentStore(tmp or Path("/nonexistent")),
                audit=self.audit,
                clock=self.clock,
                limits={0: LevelLimits({"ETH": 1_000, "USDT": 10_000_000})},
            ),
            admin=AdminService(
                store=SqlAdminStore(self.db), bus=bus, audit=self.audit, clock=self.clock
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
        self,
        service: WithdrawalService,
        signer: SignerClient | None = None,
        chain: PayoutChain | None = None,
    ) -> PayoutProcessor:
        return PayoutProcessor(
            service,
            {"ethereum": chain or Web3PayoutChain(self.w3, self.chain_id)},
            signer or self.client(),
        )

    async def user(self, eth: int = 0, usdt: int = 0, address: str = TO) -> int:
        added = await SqlUserRepository(self.db).add(
            email=f"p{time.monotonic_ns()}@example.com", password_hash="x", created_at_ms=1
        )
        assert added is not None and self.exchange.runner is not None
        for asset, amount in (("ETH", eth), ("USDT", usdt)):
            if amount:
                await self.exchange.runner.submit(
                    Deposit(user=added.id, asset=asset, amount=amount)
                )
        await self.store.add_address(
            user_id=added.id,
            network="ethereum",
            address=address,
            label="",
            at_ms=0,
            usable_from_ms=0,
        )
        return added.id

    def fund_hot(self, wei: int = 0, tokens: int = 0) -> None:
        eth = self.w3.eth
        if wei:
            eth.wait_for_transaction_receipt(
                eth.send_transaction({"from": eth.accounts[0], "to": self.hot, "value": Wei(wei)})
            )
        if tokens:
            token = token_of(self.w3, self.contract)
            eth.wait_for_transaction_receipt(
                token.functions.transfer(self.hot, tokens).transact(  # type: ignore[attr-defined]
                    {"from": eth.accounts[0]}
                )
            )

    def mine(self, n: int = 1) -> None:
        self.w3.provider.ethereum_tester.mine_blocks(n)  # type: ignore[attr-defined]

    def sent(self) -> int:
        """Transactions the hot wallet has had mined."""
        return int(self.w3.eth.get_transaction_count(to_checksum_address(self.hot)))

    def token_balance(self, who: str) -> int:
        token = token_of(self.w3, self.contract)
        return int(token.functions.balanceOf(who).call())  # type: ignore[attr-defined]

    async def statuses(self, wid: int) -> list[str]:
        return [e.status for e in await self.store.timeline(wid)]


@pytest.fixture
def w3() -> web3.Web3:
    return web3.Web3(web3.EthereumTesterProvider())


@pytest_asyncio.fixture
async def rig(
    w3: web3.Web3, db: Database, exchange: Exchange, softhsm_token: SoftToken
) -> AsyncIterator[Rig]:
    with softhsm_token.open() as custody:
        yield Rig(w3, db, exchange, custody)


def request(amount: str, key: str, asset: str = "ETH", address: str = TO) -> WithdrawalRequest:
    return WithdrawalRequest(asset, "ethereum", address, amount)


async def run(processor: PayoutProcessor, rig: Rig, wid: int, until: str, steps: int = 6) -> None:
    for _ in range(steps):
        await processor.step()
        w = await rig.store.get(wid)
        assert w is not None
        if w.status == until:
            return
        rig.mine(1)
    w = await rig.store.get(wid)
    raise AssertionError(f"withdrawal {wid} is {w.status if w else None}, not {until}")


@async_test
async def test_an_eth_withdrawal_is_signed_in_the_token_mined_and_settled_once(
    rig: Rig, tmp_path: Path
) -> None:
    rig.fund_hot(wei=10 * 10**18)
    user = await rig.user(eth=5 * 10**8)
    service = rig.service(tmp=tmp_path)
    w = await service.request(user, request("1.5", "k"), "eth-payout-1", None)
    assert w.status == "approved"
    assert rig.exchange.balance(user) == (350_000_000, 150_000_000)
    before = rig.w3.eth.get_balance(TO)

    await run(rig.processor(service), rig, w.id, "confirmed")

    done = await rig.store.get(w.id)
    assert done is not None and done.txid is not None and done.block_number is not None
    receipt = rig.w3.eth.get_transaction_receipt(done.txid)  # type: ignore[arg-type]
    assert receipt["status"] == 1 and receipt["from"] == rig.hot
    assert rig.w3.eth.get_balance(TO) == before + 149_800_000 * WEI  # 1.5 less the fee
    assert rig.exchange.balance(user) == (350_000_000, 0)
    assert rig.exchange.withdrawn() == 150_000_000
    assert rig.exchange.balance(FEE_ACCOUNT) == (200_000, 0)
    assert rig.sent() == 1
    assert await rig.statuses(w.id) == [
        "holding",
        "approved",
        "signing",
        "signed",
        "broadcast",
        "settling",
        "confirmed",
    ]
    signed = [e for e in await rig.audit.recent() if e.action == "signer.signed"]
    assert len(signed) == 1 and signed[0].details_dict()["txid"] == done.txid
    # more steps change nothing
    await rig.processor(service).step()
    assert rig.exchange.balance(user) == (350_000_000, 0) and rig.sent() == 1


@async_test
async def test_an_erc20_withdrawal_pays_the_token_through_its_contract(
    rig: Rig, tmp_path: Path
) -> None:
    rig.fund_hot(wei=10**18, tokens=500 * 10**6)
    user = await rig.user(usdt=100 * 10**6)
    service = rig.service(tmp=tmp_path)
    w = await service.request(user, request("25", "k", "USDT"), "usdt-payout-1", None)
    assert w.status == "approved"

    await run(rig.processor(service), rig, w.id, "confirmed")

    assert rig.token_balance(TO) == 24 * 10**6
    assert rig.token_balance(rig.hot) == 476 * 10**6
    assert rig.exchange.balance(user, "USDT") == (75 * 10**6, 0)
    assert rig.exchange.balance(FEE_ACCOUNT, "USDT") == (10**6, 0)
    done = await rig.store.get(w.id)
    assert done is not None and done.tx is not None
    assert json.loads(done.tx)["to"] == rig.contract and json.loads(done.tx)["value"] == 0


class FlakySigner:
    """The signer client, down for the first ``down`` calls to sign; with
    ``lose_answer`` the request reaches the signer but its answer is lost."""

    def __init__(self, inner: SignerClient, down: int, lose_answer: bool = False) -> None:
        self.inner = inner
        self.down = down
        self.lose_answer = lose_answer

    async def address(self, network: str) -> str:
        return await self.inner.address(network)

    async def sign(self, withdrawal_id: int, network: str, tx: Mapping[str, object]) -> SignedTx:
        if self.down > 0:
            self.down -= 1
            if self.lose_answer:
                await self.inner.sign(withdrawal_id, network, tx)
            raise SignerUnavailable("signer not reachable: ConnectError")
        return await self.inner.sign(withdrawal_id, network, tx)


@async_test
async def test_the_signer_down_delays_the_payout_which_ends_with_one_transaction(
    rig: Rig, tmp_path: Path
) -> None:
    rig.fund_hot(wei=10 * 10**18)
    user = await rig.user(eth=5 * 10**8)
    service = rig.service(tmp=tmp_path)
    # nothing listens on the signer's port: not even the hot address can be asked
    down = HttpSignerClient("http://127.0.0.1:9", SECRET, rig.clock.now_ms, timeout_s=2)
    a = await service.request(user, request("1", "k"), "signer-down-1", None)
    counts = await rig.processor(service, signer=down).step()
    assert counts.waiting >= 1 and (await service.get_any(a.id)).status == "approved"
    # down while signing: the transaction stays fixed, the retry signs the same one
    flaky = FlakySigner(rig.client(), down=2)
    processor = rig.processor(service, signer=flaky)
    await processor.step()
    await processor.step()
    fixed = await service.get_any(a.id)
    assert fixed.status == "signing" and fixed.tx is not None
    await run(processor, rig, a.id, "confirmed")
    assert (await service.get_any(a.id)).tx == fixed.tx
    # the signer signed but its answer was lost: the stored signature is broadcast
    b = await service.request(user, request("1", "k"), "signer-down-2", None)
    lossy = rig.processor(service, signer=FlakySigner(rig.client(), down=1, lose_answer=True))
    await lossy.step()
    assert (await service.get_any(b.id)).status == "signed"
    await run(lossy, rig, b.id, "confirmed")
    assert rig.sent() == 2
    assert rig.exchange.balance(user) == (300_000_000, 0)
    assert rig.exchange.withdrawn() == 200_000_000


@async_test
async def test_a_broadcast_the_node_refuses_releases_the_funds_once(
    rig: Rig, tmp_path: Path
) -> None:
    rig.fund_hot(wei=2 * 10**18)  # less than the withdrawal
    user = await rig.user(eth=50 * 10**8)
    service = rig.service(tmp=tmp_path)
    w = await service.request(user, request("20", "k"), "refused-1", None)
    assert rig.exchange.balance(user) == (3_000_000_000, 2_000_000_000)
    processor = rig.processor(service)
    await run(processor, rig, w.id, "failed")
    failed = await service.get_any(w.id)
    assert failed.reason is not None and failed.reason.startswith("broadcast refused")
    assert rig.exchange.balance(user) == (5_000_000_000, 0)
    assert rig.exchange.balance(FEE_ACCOUNT) == (0, 0)
    await processor.step()
    assert rig.exchange.balance(user) == (5_000_000_000, 0)
    assert rig.sent() == 0
    # the nonce it had is free again: the next payout goes through
    ok = await service.request(user, request("1", "k"), "refused-2", None)
    await run(processor, rig, ok.id, "confirmed")
    assert rig.sent() == 1 and rig.exchange.balance(user) == (4_900_000_000, 0)


@async_test
async def test_a_reverted_token_transfer_releases_the_funds(rig: Rig, tmp_path: Path) -> None:
    rig.fund_hot(wei=10**18, tokens=3 * 10**6)  # fewer tokens than paid out: reverts
    user = await rig.user(usdt=100 * 10**6)
    service = rig.service(tmp=tmp_path)
    w = await service.request(user, request("10", "k", "USDT"), "revert-1", None)
    await run(rig.processor(service), rig, w.id, "failed")
    failed = await service.get_any(w.id)
    assert failed.reason is not None and "reverted" in failed.reason
    assert rig.exchange.balance(user, "USDT") == (100 * 10**6, 0)
    assert rig.token_balance(TO) == 0


class CrashingChain:
    """The real chain; the processor dies right after the node took the transaction."""

    def __init__(self, inner: Web3PayoutChain) -> None:
        self.inner = inner

    async def build(
        self, sender: str, to: str, contract: str | None, value: int, nonce_floor: int
    ) -> Mapping[str, object]:
        return await self.inner.build(sender, to, contract, value, nonce_floor)

    async def broadcast(self, raw: str) -> str | None:
        await self.inner.broadcast(raw)
        raise Killed("killed after broadcasting")

    async def state(self, txid: str) -> TxState:
        return await self.inner.state(txid)


@async_test
async def test_killed_between_steps_ends_with_one_transaction_and_one_debit(
    rig: Rig, tmp_path: Path
) -> None:
    assert rig.exchange.runner is not None
    rig.fund_hot(wei=10 * 10**18)
    user = await rig.user(eth=5 * 10**8)
    # killed after the core locked the funds, before the row says so
    killed = rig.service(Bus(rig.exchange.runner, kill_after=WithdrawHold), tmp_path)
    with pytest.raises(Killed):
        await killed.request(user, request("1", "k"), "killed-1", None)
    w = await rig.store.by_key(user, "killed-1")
    assert w is not None and w.status == "holding"
    service = rig.service(tmp=tmp_path)
    await rig.processor(service).step()  # finishes the lock: the core had it already
    assert rig.exchange.balance(user) == (400_000_000, 100_000_000)

    # killed right after the broadcast: restarted, it re-sends the same bytes
    w = await service.get_any(w.id)
    crashing = rig.processor(service, chain=CrashingChain(Web3PayoutChain(rig.w3, rig.chain_id)))
    with pytest.raises(Killed):
        await crashing.step()
    signed = await service.get_any(w.id)
    assert signed.status == "signed" and rig.sent() == 1
    # killed after the core settled, before the row says so
    settle_killed = rig.service(Bus(rig.exchange.runner, kill_after=WithdrawSettle), tmp_path)
    with pytest.raises(Killed):
        await run(rig.processor(settle_killed), rig, w.id, "confirmed")
    assert (await service.get_any(w.id)).status == "settling"
    await run(rig.processor(service), rig, w.id, "confirmed")

    final = await service.get_any(w.id)
    assert final.raw_tx == signed.raw_tx and final.txid == signed.txid
    assert rig.sent() == 1
    assert rig.exchange.balance(user) == (400_000_000, 0)
    assert rig.exchange.withdrawn() == 100_000_000
    assert rig.exchange.balance(FEE_ACCOUNT) == (200_000, 0)


async def _signing(rig: Rig, service: WithdrawalService, user: int, key: str) -> Withdrawal:
    """A withdrawal with its transaction fixed, waiting for the signer."""
    w = await service.request(user, request("1", "k"), key, None)
    await rig.processor(service, signer=FlakySigner(rig.client(), down=1)).step()
    fixed = await service.get_any(w.id)
    assert fixed.status == "signing" and fixed.tx is not None
    return fixed


@async_test
async def test_forged_stale_altered_and_replayed_signer_requests_are_refused(
    rig: Rig, tmp_path: Path
) -> None:
    rig.fund_hot(wei=10 * 10**18)
    user = await rig.user(eth=50 * 10**8)
    service = rig.service(tmp=tmp_path)
    w = await _signing(rig, service, user, "forged-1")
    assert w.tx is not None
    tx = json.loads(w.tx)
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=rig.signer_app), base_url="http://signer"
    )

    async def post(payload: dict[str, object], secret: str = SECRET) -> httpx.Response:
        body, sig = signed_request(secret, payload)
        return await http.post("/v1/sign", content=body, headers={SIGNATURE_HEADER: sig})

    now = rig.clock.now_ms()
    good = {"op": "sign", "withdrawal_id": w.id, "network": "ethereum", "tx": tx, "ts": now}
    r = await post(good, secret="x" * 40)
    assert (r.status_code, r.json()["code"]) == (401, "forged_request")
    body, _sig = signed_request(SECRET, good)
    r = await http.post("/v1/sign", content=body)
    assert (r.status_code, r.json()["code"]) == (401, "forged_request")
    r = await post({**good, "ts": now - 120_000})
    assert (r.status_code, r.json()["code"]) == (401, "stale_request")
    other = "0x" + "12" * 20
    r = await post({**good, "tx": {**tx, "to": to_checksum_address(other)}})
    assert (r.status_code, r.json()["code"]) == (409, "tx_mismatch")
    assert (await service.get_any(w.id)).status == "signing"

    # a transaction altered in the database itself: the signer reads what it pays
    altered = {**tx, "to": to_checksum_address(other)}
    assert await rig.store.transition(
        w.id, ("signing",), "signing", at_ms=now, fields={"tx": json.dumps(altered)}
    )
    r = await post({**good, "tx": altered})
    assert (r.status_code, r.json()["code"]) == (409, "terms_mismatch")
    assert await rig.store.transition(w.id, ("signing",), "signing", at_ms=now, fields={"tx": w.tx})

    body, sig = signed_request(SECRET, good)
    first = await http.post("/v1/sign", content=body, headers={SIGNATURE_HEADER: sig})
    assert first.status_code == 200, first.text
    signed = await service.get_any(w.id)
    assert signed.status == "signed" and signed.raw_tx == first.json()["raw"]
    replay = await http.post("/v1/sign", content=body, headers={SIGNATURE_HEADER: sig})
    assert (replay.status_code, replay.json()["code"]) == (409, "not_signable")
    assert (await service.get_any(w.id)).raw_tx == signed.raw_tx

    # a withdrawal waiting for compliance cannot be signed, whatever the request says
    assert rig.exchange.runner is not None
    await rig.exchange.runner.submit(Deposit(user=user, asset="USDT", amount=6 * 10**12))
    big = await service.request(user, request("6000000", "k", "USDT"), "forged-2", None)
    assert big.status == "pending_approval" and big.required_approvals == 2
    r = await post({**good, "withdrawal_id": big.id})
    assert (r.status_code, r.json()["code"]) == (409, "not_signable")
    await http.aclose()
    entries = await rig.audit.recent()
    refused = [str(e.details_dict()["code"]) for e in entries if e.action == "signer.refused"]
    assert sorted(refused) == sorted(
        [
            "forged_request",
            "forged_request",
            "stale_request",
            "tx_mismatch",
            "terms_mismatch",
            "not_signable",
            "not_signable",
        ]
    )
    assert [e for e in entries if e.action == "signer.signed"]
    assert rig.sent() == 0
