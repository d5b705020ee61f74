"""The EVM chain watcher against a real in-process chain (web3 over eth-tester/py-evm),
a real journaled core and SQL (SQLite and PostgreSQL): an ETH deposit to a user's
deposit address is pending until its confirmations, then credited exactly once; seen
twice it is still one credit; a reorg before the credit depth un-marks it; a deeper one
raises a stored alert and leaves balances alone; a watcher killed between seeing and
crediting (or between the core's credit and its record) credits once after a restart."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
import web3
from eth_utils.address import to_checksum_address
from prometheus_client import CollectorRegistry
from web3.types import Wei

from tests.support.journaled_exchange import Exchange
from tradewind.adapters.chain.web3_reader import Web3ChainReader
from tradewind.adapters.sql import Database, SqlUserRepository
from tradewind.adapters.sql.chain_watch import ChainBlockRow, ChainDepositRow, SqlWatcherStore
from tradewind.adapters.sql.deposit_addresses import SqlDepositAddressStore
from tradewind.core.commands import AnyCommand
from tradewind.runtime.sequencer import Applied, CoreRunner
from tradewind.runtime.watcher import WatchLoop, alert_counter, count_alerts
from tradewind.services.funding.chain_ports import NATIVE_INDEX
from tradewind.services.funding.defaults import TEST_MNEMONIC_XPUB_EVM
from tradewind.services.funding.deposit_addresses import DepositAddressService
from tradewind.services.funding.networks import Network, parse_networks
from tradewind.services.funding.watcher import ChainWatcher

async_test = pytest.mark.asyncio
CONFIRMATIONS = 3
WEI_PER_UNIT = 10**10  # ETH has 18 decimals on chain, 8 in the core


def network() -> Network:
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
                            "confirmations": CONFIRMATIONS,
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
    return net


class RunnerBus:
    """The embedded core runner as a command bus (what bootstrap's RunnerBus does,
    without metrics)."""

    def __init__(self, runner: CoreRunner, crash_after_apply: bool = False) -> None:
        self.runner = runner
        self.crash_after_apply = crash_after_apply

    @property
    def available(self) -> bool:
        return self.runner.running

    async def submit(self, cmd: AnyCommand) -> Applied:
        applied = await self.runner.submit(cmd)
        if self.crash_after_apply:
            raise KeyboardInterrupt("killed after the core applied the credit")
        return applied


@pytest_asyncio.fixture
async def exchange(tmp_path: Path) -> AsyncIterator[Exchange]:
    ex = Exchange(tmp_path / "core", {"ETH": 8, "USDT": 6})
    await ex.start()
    try:
        yield ex
    finally:
        await ex.stop()


@pytest.fixture
def w3() -> web3.Web3:
    return web3.Web3(web3.EthereumTesterProvider())


async def user_address(db: Database) -> tuple[int, str]:
    user = await SqlUserRepository(db).add(
        email=f"w{time.monotonic_ns()}@example.com", password_hash="x", created_at_ms=1
    )
    assert user is not None
    service = DepositAddressService(
        parse_networks({"networks": {"ethereum": _raw()}}),
        SqlDepositAddressStore(db),
        lambda: 1_000,
    )
    address = await service.address_for(user.id, "ETH", "ethereum")
    return user.id, address.address


def _raw() -> dict[str, object]:
    return {
        "chain_id": 1337,
        "xpub": TEST_MNEMONIC_XPUB_EVM,
        "assets": {
            "ETH": {
                "decimals": 8,
                "chain_decimals": 18,
                "confirmations": CONFIRMATIONS,
                "min_deposit": "0.001",
                "withdrawal_fee": "0.002",
            }
        },
    }


def watcher(
    w3: web3.Web3, db: Database, bus: RunnerBus, alerts: list[str] | None = None
) -> ChainWatcher:
    return ChainWatcher(
        network(),
        Web3ChainReader(w3),
        SqlWatcherStore(db),
        SqlDepositAddressStore(db),
        bus,
        lambda: 5_000,
        on_alert=None if alerts is None else (lambda net, kind: alerts.append(kind)),
    )


def send(w3: web3.Web3, to: str, wei: int) -> str:
    txid = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": to, "value": Wei(wei)})
    w3.eth.wait_for_transaction_receipt(txid)
    return txid.to_0x_hex()


def mine(w3: web3.Web3, n: int) -> None:
    w3.provider.ethereum_tester.mine_blocks(n)  # type: ignore[attr-defined]


@async_test
async def test_an_eth_deposit_is_credited_after_its_confirmations_exactly_once(
    w3: web3.Web3, db: Database, exchange: Exchange
) -> None:
    assert exchange.runner is not None
    user, address = await user_address(db)
    store = SqlWatcherStore(db)
    w = watcher(w3, db, RunnerBus(exchange.runner))
    txid = send(w3, address, 5 * 10**17 + 7)  # 0.5 ETH and 7 wei of dust

    first = await w.step()
    assert first.seen == 1 and first.credited == 0
    seen = await store.deposit("ethereum", txid, NATIVE_INDEX)
    assert seen is not None and seen.status == "pending" and seen.user_id == user
    assert seen.chain_amount == 5 * 10**17 + 7 and seen.amount == 50_000_000

    mine(w3, CONFIRMATIONS - 2)  # one confirmation short
    assert (await w.step()).credited == 0
    assert exchange.balance(user) == 0

    mine(w3, 1)
    assert (await w.step()).credited == 1
    credited = await store.deposit("ethereum", txid, NATIVE_INDEX)
    assert credited is not None and credited.status == "credited" and credited.credited_seq

    mine(w3, 5)
    assert (await w.step()).credited == 0
    await exchange.stop()
    assert exchange.balance(user) == 50_000_000


@async_test
async def test_the_same_deposit_seen_twice_is_credited_once(
    w3: web3.Web3, db: Database, exchange: Exchange
) -> None:
    assert exchange.runner is not None
    user, address = await user_address(db)
    bus = RunnerBus(exchange.runner)
    send(w3, address, 10**18)
    mine(w3, CONFIRMATIONS)
    assert (await watcher(w3, db, bus).step()).credited == 1
    # A second watcher process over the same tables sees the same blocks: nothing new.
    again = await watcher(w3, db, bus).step()
    assert again.seen == 0 and again.credited == 0
    # Its state lost (tables restored from a backup taken before the deposit), it scans
    # again from block 0: the core refuses a second credit of the same ref.
    async with db.write() as session:
        await session.execute(sa.delete(ChainDepositRow))
        await session.execute(sa.delete(ChainBlockRow))
    rescan = await watcher(w3, db, bus).step()
    assert rescan.seen == 1 and rescan.credited == 0
    (row,) = await SqlWatcherStore(db).deposits("ethereum")
    assert row.status == "credited" and row.note == "credited before a restart"
    await exchange.stop()
    assert exchange.balance(user) == 10**8


@async_test
async def test_a_reorg_before_the_credit_depth_unmarks_the_deposit(
    w3: web3.Web3, db: Database, exchange: Exchange
) -> None:
    assert exchange.runner is not None
    user, address = await user_address(db)
    alerts: list[str] = []
    w = watcher(w3, db, RunnerBus(exchange.runner), alerts)
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    fork = tester.take_snapshot()
    txid = send(w3, address, 10**18)
    assert (await w.step()).seen == 1

    tester.revert_to_snapshot(fork)  # the deposit's block leaves the chain
    mine(w3, CONFIRMATIONS + 2)  # a longer chain without it
    result = await w.step()
    assert result.orphaned == 1 and result.credited == 0
    row = await SqlWatcherStore(db).deposit("ethereum", txid, NATIVE_INDEX)
    assert row is not None and row.status == "orphaned"
    assert alerts == [] and await SqlWatcherStore(db).alerts("ethereum") == []
    await exchange.stop()
    assert exchange.balance(user) == 0


@async_test
async def test_a_reorg_deeper_than_the_credit_depth_raises_an_alert_and_keeps_balances(
    w3: web3.Web3, db: Database, exchange: Exchange
) -> None:
    assert exchange.runner is not None
    user, address = await user_address(db)
    alerts: list[str] = []
    w = watcher(w3, db, RunnerBus(exchange.runner), alerts)
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    fork = tester.take_snapshot()
    txid = send(w3, address, 10**18)
    mine(w3, CONFIRMATIONS)
    assert (await w.step()).credited == 1

    tester.revert_to_snapshot(fork)
    mine(w3, CONFIRMATIONS + 3)
    result = await w.step()
    assert result.alerts == 1 and alerts == ["deep_reorg"]
    ((kind, message, _),) = await SqlWatcherStore(db).alerts("ethereum")
    assert kind == "deep_reorg" and txid in message
    row = await SqlWatcherStore(db).deposit("ethereum", txid, NATIVE_INDEX)
    assert row is not None and row.status == "credited"
    await exchange.stop()
    assert exchange.balance(user) == 10**8, "an alert, not a silent debit"


@async_test
async def test_a_watcher_killed_between_seeing_and_crediting_credits_once_after_restart(
    w3: web3.Web3, db: Database, exchange: Exchange
) -> None:
    assert exchange.runner is not None
    user, address = await user_address(db)
    txid = send(w3, address, 2 * 10**18)
    # killed after seeing: pending in SQL, nothing credited
    assert (await watcher(w3, db, RunnerBus(exchange.runner)).step()).seen == 1
    mine(w3, CONFIRMATIONS)
    # killed again after the core applied the credit, before the row said so
    crashing = watcher(w3, db, RunnerBus(exchange.runner, crash_after_apply=True))
    with pytest.raises(KeyboardInterrupt):
        await crashing.step()
    row = await SqlWatcherStore(db).deposit("ethereum", txid, NATIVE_INDEX)
    assert row is not None and row.status == "pending"
    # the whole exchange restarts (core recovered from its journal), the watcher resumes
    await exchange.stop()
    runner = await exchange.start()
    resumed = await watcher(w3, db, RunnerBus(runner)).step()
    assert resumed.scanned == 0 or resumed.seen == 0, "resumes from its stored height"
    row = await SqlWatcherStore(db).deposit("ethereum", txid, NATIVE_INDEX)
    assert row is not None and row.status == "credited"
    await exchange.stop()
    assert exchange.balance(user) == 2 * 10**8


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait for a background loop to get somewhere (a deadline against hangs only)."""
    for _ in range(600):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


