"""The chain watcher on Bitcoin: the bitcoind JSON-RPC reader over HTTP against the
regtest node simulator (real P2WPKH transactions signed with embit, checked by the node),
a real journaled core and SQL (SQLite and PostgreSQL).

What a user relies on: a deposit to their address is pending until its confirmations,
then credited exactly once by ``bitcoin:txid:vout``; several outputs of one transaction
to deposit addresses are separate deposits, change and strangers' outputs are ignored,
dust below the minimum is never credited; a reorg (``invalidateblock``) before the
credit depth orphans the deposit and credits nothing, a deposit mined again in the new
chain is credited once, a deeper reorg raises an alert and changes no balance; a
watcher killed between seeing and crediting credits once after a restart."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from tests.support.bitcoind_sim import BitcoindSim, SimWallet
from tests.support.journaled_exchange import Exchange
from tradewind.adapters.chain.bitcoind_reader import (
    BitcoindAuthError,
    BitcoindError,
    BitcoindReader,
)
from tradewind.adapters.sql import Database, SqlUserRepository
from tradewind.adapters.sql.chain_watch import ChainBlockRow, ChainDepositRow, SqlWatcherStore
from tradewind.adapters.sql.deposit_addresses import SqlDepositAddressStore
from tradewind.core.commands import AnyCommand
from tradewind.runtime.config import Settings, load_settings
from tradewind.runtime.sequencer import Applied, CoreRunner
from tradewind.runtime.watcher import (
    WatchLoop,
    alert_counter,
    count_alerts,
    open_reader,
    preflight,
)
from tradewind.services.funding.defaults import TEST_MNEMONIC_ZPUB_REGTEST
from tradewind.services.funding.deposit_addresses import DepositAddressService
from tradewind.services.funding.networks import Network, parse_networks
from tradewind.services.funding.watcher import ChainWatcher

async_test = pytest.mark.asyncio
CONFIRMATIONS = 3
NET = "bitcoin"


def raw_network(chain: str = "regtest") -> dict[str, object]:
    return {
        "chain": chain,
        "xpub": TEST_MNEMONIC_ZPUB_REGTEST,
        "assets": {
            "BTC": {
                "decimals": 8,
                "confirmations": CONFIRMATIONS,
                "min_deposit": "0.0001",
                "withdrawal_fee": "0.0002",
            }
        },
    }


def network(chain: str = "regtest") -> Network:
    net = parse_networks({"networks": {NET: raw_network(chain)}}).network(NET)
    assert net is not None
    return net


class RunnerBus:
    """The embedded core runner as a command bus; ``crash_after_apply`` kills the caller
    right after the core applied a command (before the watcher records it)."""

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
    ex = Exchange(tmp_path / "core", {"BTC": 8})
    await ex.start()
    try:
        yield ex
    finally:
        await ex.stop()


@pytest.fixture
def node() -> Iterator[BitcoindSim]:
    with BitcoindSim(user="watcher", password="s3cret-rpc").running() as sim:
        yield sim


@pytest.fixture
def wallet(node: BitcoindSim) -> SimWallet:
    """A sender holding mature coinbases (50 BTC each) at height 101."""
    w = SimWallet(node, b"\x07" * 32)
    w.fund(1)
    return w


@pytest_asyncio.fixture
async def reader(node: BitcoindSim) -> AsyncIterator[BitcoindReader]:
    r = BitcoindReader(node.url, user="watcher", password="s3cret-rpc")
    try:
        yield r
    finally:
        await r.aclose()


async def user_address(db: Database) -> tuple[int, str]:
    user = await SqlUserRepository(db).add(
        email=f"b{time.monotonic_ns()}@example.com", password_hash="x", created_at_ms=1
    )
    assert user is not None
    service = DepositAddressService(
        parse_networks({"networks": {NET: raw_network()}}), SqlDepositAddressStore(db), lambda: 1
    )
    address = await service.address_for(user.id, "BTC", NET)
    assert address.address.startswith("bcrt1q")
    return user.id, address.address


def make_watcher(
    node: BitcoindSim,
    reader: BitcoindReader,
    db: Database,
    bus: RunnerBus,
    alerts: list[str] | None = None,
    notices: list[tuple[int, str, str]] | None = None,
) -> ChainWatcher:
    """Starts above the wallet's funding blocks (a real deployment gives --start-height
    too, the block its deposit addresses were first handed out at)."""
    return ChainWatcher(
        network(),
        reader,
        SqlWatcherStore(db),
        SqlDepositAddressStore(db),
        bus,
        lambda: 5_000,
        start_height=COINBASE_FUNDED_HEIGHT,
        on_alert=None if alerts is None else (lambda net, kind: alerts.append(kind)),
        notifier=None if notices is None else Notices(notices),
    )


class Notices:
    """The user's notice emails, as the outbox would get them."""

    def __init__(self, sent: list[tuple[int, str, str]]) -> None:
        self.sent = sent

    async def notify(self, user_id: int, subject: str, text: str) -> None:
        self.sent.append((user_id, subject, text))


