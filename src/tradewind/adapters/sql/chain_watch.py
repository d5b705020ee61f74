"""The chain watcher's tables (``chain_blocks``, ``chain_deposits``, ``chain_alerts``)
and the SQL ``WatcherStore`` (services/funding/chain_ports.py).

Invariants:
- one deposit row per ``(network, txid, idx)`` (primary key): a deposit seen twice, or
  seen again in the block that replaced its block after a reorg, is one row;
- a block and the deposits found in it are written in one transaction, so the stored
  tip (the height a restarted watcher resumes from) never runs ahead of its deposits;
- a credited row stays credited whatever happens to its block (a reorg under a credit
  is an alert, not a status change);
- every ``chain_alerts`` row is also an operator alert (``alerts``, kind
  ``chain.<kind>``, critical), written in the same transaction, so the back office sees
  it and staff acknowledge it there (services/alerts.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.alerts import upsert_alert
from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database
from tradewind.adapters.sql.types import ID
from tradewind.services.audit import canonical_details
from tradewind.services.funding.chain_ports import (
    ChainDeposit,
    DepositStatus,
    WatchedBlock,
)

_SETTLED = ("credited", "below_minimum", "refused")


class ChainBlockRow(Base):
    __tablename__ = "chain_blocks"

    network: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    number: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(sa.String(80))


class ChainDepositRow(Base):
    __tablename__ = "chain_deposits"
    __table_args__ = (
        sa.Index(None, "network", "status"),
        sa.Index(None, "user_id", "seen_at_ms"),  # deposit history (migration 0017)
        sa.Index(None, "seen_at_ms"),
    )

    network: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    txid: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    idx: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    asset: Mapped[str] = mapped_column(sa.String(32))
    chain_amount: Mapped[str] = mapped_column(sa.String(80))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    block_number: Mapped[int] = mapped_column(sa.BigInteger)
    block_hash: Mapped[str] = mapped_column(sa.String(80))
    status: Mapped[str] = mapped_column(sa.String(16))
    credited_seq: Mapped[int | None] = mapped_column(sa.BigInteger)
    note: Mapped[str | None] = mapped_column(sa.String(400))
    seen_at_ms: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    """When the watcher first stored it (0: before migration 0017, unknown)."""
    updated_at_ms: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    """When its status last changed (seen, credited, refused, pending again)."""


class ChainAlertRow(Base):
    __tablename__ = "chain_alerts"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    network: Mapped[str] = mapped_column(sa.String(16))
    kind: Mapped[str] = mapped_column(sa.String(32))
    message: Mapped[str] = mapped_column(sa.String(2000))
    block_number: Mapped[int] = mapped_column(sa.BigInteger)
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)


def _deposit(row: ChainDepositRow) -> ChainDeposit:
    status: DepositStatus = row.status  # type: ignore[assignment]
    return ChainDeposit(
        row.network,
        row.txid,
        row.idx,
        row.user_id,
        row.asset,
        int(row.chain_amount),
        row.amount,
        row.block_number,
        row.block_hash,
        status,
        row.credited_seq,
        row.note,
    )


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class SqlWatcherStore:
    """``clock_ms`` stamps when a deposit was seen and when its status changed (the
    deposit history's times); the watcher's rules never read them."""

    def __init__(self, db: Database, clock_ms: Callable[[], int] = _wall_clock_ms) -> None:
        self._db = db
        self._clock_ms = clock_ms

    async def tip(self, network: str) -> WatchedBlock | None:
        async with self._db.read() as session:
            row = await session.scalar(
                sa.select(ChainBlockRow)
                .where(ChainBlockRow.network == network)
                .order_by(ChainBlockRow.number.desc())
                .limit(1)
            )
            return None if row is None else WatchedBlock(row.number, row.hash)

    async def block_at(self, network: str, number: int) -> WatchedBlock | None:
        async with self._db.read() as session:
            row = await session.get(ChainBlockRow, (network, number))
            return None if row is None else WatchedBlock(row.number, row.hash)

    async def record_block(
        self, network: str, block: WatchedBlock, deposits: list[ChainDeposit], keep: int
    ) -> None:
        now = self._clock_ms()
        async with self._db.write() as session:
            session.add(ChainBlockRow(network=network, number=block.number, hash=block.hash))
            for d in deposits:
                row = await session.get(ChainDepositRow, (network, d.txid, d.index))
                if row is None:
                    session.add(
                        ChainDepositRow(
                            network=network,
                            txid=d.txid,
                            idx=d.index,
                            user_id=d.user_id,
                            asset=d.asset,
                            chain_amount=str(d.chain_amount),
                            amount=d.amount,
                            block_number=d.block_number,
                            block_hash=d.block_hash,
                            status=d.status,
                            note=d.note,
                            seen_at_ms=now,
                            updated_at_ms=now,
                        )
                    )
                    continue
                row.block_number, row.block_hash = d.block_number, d.block_hash
                if row.status == "orphaned":
                    row.status, row.updated_at_ms = "pending", now
            await session.execute(
                sa.delete(ChainBlockRow).where(
                    ChainBlockRow.network == network, ChainBlockRow.number < block.number - keep
                )
            )

    async def roll_back(self, network: str, above: int) -> list[ChainDeposit]:
        async with self._db.write() as session:
            rows = (
                await session.scalars(
                    sa.select(ChainDepositRow).where(
                        ChainDepositRow.network == network, ChainDepositRow.block_number > above
                    )
                )
            ).all()
            before = [_deposit(r) for r in rows]
            now = self._clock_ms()
            for r in rows:
                if r.status == "pending":
                    r.status, r.updated_at_ms = "orphaned", now
            await session.execute(
                sa.delete(ChainBlockRow).where(
                    ChainBlockRow.network == network, ChainBlockRow.number > above
                )
            )
            return before

    async def pending(self, network: str) -> list[ChainDeposit]:
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(ChainDepositRow)
                .where(ChainDepositRow.network == network, ChainDepositRow.status == "pending")
                .order_by(ChainDepositRow.block_number, ChainDepositRow.txid, ChainDepositRow.idx)
            )
            return [_deposit(r) for r in rows]

    async def deposit(self, network: str, txid: str, index: int) -> ChainDeposit | None:
        async with self._db.read() as session:
            row = await session.get(ChainDepositRow, (network, txid, index))
            return None if row is None else _deposit(row)

    async def deposits(self, network: str) -> list[ChainDeposit]:
        """Every deposit of ``network`` (operators' view and tests)."""
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(ChainDepositRow)
                .where(ChainDepositRow.network == network)
                .order_by(ChainDepositRow.block_number, ChainDepositRow.txid, ChainDepositRow.idx)
            )
            return [_deposit(r) for r in rows]

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
        async with self._db.write() as session:
            row = await session.get(ChainDepositRow, (network, txid, index))
            if row is None or row.status in _SETTLED:
                return
            row.status, row.credited_seq, row.note = status, seq, note
            row.updated_at_ms = self._clock_ms()

    async def add_alert(
        self, network: str, kind: str, message: str, block_number: int, at_ms: int
    ) -> None:
        async with self._db.write() as session:
            session.add(
                ChainAlertRow(
                    network=network,
                    kind=kind,
                    message=message[:2000],
                    block_number=block_number,
                    created_at_ms=at_ms,
                )
            )
            await upsert_alert(
                session,
                kind=f"chain.{kind}"[:64],
                severity="critical",
                message=message,
                details=canonical_details({"block": block_number, "network": network}),
                dedupe_key=f"chain:{network}:{kind}:{block_number}"[:200],
                at_ms=at_ms,
            )

    async def alerts(self, network: str) -> list[tuple[str, str, int]]:
        """``(kind, message, block_number)`` of the network's alerts, oldest first."""
        async with self._db.read() as session:
            rows = await session.execute(
                sa.select(ChainAlertRow.kind, ChainAlertRow.message, ChainAlertRow.block_number)
                .where(ChainAlertRow.network == network)
                .order_by(ChainAlertRow.id)
            )
            return [(k, m, n) for k, m, n in rows]