@async_test
async def test_the_watch_loop_credits_in_the_background_and_counts_alerts(
    w3: web3.Web3, db: Database, exchange: Exchange
) -> None:
    assert exchange.runner is not None
    user, address = await user_address(db)
    registry = CollectorRegistry()
    counter = alert_counter(registry)
    w = ChainWatcher(
        network(),
        Web3ChainReader(w3),
        SqlWatcherStore(db),
        SqlDepositAddressStore(db),
        RunnerBus(exchange.runner),
        lambda: 5_000,
        on_alert=count_alerts(counter),
    )
    loop = WatchLoop(w, poll_s=0.02)
    task = asyncio.create_task(loop.run())
    try:
        tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
        fork = tester.take_snapshot()
        txid = send(w3, address, 3 * 10**18)
        mine(w3, CONFIRMATIONS)

        async def credited() -> bool:
            row = await SqlWatcherStore(db).deposit("ethereum", txid, NATIVE_INDEX)
            return row is not None and row.status == "credited"

        await until(credited, "the deposit credited")
        tester.revert_to_snapshot(fork)
        mine(w3, CONFIRMATIONS + 3)

        async def alerted() -> bool:
            value = registry.get_sample_value(
                "tradewind_chain_alerts_total", {"network": "ethereum", "kind": "deep_reorg"}
            )
            return value == 1.0

        await until(alerted, "the deep reorg counted")
    finally:
        loop.stop()
        await task
    assert loop.failures == 0
    await exchange.stop()
    assert exchange.balance(user) == 3 * 10**8