COINBASE_FUNDED_HEIGHT = 101
MINER = "bcrt1q0xcqpzrky6eff2g52qdye53xkk9jxkvrl4xfg5"
"""Blocks mined in the tests pay a key no test uses."""
STRANGER = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
"""A valid regtest address that is nobody's deposit address."""


def mine(node: BitcoindSim, n: int = 1) -> list[str]:
    return list(node.rpc("generatetoaddress", n, MINER))


def send(node: BitcoindSim, wallet: SimWallet, outputs: list[tuple[str, int]]) -> str:
    return str(node.rpc("sendrawtransaction", wallet.build(outputs).serialize().hex()))


@async_test
async def test_a_deposit_is_credited_after_its_confirmations_exactly_once(
    node: BitcoindSim,
    wallet: SimWallet,
    reader: BitcoindReader,
    db: Database,
    exchange: Exchange,
) -> None:
    assert exchange.runner is not None
    user, address = await user_address(db)
    store = SqlWatcherStore(db)
    notices: list[tuple[int, str, str]] = []
    w = make_watcher(node, reader, db, RunnerBus(exchange.runner), notices=notices)
    txid = send(node, wallet, [(address, 50_000_000)])  # 0.5 BTC, change back to the wallet
    mine(node)

    first = await w.step()
    assert first.seen == 1 and first.credited == 0
    seen = await store.deposit(NET, txid, 0)
    assert seen is not None and seen.status == "pending" and seen.user_id == user
    assert seen.chain_amount == 50_000_000 and seen.amount == 50_000_000
    assert seen.ref == f"bitcoin:{txid}:0"

    mine(node, CONFIRMATIONS - 2)  # one confirmation short
    assert (await w.step()).credited == 0
    assert exchange.balance(user) == 0

    assert notices == [], "nothing is announced before it is credited"
    mine(node)
    assert (await w.step()).credited == 1
    credited = await store.deposit(NET, txid, 0)
    assert credited is not None and credited.status == "credited" and credited.credited_seq
    assert notices == [
        (
            user,
            "deposit of 0.50000000 BTC credited",
            f"Your deposit of 0.50000000 BTC on {NET} (transaction {txid}) "
            "was credited to your balance.",
        )
    ]

    mine(node, 4)
    assert (await w.step()).credited == 0
    assert len(notices) == 1, "one email per deposit"
    (row,) = await store.deposits(NET)  # the change output is not a deposit
    assert row.index == 0
    await exchange.stop()
    assert exchange.balance(user) == 50_000_000


@async_test
async def test_several_outputs_of_one_transaction_are_separate_deposits_dust_dropped(
    node: BitcoindSim,
    wallet: SimWallet,
    reader: BitcoindReader,
    db: Database,
    exchange: Exchange,
) -> None:
    assert exchange.runner is not None
    alice, alice_address = await user_address(db)
    bob, bob_address = await user_address(db)
    txid = send(
        node,
        wallet,
        [
            (alice_address, 30_000_000),
            (STRANGER, 7_000_000),  # not a deposit address
            (bob_address, 20_000_001),
            (alice_address, 9_999),  # under min_deposit (0.0001 BTC = 10000 sat)
            (alice_address, 10_000),  # exactly the minimum
        ],
    )
    mine(node, CONFIRMATIONS)
    w = make_watcher(node, reader, db, RunnerBus(exchange.runner))
    result = await w.step()
    assert result.seen == 4 and result.credited == 3
    rows = {r.index: r for r in await SqlWatcherStore(db).deposits(NET)}
    assert sorted(rows) == [0, 2, 3, 4]  # vout 1 (a stranger) and 5 (change) ignored
    assert rows[0].user_id == alice and rows[0].status == "credited"
    assert rows[2].user_id == bob and rows[2].amount == 20_000_001
    assert rows[3].status == "below_minimum" and rows[3].txid == txid
    assert rows[4].status == "credited"
    assert (await w.step()).credited == 0
    await exchange.stop()
    assert exchange.balance(alice) == 30_010_000
    assert exchange.balance(bob) == 20_000_001


