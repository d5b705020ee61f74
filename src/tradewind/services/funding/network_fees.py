"""Network fees: what the exchange's own transactions paid the chain, booked once in the
core as an ``Expense`` of the withdrawal-fee account (issue 6, ADR 0034).

A payout, a sweep, a gas top-up or a move to cold pays its network's fee (EVM:
``gasUsed * effectiveGasPrice`` in the native coin; Bitcoin: its inputs less its
outputs) out of custody. Unbooked, every one of them would show as a custody shortfall
in ``tradewind reconcile``, and nobody could tell a fee from a theft. One
:meth:`NetworkFeeBooker.step`:

1. **records** each finished transaction of the exchange that has no fee row yet:
   withdrawals ``confirmed`` (or ``failed`` after reverting on chain: the gas was paid
   all the same) and custody transfers ``confirmed`` or ``failed``, of every network
   with a fee reader, whatever its kind (EVM or UTXO). The fee is read from the chain
   (:class:`FeeReader`), converted to the core's minor units of the network's native
   asset rounding **up** (the books never show more than the chain holds), and stored
   ``pending``. A failed transaction the chain does not know paid nothing: ``none``.
   A confirmed one whose fee cannot be read yet waits for the next step;
2. **books** every ``pending`` row: ``Expense(FEE_ACCOUNT, asset, amount,
   ref="network-fee:<source>:<id>")``. Applied -> ``booked`` with the core's seq. The
   core answers ``duplicate_expense`` when an earlier attempt was applied and the
   process died before storing it: that is ``booked`` too (seq unknown). Refused for
   want of funds (``insufficient_balance``: the fee account holds too little of the
   native coin, e.g. gas of token payouts whose fees are kept in the token) -> stays
   ``pending`` with the reason, and an operator alert ``custody.network_fee_unbooked``
   (per asset) names the fee, the txid and everything still unbooked; the
   next step tries again (oldest first: the later fees of a refused asset wait for the
   next step), so funding the fee account books it.

Invariants: one row per source transaction (the store's key), one core booking per row
(the core's ref), never a negative balance (the core checks the funds), never a fee
booked above what the chain took by more than one minor unit's rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol, runtime_checkable

import structlog

from tradewind.core.commands import Expense
from tradewind.core.events import Rejected
from tradewind.services.alerts import AlertService
from tradewind.services.funding.networks import AssetOnNetwork, NetworkCatalog
from tradewind.services.funding.withdrawals import FEE_ACCOUNT
from tradewind.services.trading import CommandBus

log = structlog.get_logger(__name__)

Source = Literal["withdrawal", "custody"]
"""The table a transaction is a row of: ``withdrawals`` or ``custody_transfers``."""
FeeStatus = Literal["pending", "booked", "none"]
ALERT_KIND = "custody.network_fee_unbooked"


@dataclass(frozen=True, slots=True)
class FeeSource:
    """A finished transaction of the exchange whose fee has no row yet."""

    source: Source
    source_id: int
    network: str
    txid: str
    status: str
    """The source row's status: ``confirmed`` or ``failed``."""


@dataclass(frozen=True, slots=True)
class NetworkFee:
    source: Source
    source_id: int
    network: str
    asset: str
    """The network's native asset (the coin fees are paid in)."""
    txid: str
    fee_chain: int
    """Chain units (wei, satoshi)."""
    amount: int
    """Minor units of ``asset``, ``fee_chain`` rounded up."""
    status: FeeStatus
    created_at_ms: int
    updated_at_ms: int
    seq: int | None = None
    """The core's seq of the booking; ``None`` while pending, for ``none``, and when an
    earlier attempt's booking was only learnt from ``duplicate_expense``."""
    reason: str | None = None

    @property
    def ref(self) -> str:
        return fee_ref(self.source, self.source_id)


def fee_ref(source: str, source_id: int) -> str:
    """The core's ``Expense.ref`` of a transaction's fee (at most 64 characters)."""
    return f"network-fee:{source}:{source_id}"