DEV_TOKEN = Path(__file__).parents[1] / "support" / "contracts" / "DevToken.json"


def deploy_token(w3: web3.Web3) -> str:
    """Deploy the checked-in ERC-20 (tests/support/contracts, built from its Solidity
    source by build_dev_token.sh); the deployer holds the supply."""
    built = json.loads(DEV_TOKEN.read_text())
    factory = w3.eth.contract(abi=built["abi"], bytecode=built["bytecode"])
    txid = factory.constructor(10**15).transact({"from": w3.eth.accounts[0]})
    address = w3.eth.wait_for_transaction_receipt(txid)["contractAddress"]
    assert address is not None
    return str(address)


@async_test
async def test_an_erc20_transfer_log_is_credited_once_and_other_logs_are_ignored(
    w3: web3.Web3, db: Database, exchange: Exchange
) -> None:
    assert exchange.runner is not None
    contract = deploy_token(w3)  # its mint Transfer goes to the deployer: not a deposit
    raw = _raw()
    raw["assets"] = {
        **raw["assets"],  # type: ignore[dict-item]
        "USDT": {
            "decimals": 6,
            "contract": contract,
            "confirmations": CONFIRMATIONS,
            "min_deposit": "1",
            "withdrawal_fee": "5",
        },
    }
    net = parse_networks({"networks": {"ethereum": raw}}).network("ethereum")
    assert net is not None
    user, address = await user_address(db)
    abi = json.loads(DEV_TOKEN.read_text())["abi"]
    token = w3.eth.contract(address=to_checksum_address(contract), abi=abi)
    sender = w3.eth.accounts[0]
    paid = token.functions.transfer(address, 25_500_000).transact({"from": sender})
    w3.eth.wait_for_transaction_receipt(paid)
    stranger = list(w3.eth.accounts)[3]  # not a deposit address
    w3.eth.wait_for_transaction_receipt(
        token.functions.transfer(stranger, 7).transact({"from": sender})
    )
    w = ChainWatcher(
        net,
        Web3ChainReader(w3, [contract]),
        SqlWatcherStore(db),
        SqlDepositAddressStore(db),
        RunnerBus(exchange.runner),
        lambda: 5_000,
    )
    assert (await w.step()).seen == 1
    mine(w3, CONFIRMATIONS)
    assert (await w.step()).credited == 1
    assert (await w.step()).credited == 0
    (row,) = await SqlWatcherStore(db).deposits("ethereum")
    assert row.asset == "USDT" and row.index >= 0 and row.txid == paid.to_0x_hex()
    assert row.status == "credited" and row.amount == 25_500_000
    await exchange.stop()
    assert exchange.balance(user, "USDT") == 25_500_000
    assert exchange.balance(user, "ETH") == 0


@async_test
async def test_a_deposit_made_while_deposits_are_suspended_waits_and_is_not_lost(
    w3: web3.Web3, db: Database, exchange: Exchange
) -> None:
    assert exchange.runner is not None
    user, address = await user_address(db)
    enabled = network()
    suspended = replace(
        enabled, assets=tuple(replace(a, deposit_enabled=False) for a in enabled.assets)
    )
    bus = RunnerBus(exchange.runner)

    def make(net: Network) -> ChainWatcher:
        return ChainWatcher(
            net,
            Web3ChainReader(w3),
            SqlWatcherStore(db),
            SqlDepositAddressStore(db),
            bus,
            lambda: 5_000,
        )

    txid = send(w3, address, 10**18)
    mine(w3, CONFIRMATIONS)
    first = await make(suspended).step()
    assert first.seen == 1 and first.credited == 0
    row = await SqlWatcherStore(db).deposit("ethereum", txid, NATIVE_INDEX)
    assert row is not None and row.status == "pending"
    assert (await make(enabled).step()).credited == 1
    await exchange.stop()
    assert exchange.balance(user) == 10**8