@async_test
async def test_the_same_deposit_seen_twice_is_credited_once(
    node: BitcoindSim,
    wallet: SimWallet,
    reader: BitcoindReader,
    db: Database,
    exchange: Exchange,
) -> None:
    assert exchange.runner is not None
    user, address = await user_address(db)
    bus = RunnerBus(exchange.runner)
    send(node, wallet, [(address, 100_000_000)])
    mine(node, CONFIRMATIONS)
    assert (await make_watcher(node, reader, db, bus).step()).credited == 1
    again = await make_watcher(node, reader, db, bus).step()
    assert again.seen == 0 and again.credited == 0
    # the watcher's tables lost (restored from an old backup): it scans again and the
    # core refuses the second credit of bitcoin:txid:0
    async with db.write() as session:
        await session.execute(sa.delete(ChainDepositRow))
        await session.execute(sa.delete(ChainBlockRow))
    rescan = await make_watcher(node, reader, db, bus).step()
    assert rescan.seen == 1 and rescan.credited == 0
    (row,) = await SqlWatcherStore(db).deposits(NET)
    assert row.status == "credited" and row.note == "credited before a restart"
    await exchange.stop()
    assert exchange.balance(user) == 100_000_000


@async_test
async def test_a_reorg_before_the_credit_depth_orphans_the_deposit_and_credits_nothing(
    node: BitcoindSim,
    wallet: SimWallet,
    reader: BitcoindReader,
    db: Database,
    exchange: Exchange,
) -> None:
    assert exchange.runner is not None
    user, address = await user_address(db)
    alerts: list[str] = []
    w = make_watcher(node, reader, db, RunnerBus(exchange.runner), alerts)
    coin = node.coins_of(wallet.script)[0]
    deposit = wallet.build([(address, 100_000_000)], coins=[coin])
    txid = node.rpc("sendrawtransaction", deposit.serialize().hex())
    (block,) = mine(node)
    assert (await w.step()).seen == 1

    # the deposit's block leaves the chain; the sender double-spends the same coin in
    # the replacing block, which evicts the deposit from the mempool for good
    node.rpc("invalidateblock", block)
    assert node.rpc("getrawmempool") == [txid]
    rival = wallet.build([(STRANGER, 100_000_000)], coins=[coin])
    node.rpc("generateblock", MINER, [rival.serialize().hex()])
    assert node.rpc("getrawmempool") == []
    mine(node, CONFIRMATIONS + 1)  # a longer chain without the deposit

    result = await w.step()
    assert result.orphaned == 1 and result.credited == 0 and result.alerts == 0
    row = await SqlWatcherStore(db).deposit(NET, txid, 0)
    assert row is not None and row.status == "orphaned"
    assert alerts == [] and await SqlWatcherStore(db).alerts(NET) == []
    await exchange.stop()
    assert exchange.balance(user) == 0


@async_test
async def test_a_deposit_mined_again_after_a_reorg_is_credited_once_from_its_new_block(
    node: BitcoindSim,
    wallet: SimWallet,
    reader: BitcoindReader,
    db: Database,
    exchange: Exchange,
) -> None:
    assert exchange.runner is not None
    user, address = await user_address(db)
    w = make_watcher(node, reader, db, RunnerBus(exchange.runner))
    txid = send(node, wallet, [(address, 25_000_000)])
    (block,) = mine(node)
    assert (await w.step()).seen == 1

    node.rpc("invalidateblock", block)  # the transaction goes back to the mempool
    (replacement,) = mine(node)  # and is mined again, in another block at that height
    assert replacement != block and node.block_of(txid) == replacement
    mine(node, CONFIRMATIONS)
    result = await w.step()
    assert result.orphaned == 1 and result.credited == 1 and result.alerts == 0
    row = await SqlWatcherStore(db).deposit(NET, txid, 0)
    assert row is not None and row.status == "credited" and row.block_hash == replacement
    await exchange.stop()
    assert exchange.balance(user) == 25_000_000