def to_minor_units_up(fee_chain: int, rules: AssetOnNetwork) -> int:
    """``fee_chain`` in the core's minor units of the asset, rounded up: the books
    then never hold more than the chain does (ADR 0034)."""
    shift = rules.chain_decimals - rules.decimals
    scale: int = 10 ** abs(shift)
    if shift <= 0:
        return fee_chain * scale
    return -(-fee_chain // scale)


@runtime_checkable
class FeeReader(Protocol):
    """A network's node, as the fee booking reads it (``Web3PayoutChain``,
    ``BitcoindPayoutChain``)."""

    async def fee_paid(self, txid: str) -> int | None:
        """The fee the mined transaction ``txid`` paid, in chain units of the native
        coin; ``None`` when the chain has no such mined transaction (not mined, dropped,
        or never accepted). Raises ``OSError`` when the node could not be asked."""
        ...


class NetworkFeeStore(Protocol):
    """The ``network_fees`` rows (adapters/sql/network_fees.py); one transaction each."""

    async def unrecorded(self, networks: Collection[str], limit: int) -> Sequence[FeeSource]:
        """Finished transactions on ``networks`` without a fee row, oldest first:
        withdrawals ``confirmed`` or ``failed`` and custody transfers ``confirmed`` or
        ``failed``, each with a txid."""
        ...

    async def record(self, fee: NetworkFee) -> bool:
        """Insert unless a row of the same source exists (``False`` then)."""
        ...

    async def pending(self, limit: int) -> Sequence[NetworkFee]:
        """Rows ``pending``, oldest first."""
        ...

    async def booked(self, source: str, source_id: int, seq: int | None, at_ms: int) -> bool:
        """``pending -> booked`` (compare-and-set), with the core's seq when known."""
        ...

    async def note(self, source: str, source_id: int, reason: str, at_ms: int) -> None:
        """Keep why a pending row is not booked yet."""
        ...

    async def get(self, source: str, source_id: int) -> NetworkFee | None: ...


@dataclass
class FeeCounts:
    recorded: int = 0
    booked: int = 0
    waiting: int = 0
    alerts: int = 0


class NetworkFeeBooker:
    def __init__(
        self,
        *,
        catalog: NetworkCatalog,
        store: NetworkFeeStore,
        readers: Mapping[str, FeeReader],
        bus: CommandBus,
        now_ms: Callable[[], int],
        alerts: AlertService | None = None,
        batch: int = 200,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.readers = dict(readers)
        self.bus = bus
        self.now_ms = now_ms
        self.alerts = alerts
        self.batch = batch
        self.native: dict[str, AssetOnNetwork] = {}
        """Network -> its native asset's rules; a network without one cannot book."""
        for net in catalog.networks:
            rules = next((a for a in net.assets if a.native), None)
            if rules is not None and net.name in self.readers:
                self.native[net.name] = rules
            elif net.name in self.readers:
                log.warning("network fees not booked: no native asset", network=net.name)

    async def step(self) -> FeeCounts:
        counts = FeeCounts()
        if self.native:
            await self._record(counts)
        await self._book(counts)
        return counts

    async def _record(self, counts: FeeCounts) -> None:
        for src in await self.store.unrecorded(tuple(self.native), self.batch):
            rules = self.native[src.network]
            try:
                paid = await self.readers[src.network].fee_paid(src.txid)
            except Exception:  # the node away (or one odd transaction): the others go on
                counts.waiting += 1
                log.exception("network fee not read", source=src.source, id=src.source_id)
                continue
            if paid is None and src.status != "failed":
                counts.waiting += 1  # mined, but this node cannot show it yet
                log.warning("network fee not found on chain", txid=src.txid, id=src.source_id)
                continue
            fee_chain = paid or 0
            amount = to_minor_units_up(fee_chain, rules)
            now = self.now_ms()
            row = NetworkFee(
                source=src.source,
                source_id=src.source_id,
                network=src.network,
                asset=rules.asset,
                txid=src.txid,
                fee_chain=fee_chain,
                amount=amount,
                status="pending" if amount > 0 else "none",
                created_at_ms=now,
                updated_at_ms=now,
            )
            if await self.store.record(row):
                counts.recorded += 1

    async def _book(self, counts: FeeCounts) -> None:
        refused: dict[str, NetworkFee] = {}
        """Asset -> the first fee of it the core refused this step: the later ones of
        that asset wait for the next step (oldest first; no flood of refused commands
        and alerts while the account is short)."""
        for fee in await self.store.pending(self.batch):
            if fee.asset in refused:
                counts.waiting += 1
                continue
            applied = await self.bus.submit(
                Expense(user=FEE_ACCOUNT, asset=fee.asset, amount=fee.amount, ref=fee.ref)
            )
            rejected = next((e for e in applied.events if type(e) is Rejected), None)
            if rejected is None or rejected.reason == "duplicate_expense":
                seq = applied.seq if rejected is None else None
                if await self.store.booked(fee.source, fee.source_id, seq, self.now_ms()):
                    counts.booked += 1
                continue
            counts.waiting += 1
            reason = f"{rejected.reason}: {rejected.message}"[:400]
            await self.store.note(fee.source, fee.source_id, reason, self.now_ms())
            log.error("network fee not booked", ref=fee.ref, reason=reason)
            refused[fee.asset] = replace(fee, reason=reason)
        for fee in refused.values():
            if await self._alert(fee):
                counts.alerts += 1

    async def _alert(self, fee: NetworkFee) -> bool:
        if self.alerts is None:
            return False
        rules = self.native.get(fee.network)
        owed = sum(p.amount for p in await self.store.pending(100_000) if p.asset == fee.asset)
        decimals = rules.decimals if rules is not None else 0
        message = (
            f"the network fee of {fee.source} {fee.source_id} ({fee.txid} on {fee.network}, "
            f"{_decimal(fee.amount, decimals)} {fee.asset}) is not booked: {fee.reason}. "
            f"Unbooked {fee.asset} fees in all: {_decimal(owed, decimals)}. Fund "
            f"the withdrawal-fee account (core account {FEE_ACCOUNT}) in {fee.asset}; the "
            "booking is retried every step"
        )
        try:
            await self.alerts.raise_alert(
                ALERT_KIND,
                "warning",
                message,
                {
                    "network": fee.network,
                    "asset": fee.asset,
                    "ref": fee.ref,
                    "txid": fee.txid,
                    "fee": _decimal(fee.amount, decimals),
                    "fee_chain_units": str(fee.fee_chain),
                    "unbooked": _decimal(owed, decimals),
                    "account": FEE_ACCOUNT,
                },
                dedupe_key=f"{ALERT_KIND}:{fee.asset}",
            )
            return True
        except Exception:  # the row stays pending and the log line stands regardless
            log.exception("operator alert not raised", kind=ALERT_KIND)
            return False


def _decimal(amount: int, decimals: int) -> str:
    if decimals == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"
