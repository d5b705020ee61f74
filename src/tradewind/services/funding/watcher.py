"""The chain watcher: follows one network's blocks, records deposits to users' deposit
addresses as pending, and credits each exactly once through the core after the asset's
confirmations (DESIGN §5, ADR 0019).

Invariants:
- a deposit is keyed by ``(network, txid, index)`` (index: log index of a token
  Transfer, ``NATIVE_INDEX`` for an EVM transaction's own value, the output index on
  Bitcoin); seeing it again never adds a row;
- the credit is a core ``Deposit`` carrying ``ref = network:txid:index``; the core
  applies a ref once and rejects it after with ``duplicate_deposit``, which the watcher
  takes as "already credited". So a crash between the core's credit and the SQL record
  ends, after a restart, with exactly one credit;
- blocks are tracked by hash; a block whose parent is not the stored block below it is a
  reorg: the watcher walks back to the common ancestor, forgets the blocks above it and
  un-marks (orphans) their pending deposits. A reorg that removes a credited deposit, or
  is as deep as the network's credit depth, raises a critical alert (log, metric, row)
  and changes no balance;
- progress is the stored tip: a restarted watcher goes on from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from tradewind.core.commands import MAX_INT, Deposit
from tradewind.core.events import Deposited, Rejected
from tradewind.services.funding.chain_ports import (
    NATIVE_INDEX,
    ChainBlock,
    ChainDeposit,
    ChainReader,
    ChainTransfer,
    WatchedBlock,
    WatcherStore,
)
from tradewind.services.funding.networks import AssetOnNetwork, Network
from tradewind.services.funding.ports import DepositAddressStore
from tradewind.services.funding.sweep_ports import OwnTransfers
from tradewind.services.funding.switches import FundingSwitches
from tradewind.services.funding.withdrawals import Notifier, format_units
from tradewind.services.trading import CommandBus

log = structlog.get_logger(__name__)

KEEP_MARGIN = 64
"""Blocks kept beyond the deepest confirmation count, to find a reorg's common ancestor."""


class ReorgBeyondWindow(RuntimeError):
    """The chain forked below every block the watcher still tracks: it stops rather
    than guess (an alert is stored)."""


@dataclass(frozen=True, slots=True)
class StepResult:
    scanned: int
    seen: int
    credited: int
    orphaned: int
    alerts: int


def to_core_units(chain_amount: int, asset: AssetOnNetwork) -> int:
    """Chain units to the core's minor units, exactly; dust below the core's precision
    is dropped (it stays on the deposit address), never rounded up."""
    shift = asset.chain_decimals - asset.decimals
    if shift >= 0:
        divisor: int = 10**shift
        return chain_amount // divisor
    scale: int = 10**-shift
    return chain_amount * scale