@async_test
async def test_a_reorg_deeper_than_the_credit_depth_raises_an_alert_and_keeps_balances(
    node: BitcoindSim,
    wallet: SimWallet,
    reader: BitcoindReader,
    db: Database,
    exchange: Exchange,
) -> None:
    assert exchange.runner is not None
    user, address = await user_address(db)
    alerts: list[str] = []
    w = make_watcher(node, reader, db, RunnerBus(exchange.runner), alerts)
    coin = node.coins_of(wallet.script)[0]
    txid = node.rpc(
        "sendrawtransaction",
        wallet.build([(address, 100_000_000)], coins=[coin]).serialize().hex(),
    )
    block = mine(node, CONFIRMATIONS)[0]
    assert (await w.step()).credited == 1

    node.rpc("invalidateblock", block)  # three blocks deep: the credit depth
    rival = wallet.build([(STRANGER, 100_000_000)], coins=[coin])
    node.rpc("generateblock", MINER, [rival.serialize().hex()])
    mine(node, CONFIRMATIONS + 1)
    result = await w.step()
    assert result.alerts == 1 and alerts == ["deep_reorg"]
    ((kind, message, _),) = await SqlWatcherStore(db).alerts(NET)
    assert kind == "deep_reorg" and txid in message
    row = await SqlWatcherStore(db).deposit(NET, txid, 0)
    assert row is not None and row.status == "credited"
    await exchange.stop()
    assert exchange.balance(user) == 100_000_000, "an alert, not a silent debit"


