"""Runtime switches of deposits and withdrawals per (network, asset) (ADR 0032), through
each consumer: the withdrawal request (refused ``withdrawals_disabled`` at once) and the
payout processor (an approved withdrawal waits), the deposit-address service and its
listing (within the cache's time), and the chain watcher (a deposit of a disabled asset
is seen and stays pending, credited once deposits are enabled again). Only admins
switch, and every switch is audited."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.fakes import FakeClock, MemoryAuditStore
from tests.unit.test_withdrawal_checks import CoreBus, Desk, RecordingChain, RefusingSigner
from tradewind.services.admin import Actor, RoleRequired
from tradewind.services.audit import AuditLog
from tradewind.services.funding.chain_ports import (
    ChainBlock,
    ChainDeposit,
    ChainTransfer,
    DepositStatus,
    WatchedBlock,
)
from tradewind.services.funding.deposit_addresses import DepositAddressService, DepositsDisabled
from tradewind.services.funding.networks import parse_networks
from tradewind.services.funding.payouts import PayoutProcessor
from tradewind.services.funding.switches import (
    EmptySwitch,
    FundingSwitches,
    MemoryFundingSwitchStore,
    UnknownFundingAsset,
)
from tradewind.services.funding.watcher import ChainWatcher

ADMIN = Actor(1, "admin")
BTC_NET: dict[str, Any] = {
    "networks": {
        "bitcoin": {
            "chain": "regtest",
            "assets": {
                "BTC": {
                    "decimals": 8,
                    "confirmations": 1,
                    "min_deposit": "0.0001",
                    "withdrawal_fee": "0.0002",
                }
            },
        }
    }
}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_only_admins_switch_and_every_switch_is_audited() -> None:
    clock, audit_store = FakeClock(), MemoryAuditStore()
    catalog = parse_networks(BTC_NET)
    switches = FundingSwitches(
        catalog, MemoryFundingSwitchStore(), clock.now_ms, audit=AuditLog(audit_store, clock)
    )
    with pytest.raises(RoleRequired):
        run(switches.set(Actor(2, "compliance"), "bitcoin", "BTC", deposit_enabled=False))
    with pytest.raises(UnknownFundingAsset):
        run(switches.set(ADMIN, "bitcoin", "ETH", deposit_enabled=False))
    with pytest.raises(EmptySwitch):
        run(switches.set(ADMIN, "bitcoin", "BTC"))
    rules = run(switches.set(ADMIN, "bitcoin", "BTC", deposit_enabled=False))
    assert (rules.deposit_enabled, rules.withdrawal_enabled) == (False, True)
    rules = run(switches.set(ADMIN, "bitcoin", "BTC", withdrawal_enabled=False))
    assert (rules.deposit_enabled, rules.withdrawal_enabled) == (False, False)
    actions = [(e.action, e.details_dict()) for e in run(AuditLog(audit_store, clock).recent())]
    switched = [d for a, d in actions if a == "admin.funding_switch"]
    flags = sorted(
        (d["deposit_was"], d["withdrawal_was"], d["deposit_enabled"], d["withdrawal_enabled"])
        for d in switched
    )
    assert flags == [(False, True, False, False), (True, True, False, True)]
    assert any(a == "admin.denied" for a, _ in actions)


def test_a_disabled_withdrawal_is_refused_at_once_and_an_approved_one_waits() -> None:
    desk = Desk()
    store = MemoryFundingSwitchStore()
    desk.service.switches = FundingSwitches(desk.service.catalog, store, desk.clock.now_ms)
    # another process's switches object (its own cache) writes the switch
    other = FundingSwitches(desk.service.catalog, store, desk.clock.now_ms)
    desk.whitelist()
    approved = desk.ask("0.5", key="before-01")
    assert approved.status == "approved"
    run(other.set(ADMIN, "ethereum", "ETH", withdrawal_enabled=False))
    desk.refused("withdrawals_disabled", key="after-001")  # no cache delay for requests
    assert desk.bus.balance() == (50 * 10**8 - 5 * 10**7, 5 * 10**7)  # only the first lock
    chain, signer = RecordingChain(), RefusingSigner()
    processor = PayoutProcessor(desk.service, {"ethereum": chain}, signer)
    desk.clock.advance(2_000)  # the payout check reads through the cache
    run(processor.step())
    assert run(desk.service.get_any(approved.id)).status == "approved"
    assert chain.built == 0 and signer.asked == 0
    listed = run(desk.service.live_catalog()).asset_on("ETH", "ethereum")
    assert listed is not None and not listed.withdrawal_enabled
    run(other.set(ADMIN, "ethereum", "ETH", withdrawal_enabled=True))
    assert desk.ask("0.5", key="again-001").status == "approved"


class Addresses:
    """Deposit-address store: user 5 owns ``bcrt1-user5``."""

    async def get(self, user_id: int, network: str) -> Any:
        return None

    async def owners_of(self, network: str, addresses: Any) -> dict[str, int]:
        return {a: 5 for a in addresses if a == "bcrt1-user5"}


def test_the_address_route_and_the_listing_follow_the_switch_within_the_cache_time() -> None:
    clock = FakeClock()
    catalog = parse_networks(BTC_NET)
    store = MemoryFundingSwitchStore()
    mine = FundingSwitches(catalog, store, clock.now_ms, ttl_ms=2_000)
    service = DepositAddressService(catalog, Addresses(), clock.now_ms, {}, switches=mine)  # type: ignore[arg-type]
    assert run(service.live_catalog()).asset_on("BTC", "bitcoin").deposit_enabled  # type: ignore[union-attr]
    other = FundingSwitches(catalog, store, clock.now_ms)  # the admin's process
    run(other.set(ADMIN, "bitcoin", "BTC", deposit_enabled=False))
    # this process may show the old flag until its cache expires, never longer
    clock.advance(2_000)
    assert not run(service.live_catalog()).asset_on("BTC", "bitcoin").deposit_enabled  # type: ignore[union-attr]
    with pytest.raises(DepositsDisabled):
        run(service.address_for(5, "BTC", "bitcoin"))


class Chain:
    def __init__(self) -> None:
        self.blocks: list[ChainBlock] = []

    def mine(self, *transfers: ChainTransfer) -> None:
        n = len(self.blocks)
        parent = self.blocks[-1].hash if self.blocks else "genesis"
        self.blocks.append(ChainBlock(n, f"h{n}", parent, transfers))

    async def head(self) -> int:
        return len(self.blocks) - 1

    async def block_hash(self, number: int) -> str | None:
        return self.blocks[number].hash if number < len(self.blocks) else None

    async def block(self, number: int) -> ChainBlock | None:
        return self.blocks[number] if number < len(self.blocks) else None


class WatchStore:
    """The ``WatcherStore`` port in memory, enough for a chain without reorgs."""

    def __init__(self) -> None:
        self.blocks: dict[int, WatchedBlock] = {}
        self.deposits: dict[tuple[str, int], ChainDeposit] = {}

    async def tip(self, network: str) -> WatchedBlock | None:
        return self.blocks[max(self.blocks)] if self.blocks else None

    async def block_at(self, network: str, number: int) -> WatchedBlock | None:
        return self.blocks.get(number)

    async def record_block(
        self, network: str, block: WatchedBlock, deposits: list[ChainDeposit], keep: int
    ) -> None:
        self.blocks[block.number] = block
        for d in deposits:
            self.deposits.setdefault((d.txid, d.index), d)

    async def roll_back(self, network: str, above: int) -> list[ChainDeposit]:
        raise AssertionError("no reorg in this test")

    async def pending(self, network: str) -> list[ChainDeposit]:
        return [d for d in self.deposits.values() if d.status == "pending"]

    async def deposit(self, network: str, txid: str, index: int) -> ChainDeposit | None:
        return self.deposits.get((txid, index))

    async def finish(
        self,
        network: str,
        txid: str,
        index: int,
        status: DepositStatus,
        *,
        seq: int | None = None,
        note: str | None = None,
    ) -> None:
        d = self.deposits[(txid, index)]
        self.deposits[(txid, index)] = ChainDeposit(
            d.network,
            d.txid,
            d.index,
            d.user_id,
            d.asset,
            d.chain_amount,
            d.amount,
            d.block_number,
            d.block_hash,
            status,
            seq,
            note,
        )

    async def add_alert(self, *args: Any) -> None:
        raise AssertionError("no alert in this test")


def test_the_watcher_keeps_a_disabled_deposit_pending_and_credits_it_once_enabled() -> None:
    clock = FakeClock()
    catalog = parse_networks(BTC_NET)
    net = catalog.network("bitcoin")
    assert net is not None
    store = MemoryFundingSwitchStore()
    switches = FundingSwitches(catalog, store, clock.now_ms, ttl_ms=60_000)
    bus = CoreBus()
    bus.exchange.ok({"op": "asset", "asset": "BTC", "decimals": 8})
    chain, watch = Chain(), WatchStore()
    watcher = ChainWatcher(
        net,
        chain,
        watch,
        Addresses(),
        bus,
        clock.now_ms,
        switches=switches,  # type: ignore[arg-type]
    )
    run(switches.set(ADMIN, "bitcoin", "BTC", deposit_enabled=False))
    chain.mine(ChainTransfer("tx1", 0, "bcrt1-user5", 70_000))
    chain.mine()
    result = run(watcher.step())
    assert (result.seen, result.credited) == (1, 0)
    assert [d.status for d in watch.deposits.values()] == ["pending"]
    assert bus.exchange.bal(5, "BTC") == (0, 0)
    # enabled by another process: the watcher reads the switch on every pass (no cache)
    other = FundingSwitches(catalog, store, clock.now_ms)
    run(other.set(ADMIN, "bitcoin", "BTC", deposit_enabled=True))
    assert run(watcher.step()).credited == 1
    assert run(watcher.step()).credited == 0
    assert bus.exchange.bal(5, "BTC") == (70_000, 0)
    assert [d.status for d in watch.deposits.values()] == ["credited"]