class ChainWatcher:
    def __init__(
        self,
        network: Network,
        reader: ChainReader,
        store: WatcherStore,
        addresses: DepositAddressStore,
        bus: CommandBus,
        clock_ms: Callable[[], int],
        *,
        start_height: int = 0,
        on_alert: Callable[[str, str], None] | None = None,
        switches: FundingSwitches | None = None,
        own: OwnTransfers | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.network = network
        self._notifier = notifier
        """Tells the user once their deposit is credited (an email through the outbox)."""
        self._own = own
        """The exchange's own transactions (gas top-ups to deposit addresses, ADR 0028):
        never deposits."""
        self._switches = switches
        """Runtime switches (ADR 0032): a deposit of a disabled asset is scanned and
        stays ``pending``, credited by the first pass after deposits are enabled again."""
        self._reader = reader
        self._store = store
        self._addresses = addresses
        self._bus = bus
        self._clock_ms = clock_ms
        self._start = start_height
        self._on_alert = on_alert
        self._native = next((a for a in network.assets if a.native), None)
        self._tokens = {a.contract: a for a in network.assets if a.contract is not None}
        depths = [a.confirmations for a in network.assets] or [1]
        self.credit_depth = min(depths)
        """The shallowest confirmation count: a reorg this deep may undo a credit."""
        self._keep = max(depths) + KEEP_MARGIN

    # -- one pass -----------------------------------------------------------------------

    async def step(self, max_blocks: int = 500) -> StepResult:
        """Scan up to ``max_blocks`` new blocks (handling reorgs), then credit what is
        confirmed. Safe to call again at any time, also after a crash."""
        name = self.network.name
        head = await self._reader.head()
        scanned = seen = orphaned = alerts = 0
        tip = await self._store.tip(name)
        if tip is not None and await self._reader.block_hash(tip.number) != tip.hash:
            # the stored tip left the chain (also when the new chain is shorter)
            orphaned, alerts = await self._reorg(tip, head)
        while scanned < max_blocks:
            tip = await self._store.tip(name)
            number = self._start if tip is None else tip.number + 1
            if number > head:
                break
            block = await self._reader.block(number)
            if block is None:
                break
            if tip is not None and block.parent_hash != tip.hash:
                o, a = await self._reorg(tip, head)
                orphaned += o
                alerts += a
                continue
            seen += await self._record(block)
            scanned += 1
        credited = await self._credit(head)
        return StepResult(scanned, seen, credited, orphaned, alerts)

    async def _record(self, block: ChainBlock) -> int:
        deposits: list[ChainDeposit] = []
        candidates: list[tuple[ChainTransfer, AssetOnNetwork]] = []
        for t in block.transfers:
            asset = self._native if t.contract is None else self._tokens.get(t.contract)
            # recorded even while deposits are suspended: they wait, pending, for the
            # asset to be enabled again rather than being lost with their block
            if asset is None or t.value <= 0:
                continue
            if not self._index_fits(t.contract, t.index):
                continue
            candidates.append((t, asset))
        if candidates and self._own is not None:
            own = await self._own.own_txids(self.network.name, {t.txid for t, _ in candidates})
            candidates = [(t, a) for t, a in candidates if t.txid not in own]
        owners = (
            await self._addresses.owners_of(self.network.name, {t.to for t, _ in candidates})
            if candidates
            else {}
        )
        for t, asset in candidates:
            user = owners.get(t.to)
            if user is None:
                continue
            amount = to_core_units(t.value, asset)
            too_large = amount > MAX_INT  # no core balance can hold it: kept for review
            deposits.append(
                ChainDeposit(
                    self.network.name,
                    t.txid,
                    t.index,
                    user,
                    asset.asset,
                    t.value,
                    0 if too_large else amount,
                    block.number,
                    block.hash,
                    "refused" if too_large else "pending",
                    note="amount_too_large" if too_large else None,
                )
            )
        await self._store.record_block(
            self.network.name, WatchedBlock(block.number, block.hash), deposits, self._keep
        )
        for d in deposits:
            log.info("deposit seen", ref=d.ref, user=d.user_id, asset=d.asset, block=d.block_number)
        return len(deposits)

    def _index_fits(self, contract: str | None, index: int) -> bool:
        """EVM: the native value is ``NATIVE_INDEX``, a token log has its log index;
        Bitcoin (UTXO): every deposit is an output, indexed by its position."""
        if contract is None and self.network.kind == "evm":
            return index == NATIVE_INDEX
        return index >= 0

    async def _reorg(self, tip: WatchedBlock, head: int) -> tuple[int, int]:
        """Find the common ancestor below ``tip``, forget the blocks above it and
        orphan their pending deposits; alert when a credit may be undone."""
        name = self.network.name
        number = tip.number
        ancestor: int | None = None
        while number >= max(0, tip.number - self._keep):
            stored = await self._store.block_at(name, number)
            if stored is None:
                break
            if stored.hash == await self._reader.block_hash(number):
                ancestor = number
                break
            number -= 1
        if ancestor is None:
            msg = f"{name}: chain forked below block {number + 1}, beyond the tracked window"
            await self._alert("reorg_beyond_window", msg, tip.number)
            raise ReorgBeyondWindow(msg)
        depth = tip.number - ancestor
        removed = await self._store.roll_back(name, ancestor)
        credited = [d for d in removed if d.status == "credited"]
        orphaned = sum(1 for d in removed if d.status == "pending")
        log.warning("reorg", network=name, depth=depth, ancestor=ancestor, orphaned=orphaned)
        alerts = 0
        if credited or depth >= self.credit_depth:
            refs = ", ".join(d.ref for d in credited) or "none"
            await self._alert(
                "deep_reorg",
                f"{name}: reorg of {depth} blocks above {ancestor} (credit depth "
                f"{self.credit_depth}); credited deposits in dropped blocks: {refs}; "
                "balances left unchanged",
                ancestor + 1,
            )
            alerts = 1
        return orphaned, alerts

    async def _alert(self, kind: str, message: str, block_number: int) -> None:
        log.critical("chain alert", network=self.network.name, kind=kind, message=message)
        await self._store.add_alert(
            self.network.name, kind, message, block_number, self._clock_ms()
        )
        if self._on_alert is not None:
            self._on_alert(self.network.name, kind)

    # -- crediting ----------------------------------------------------------------------

    async def _credit(self, head: int) -> int:
        name = self.network.name
        credited = 0
        hashes: dict[int, str | None] = {}  # one look-up per block per pass, not per deposit
        network = self.network
        if self._switches is not None:  # read once per pass, uncached
            network = await self._switches.network(network, fresh=True)
        for d in await self._store.pending(name):
            asset = network.asset(d.asset)
            if asset is None:
                continue
            if head - d.block_number + 1 < asset.confirmations or not asset.deposit_enabled:
                continue
            # the block must still be ours (a reorg not yet scanned would show here)
            if d.block_number not in hashes:
                hashes[d.block_number] = await self._reader.block_hash(d.block_number)
            if hashes[d.block_number] != d.block_hash:
                continue
            if d.amount < asset.min_deposit or d.amount <= 0:
                await self._store.finish(
                    name, d.txid, d.index, "below_minimum", note=f"minimum {asset.min_deposit}"
                )
                continue
            applied = await self._bus.submit(
                Deposit(user=d.user_id, asset=d.asset, amount=d.amount, ref=d.ref)
            )
            rejected = next((e for e in applied.events if type(e) is Rejected), None)
            if rejected is None and any(type(e) is Deposited for e in applied.events):
                await self._store.finish(name, d.txid, d.index, "credited", seq=applied.seq)
                credited += 1
                log.info("deposit credited", ref=d.ref, seq=applied.seq, amount=d.amount)
                await self._tell_credited(d, asset.decimals)
            elif rejected is not None and rejected.reason == "duplicate_deposit":
                # credited before a crash that lost the record: the core remembers
                await self._store.finish(
                    name, d.txid, d.index, "credited", note="credited before a restart"
                )
                log.info("deposit already credited", ref=d.ref)
            else:
                reason = rejected.reason if rejected is not None else "no event"
                await self._store.finish(name, d.txid, d.index, "refused", note=reason)
                log.error("deposit refused by the core", ref=d.ref, reason=reason)
        return credited

    async def _tell_credited(self, d: ChainDeposit, decimals: int) -> None:
        """At most once: after the SQL record says ``credited`` (a crash in between
        loses the email, never doubles the credit); a mail failure never stops crediting."""
        if self._notifier is None:
            return
        amount = format_units(d.amount, decimals)
        text = (
            f"Your deposit of {amount} {d.asset} on {d.network} (transaction {d.txid}) "
            "was credited to your balance."
        )
        try:
            await self._notifier.notify(d.user_id, f"deposit of {amount} {d.asset} credited", text)
        except Exception:  # the outbox is another store; the credit stands either way
            log.exception("deposit notice not sent", ref=d.ref)