@async_test
async def test_a_watcher_killed_between_seeing_and_crediting_credits_once_after_restart(
    node: BitcoindSim,
    wallet: SimWallet,
    reader: BitcoindReader,
    db: Database,
    exchange: Exchange,
) -> None:
    assert exchange.runner is not None
    user, address = await user_address(db)
    txid = send(node, wallet, [(address, 200_000_000)])
    mine(node)
    # killed after seeing: pending in SQL, nothing credited
    assert (await make_watcher(node, reader, db, RunnerBus(exchange.runner)).step()).seen == 1
    mine(node, CONFIRMATIONS)
    # killed again after the core applied the credit, before the row said so
    crashing = make_watcher(node, reader, db, RunnerBus(exchange.runner, crash_after_apply=True))
    with pytest.raises(KeyboardInterrupt):
        await crashing.step()
    row = await SqlWatcherStore(db).deposit(NET, txid, 0)
    assert row is not None and row.status == "pending"
    # the whole exchange restarts (core recovered from its journal), the watcher resumes
    await exchange.stop()
    runner = await exchange.start()
    tip = await SqlWatcherStore(db).tip(NET)
    resumed = await make_watcher(node, reader, db, RunnerBus(runner)).step()
    assert tip is not None and tip.number == node.height, "resumes from its stored height"
    assert resumed.scanned == 0 and resumed.seen == 0
    row = await SqlWatcherStore(db).deposit(NET, txid, 0)
    assert row is not None and row.status == "credited"
    await exchange.stop()
    assert exchange.balance(user) == 200_000_000


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait for a background loop to get somewhere (a deadline against hangs only)."""
    for _ in range(600):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


@async_test
async def test_the_runtime_reader_credits_in_the_watch_loop_and_counts_a_deep_reorg(
    node: BitcoindSim, wallet: SimWallet, db: Database, exchange: Exchange, tmp_path: Path
) -> None:
    """What ``tradewind watcher --network bitcoin`` wires: the reader from the settings
    (URL and credentials), the loop in the background, alerts counted."""
    assert exchange.runner is not None
    user, address = await user_address(db)
    settings = load_settings(
        environ={
            "TRADEWIND_DATA_DIR": str(tmp_path),
            "TRADEWIND_BITCOIN_RPC_USER": "watcher",
            "TRADEWIND_BITCOIN_RPC_PASSWORD": "s3cret-rpc",
        }
    )
    reader = await open_reader(settings, network(), node.url)
    registry = CollectorRegistry()
    w = ChainWatcher(
        network(),
        reader,
        SqlWatcherStore(db),
        SqlDepositAddressStore(db),
        RunnerBus(exchange.runner),
        lambda: 5_000,
        start_height=COINBASE_FUNDED_HEIGHT,
        on_alert=count_alerts(alert_counter(registry)),
    )
    loop = WatchLoop(w, poll_s=0.02)
    task = asyncio.create_task(loop.run())
    try:
        txid = send(node, wallet, [(address, 300_000_000)])
        block = mine(node, CONFIRMATIONS)[0]

        async def credited() -> bool:
            row = await SqlWatcherStore(db).deposit(NET, txid, 0)
            return row is not None and row.status == "credited"

        await until(credited, "the deposit credited")
        node.rpc("invalidateblock", block)
        node.rpc("generateblock", MINER, [])  # the deposit waits in the mempool
        mine(node, CONFIRMATIONS)  # then is mined again: seen again, not credited again

        async def alerted() -> bool:
            value = registry.get_sample_value(
                "tradewind_chain_alerts_total", {"network": NET, "kind": "deep_reorg"}
            )
            return value == 1.0

        await until(alerted, "the deep reorg counted")
    finally:
        loop.stop()
        await task
        await reader.aclose()
    assert loop.failures == 0
    await exchange.stop()
    assert exchange.balance(user) == 300_000_000


@async_test
async def test_the_runtime_refuses_a_node_of_another_chain_and_wrong_credentials(
    node: BitcoindSim, tmp_path: Path
) -> None:
    settings = load_settings(
        environ={
            "TRADEWIND_DATA_DIR": str(tmp_path),
            "TRADEWIND_BITCOIN_RPC_URL": f"http://watcher:s3cret-rpc@{node.url[7:]}",
        }
    )
    assert settings.bitcoin_rpc_url is not None
    assert "s3cret-rpc" not in repr(settings)
    with pytest.raises(BitcoindError, match="follows 'regtest', the network is set to 'mainnet'"):
        await open_reader(settings, network("mainnet"), settings.bitcoin_rpc_url)
    reader = await open_reader(settings, network("regtest"), settings.bitcoin_rpc_url)
    assert await reader.head() == 0
    await reader.aclose()
    wrong = BitcoindReader(node.url, user="watcher", password="guess")
    with pytest.raises(BitcoindAuthError, match="refused the credentials"):
        await wrong.head()
    await wrong.aclose()


@async_test
async def test_owners_are_looked_up_per_block_in_chunks(db: Database) -> None:
    """A block's outputs are matched to deposit addresses in one look-up (chunked):
    more addresses than one chunk, most of them nobody's, find exactly the owners."""
    users = [await user_address(db) for _ in range(3)]
    strangers = [f"bcrt1qstranger{i}" for i in range(1_200)]
    asked = strangers[:600] + [a for _, a in users] + strangers[600:]
    owners = await SqlDepositAddressStore(db).owners_of(NET, asked)
    assert owners == {address: user for user, address in users}
    assert await SqlDepositAddressStore(db).owners_of("ethereum", asked) == {}


