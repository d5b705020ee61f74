"""The margin projector: every margin step the core reports, as history rows.

Invariants:
- one record per margin event (transfer, borrow, repay, interest, margin call,
  liquidation started / fill / finished), keyed by ``(seq, event_index)``, written
  exactly once per command (offset rule of :mod:`tradewind.services.projectors.base`):
  re-fed batches are skipped, a hole is a :class:`~.base.SeqGap`;
- one wallet row per ``margin_wallet_opened`` (wallet id -> owner, kind, symbol), so
  history, order lists and notices can name the owner of a wallet;
- amounts stay integers (minor units, ticks, lots) with the event's own fields in
  ``data``; the gateways format them.

Margin calls and finished liquidations are also notices to mail
(:mod:`tradewind.services.margin_notices` reads them back with ``notified`` unset).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from tradewind.core.events import (
    Borrowed,
    Event,
    InterestCharged,
    LiquidationFill,
    LiquidationFinished,
    LiquidationStarted,
    MarginCall,
    MarginTransferred,
    MarginWalletOpened,
    Repaid,
)
from tradewind.services.projectors.base import pending
from tradewind.services.projectors.ports import Batch

NOTICE_KINDS = frozenset({"margin_call", "liquidation_finished"})


@dataclass(frozen=True, slots=True)
class WalletRecord:
    wallet: int
    user: int
    kind: str
    symbol: str | None
    seq: int
    ts: int


@dataclass(frozen=True, slots=True)
class MarginEventRecord:
    seq: int
    event_index: int
    ts: int
    wallet: int
    user: int
    kind: str
    asset: str | None
    amount: int | None
    data: dict[str, object] = field(default_factory=dict)
    notify: bool = False


class MarginTx(Protocol):
    async def offset(self) -> int: ...

    async def add_wallets(self, rows: Sequence[WalletRecord]) -> None: ...

    async def add_events(self, rows: Sequence[MarginEventRecord]) -> None: ...

    async def advance(self, seq: int, ts: int) -> None: ...


class MarginWriter(Protocol):
    async def offset(self, name: str) -> int: ...

    def transaction(self, name: str) -> AbstractAsyncContextManager[MarginTx]: ...


def record_of(seq: int, idx: int, ts: int, e: Event) -> MarginEventRecord | None:
    """The history record of one event (``None`` for events that are not margin steps)."""
    if isinstance(e, MarginTransferred):
        data0: dict[str, object] = {"direction": e.direction}
        return MarginEventRecord(
            seq, idx, ts, e.wallet, e.user, "transfer", e.asset, e.amount, data0
        )
    if isinstance(e, Borrowed):
        data: dict[str, object] = {"principal": e.principal, "interest": e.interest}
        if e.order_id is not None:
            data["order_id"] = e.order_id
        return MarginEventRecord(seq, idx, ts, e.wallet, e.user, "borrow", e.asset, e.amount, data)
    if isinstance(e, Repaid):
        data = {
            "interest_paid": e.interest_paid,
            "principal_paid": e.principal_paid,
            "principal": e.principal,
            "interest": e.interest,
            "reason": e.reason,
        }
        return MarginEventRecord(seq, idx, ts, e.wallet, e.user, "repay", e.asset, e.amount, data)
    if isinstance(e, InterestCharged):
        data = {
            "principal": e.principal,
            "interest": e.interest,
            "hours": e.hours,
            "until_hour": e.until_hour,
        }
        return MarginEventRecord(
            seq, idx, ts, e.wallet, e.user, "interest", e.asset, e.amount, data
        )
    if isinstance(e, MarginCall):
        data = {
            "level": e.level,
            "margin_call_level": e.margin_call_level,
            "liquidation_level": e.liquidation_level,
        }
        return MarginEventRecord(
            seq, idx, ts, e.wallet, e.user, "margin_call", None, None, data, notify=True
        )
    if isinstance(e, LiquidationStarted):
        data = {
            "level": e.level,
            "liquidation_level": e.liquidation_level,
            "assets": e.assets,
            "liabilities": e.liabilities,
            "valuation_asset": e.valuation_asset,
        }
        return MarginEventRecord(
            seq, idx, ts, e.wallet, e.user, "liquidation_started", None, None, data
        )
    if isinstance(e, LiquidationFill):
        data = {
            "order_id": e.order_id,
            "symbol": e.symbol,
            "side": e.side,
            "limit": e.limit,
            "qty": e.qty,
            "filled": e.filled,
        }
        return MarginEventRecord(
            seq, idx, ts, e.wallet, e.user, "liquidation_fill", None, None, data
        )
    if isinstance(e, LiquidationFinished):
        data = {
            "fee": e.fee,
            "taken_over": dict(e.taken_over),
            "insurance_paid": dict(e.insurance_paid),
            "pool_loss": dict(e.pool_loss),
            "left": dict(e.left),
        }
        return MarginEventRecord(
            seq, idx, ts, e.wallet, e.user, "liquidation_finished", None, None, data, notify=True
        )
    return None


_MARGIN_EVENTS = (
    MarginWalletOpened,
    MarginTransferred,
    Borrowed,
    Repaid,
    InterestCharged,
    MarginCall,
    LiquidationStarted,
    LiquidationFill,
    LiquidationFinished,
)
"""Every event this projector records (a wallet row or a history row)."""


def _has_margin_events(batches: Sequence[Batch]) -> bool:
    kinds = _MARGIN_EVENTS
    return any(isinstance(e, kinds) for b in batches for e in b.events)


class MarginProjector:
    """Writes the margin history through a :class:`MarginWriter`.

    ``lazy_offset`` (``N > 0``; only for the store's sole writer, whose progress readers
    ask this process and not the stored offset: the embedded exchange): batches without
    a margin event advance the offset in memory, and in the store only once ``N``
    commands have passed since it was last stored, or with the next margin event. Most
    commands are spot orders; a transaction per linger window only to move the offset
    was a few per cent of the embedded event loop (docs/performance.md). The stored
    offset may then lag by up to ``N`` commands that had nothing to record: a restart
    replays them from the journal and writes nothing, so each row is still written once.
    """

    def __init__(self, store: MarginWriter, name: str = "margin", lazy_offset: int = 0) -> None:
        self._store = store
        self._name = name
        self._lazy = lazy_offset
        self._last: int | None = None  # applied, maybe not stored (lazy mode)
        self._stored = 0
        self.notices_written = 0
        """Notices (margin calls, finished liquidations) this object has stored: lets a
        mailer in the same process skip polling while it has not changed."""

    @property
    def name(self) -> str:
        return self._name

    async def offset(self) -> int:
        stored = await self._store.offset(self._name)
        if not self._lazy:
            return stored
        if self._last is None or stored >= self._last:
            self._last = self._stored = stored
        return self._last

    async def apply(self, batches: Sequence[Batch]) -> int:
        last = self._last
        if self._lazy and last is not None:
            todo = pending(self._name, last, batches)
            if not todo:
                return last
            end_seq = todo[-1].seq
            if end_seq - self._stored < self._lazy and not _has_margin_events(todo):
                self._last = end_seq
                return end_seq
        async with self._store.transaction(self._name) as tx:
            last = await tx.offset()
            if self._lazy and self._last is not None and self._last > last:
                last = self._last  # advanced in memory past commands without margin events
            todo = pending(self._name, last, batches)
            if not todo:
                return last
            wallets: list[WalletRecord] = []
            records: list[MarginEventRecord] = []
            for batch in todo:
                for idx, e in enumerate(batch.events):
                    if isinstance(e, MarginWalletOpened):
                        wallets.append(
                            WalletRecord(e.wallet, e.user, e.kind, e.symbol, batch.seq, batch.ts)
                        )
                        continue
                    rec = record_of(batch.seq, idx, batch.ts, e)
                    if rec is not None:
                        records.append(rec)
            if wallets:
                await tx.add_wallets(wallets)
            if records:
                await tx.add_events(records)
            end = todo[-1]
            await tx.advance(end.seq, end.ts)
        self.notices_written += sum(1 for r in records if r.notify)
        if self._lazy:
            self._last = self._stored = end.seq
        return end.seq