@pytest.mark.parametrize("seed", [12, 14, 17])  # with orphaned rows and alerts among them
@async_test
async def test_a_storm_of_reorgs_and_double_spends_credits_each_surviving_deposit_once(
    seed: int, node: BitcoindSim, reader: BitcoindReader, db: Database, exchange: Exchange
) -> None:
    """Random deposits (some dust), blocks, reorgs 1-4 deep (the deposits mined again, or
    double-spent away) and watcher steps in between. After the storm and enough blocks:
    every deposit on the final chain is credited (or below the minimum), each user's
    balance is exactly the sum of their credited rows (so nothing was credited twice),
    and a credit whose transaction left the chain came with a deep-reorg alert."""
    assert exchange.runner is not None
    rng = random.Random(seed)
    users = [await user_address(db) for _ in range(3)]
    funder = SimWallet(node, b"\x0c" * 32)
    funder.fund(40)
    floor = node.height  # reorgs stay above the funding blocks
    coins = sorted(
        (c for c in node.coins_of(funder.script) if c[1].height <= 30),
        key=lambda c: c[1].height,
    )
    w = make_watcher(node, reader, db, RunnerBus(exchange.runner))
    sent: dict[str, tuple[Any, list[tuple[int, int, int]]]] = {}  # txid: coin, outputs
    for _ in range(40):
        roll = rng.random()
        if roll < 0.35 and coins:
            coin = coins.pop(0)
            outputs = [
                (rng.randrange(3), rng.choice([5_000, 10_000, rng.randrange(10_000, 10**8)]))
                for _ in range(rng.randint(1, 2))
            ]
            tx = funder.build([(users[u][1], v) for u, v in outputs], coins=[coin])
            txid = str(node.rpc("sendrawtransaction", tx.serialize().hex()))
            sent[txid] = (coin, [(n, u, v) for n, (u, v) in enumerate(outputs)])
        elif roll < 0.55:
            mine(node, rng.randint(1, 2))
        elif roll < 0.75 and node.height - floor >= 1:
            depth = rng.randint(1, min(4, node.height - floor))
            cut = node.height - depth + 1
            mined = {t: node.block_of(t) for t in sent}
            dropped = [t for t, b in mined.items() if b and node.blocks[b].height >= cut]
            node.rpc("invalidateblock", node.chain[cut])
            if dropped and rng.random() < 0.6:  # a mined deposit double-spent away
                coin, outs = sent[rng.choice(dropped)]
                rival = funder.build([(STRANGER, sum(v for _, _, v in outs))], coins=[coin])
                node.rpc("generateblock", MINER, [rival.serialize().hex()])
            mine(node, depth + 1)
        else:
            await w.step()
    mine(node, CONFIRMATIONS)
    await w.step()
    await w.step()

    store = SqlWatcherStore(db)
    rows = {(r.txid, r.index): r for r in await store.deposits(NET)}
    alerts = await store.alerts(NET)
    assert all(kind == "deep_reorg" for kind, _, _ in alerts)
    for txid, (_, outputs) in sent.items():
        on_chain = node.block_of(txid) is not None
        for n, u, v in outputs:
            row = rows.get((txid, n))
            if on_chain:
                assert row is not None and row.user_id == users[u][0]
                assert row.status == ("credited" if v >= 10_000 else "below_minimum"), row
            elif row is not None and row.status == "credited":
                assert any(txid in message for _, message, _ in alerts), (txid, alerts)
    await exchange.stop()
    for user, _ in users:
        credited = sum(
            r.amount for r in rows.values() if r.user_id == user and r.status == "credited"
        )
        assert exchange.balance(user) == credited


@async_test
async def test_the_watcher_command_stops_with_one_line_before_starting_anything(
    node: BitcoindSim, tmp_path: Path
) -> None:
    """``tradewind watcher``'s pre-flight: an unknown network, refused credentials or a
    node that is away end the command with a plain message, before any lease."""

    def settings(password: str) -> Settings:
        return load_settings(
            environ={
                "TRADEWIND_DATA_DIR": str(tmp_path),
                "TRADEWIND_DEMO": "1",  # the demo's networks: Bitcoin regtest
                "TRADEWIND_BITCOIN_RPC_USER": "watcher",
                "TRADEWIND_BITCOIN_RPC_PASSWORD": password,
            }
        )

    assert (await preflight(settings("s3cret-rpc"), NET, node.url)).chain == "regtest"
    with pytest.raises(SystemExit, match="no network 'dogecoin' in the config"):
        await preflight(settings("s3cret-rpc"), "dogecoin", node.url)
    with pytest.raises(SystemExit, match=r"^error: bitcoind at .* refused the credentials"):
        await preflight(settings("guess"), NET, node.url)
    with pytest.raises(SystemExit, match="ConnectError"):
        await preflight(settings("s3cret-rpc"), NET, "http://127.0.0.1:1")
