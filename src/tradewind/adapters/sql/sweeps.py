"""The custody-move tables (``custody_transfers``, ``custody_alerts``; migration 0012)
and the SQL ``SweepStore`` (services/funding/sweep_ports.py; ADR 0028).

Invariants:
- a status change is one ``UPDATE ... WHERE id = ? AND status IN (...)``: of two racing
  writers (two sweepers, the signer and a replayed request) one changes the row;
- chain amounts and fees are decimal strings (an ERC-20 amount is up to 2**256-1);
- the highest nonce of a sender is taken over custody transfers AND withdrawals, so a
  cold move or a top-up from the hot wallet never reuses a payout's nonce (and the
  withdrawal store's ``highest_nonce`` reads this table for the same reason);
- an alert is open until resolved: at most one open row per (network, asset, kind);
- a transfer's txid is stored (by the signer) before it is broadcast, so the chain
  watcher can always tell a gas top-up to a deposit address from a user's deposit.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.chain_watch import ChainDepositRow
from tradewind.adapters.sql.deposit_addresses import DepositAddressRow
from tradewind.adapters.sql.engine import Database
from tradewind.adapters.sql.types import ID
from tradewind.services.funding.sweep_ports import (
    UNFINISHED,
    CustodyAlert,
    CustodyTransfer,
    DepositCoin,
    NewTransfer,
    SweepCandidate,
    TransferKind,
    TransferStatus,
)
from tradewind.services.funding.withdrawal_ports import spent_outpoints

_SETTABLE = frozenset({"tx", "raw_tx", "txid", "nonce", "block_number", "reason"})


class CustodyTransferRow(Base):
    __tablename__ = "custody_transfers"
    __table_args__ = (
        sa.Index(None, "network", "status"),
        sa.Index(None, "parent_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(8))
    network: Mapped[str] = mapped_column(sa.String(16))
    asset: Mapped[str] = mapped_column(sa.String(32))
    contract: Mapped[str | None] = mapped_column(sa.String(100))
    sender: Mapped[str] = mapped_column(sa.String(100))
    recipient: Mapped[str] = mapped_column(sa.String(100))
    amount: Mapped[str] = mapped_column(sa.String(80))
    gas: Mapped[int] = mapped_column(sa.BigInteger)
    max_fee: Mapped[str] = mapped_column(sa.String(80))
    priority_fee: Mapped[str] = mapped_column(sa.String(80))
    status: Mapped[str] = mapped_column(sa.String(16))
    parent_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    tx: Mapped[str | None] = mapped_column(sa.Text)
    raw_tx: Mapped[str | None] = mapped_column(sa.Text)
    txid: Mapped[str | None] = mapped_column(sa.String(80))
    nonce: Mapped[int | None] = mapped_column(sa.BigInteger)
    block_number: Mapped[int | None] = mapped_column(sa.BigInteger)
    reason: Mapped[str | None] = mapped_column(sa.String(400))
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(sa.BigInteger)


class CustodyAlertRow(Base):
    __tablename__ = "custody_alerts"
    __table_args__ = (sa.Index(None, "network", "asset", "kind"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    network: Mapped[str] = mapped_column(sa.String(16))
    asset: Mapped[str] = mapped_column(sa.String(32))
    kind: Mapped[str] = mapped_column(sa.String(32))
    message: Mapped[str] = mapped_column(sa.String(2000))
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    resolved_at_ms: Mapped[int | None] = mapped_column(sa.BigInteger)


def _transfer(row: CustodyTransferRow) -> CustodyTransfer:
    kind: TransferKind = row.kind  # type: ignore[assignment]
    status: TransferStatus = row.status  # type: ignore[assignment]
    return CustodyTransfer(
        id=row.id,
        kind=kind,
        network=row.network,
        asset=row.asset,
        contract=row.contract,
        sender=row.sender,
        recipient=row.recipient,
        amount=int(row.amount),
        gas=row.gas,
        max_fee=int(row.max_fee),
        priority_fee=int(row.priority_fee),
        status=status,
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
        parent_id=row.parent_id,
        tx=row.tx,
        raw_tx=row.raw_tx,
        txid=row.txid,
        nonce=row.nonce,
        block_number=row.block_number,
        reason=row.reason,
    )


def _alert(row: CustodyAlertRow) -> CustodyAlert:
    return CustodyAlert(
        row.id,
        row.network,
        row.asset,
        row.kind,
        row.message,
        row.created_at_ms,
        row.resolved_at_ms,
    )


class SqlSweepStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, new: NewTransfer, *, at_ms: int) -> CustodyTransfer:
        async with self._db.write() as session:
            row = CustodyTransferRow(
                kind=new.kind,
                network=new.network,
                asset=new.asset,
                contract=new.contract,
                sender=new.sender,
                recipient=new.recipient,
                amount=str(new.amount),
                gas=new.gas,
                max_fee=str(new.max_fee),
                priority_fee=str(new.priority_fee),
                status=new.status,
                parent_id=new.parent_id,
                tx=new.tx,
                created_at_ms=at_ms,
                updated_at_ms=at_ms,
            )
            session.add(row)
            await session.flush()
            return _transfer(row)

    async def get(self, transfer_id: int) -> CustodyTransfer | None:
        async with self._db.read() as session:
            row = await session.get(CustodyTransferRow, transfer_id)
            return None if row is None else _transfer(row)

    async def unfinished(self, network: str) -> Sequence[CustodyTransfer]:
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(CustodyTransferRow)
                .where(
                    CustodyTransferRow.network == network,
                    CustodyTransferRow.status.in_(UNFINISHED),
                )
                .order_by(CustodyTransferRow.id)
            )
            return [_transfer(r) for r in rows]

    async def children(self, parent_id: int) -> Sequence[CustodyTransfer]:
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(CustodyTransferRow)
                .where(CustodyTransferRow.parent_id == parent_id)
                .order_by(CustodyTransferRow.id)
            )
            return [_transfer(r) for r in rows]

    async def transition(
        self,
        transfer_id: int,
        from_statuses: Sequence[str],
        to_status: str,
        *,
        at_ms: int,
        fields: Mapping[str, object] | None = None,
    ) -> bool:
        values: dict[str, object] = {"status": to_status, "updated_at_ms": at_ms}
        for key, value in (fields or {}).items():
            if key not in _SETTABLE:
                raise ValueError(f"{key!r} is not a settable transfer field")
            values[key] = value[:400] if key == "reason" and isinstance(value, str) else value
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(CustodyTransferRow)
                .where(
                    CustodyTransferRow.id == transfer_id,
                    CustodyTransferRow.status.in_(list(from_statuses)),
                )
                .values(**values)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def highest_nonce(self, network: str, sender: str) -> int | None:
        from tradewind.adapters.sql.withdrawals import WithdrawalRow

        async with self._db.read() as session:
            mine: int | None = await session.scalar(
                sa.select(sa.func.max(CustodyTransferRow.nonce)).where(
                    CustodyTransferRow.network == network,
                    CustodyTransferRow.sender == sender,
                    CustodyTransferRow.nonce.is_not(None),
                    CustodyTransferRow.status != "failed",
                )
            )
            payouts: int | None = await session.scalar(
                sa.select(sa.func.max(WithdrawalRow.nonce)).where(
                    WithdrawalRow.network == network,
                    WithdrawalRow.sender == sender,
                    WithdrawalRow.nonce.is_not(None),
                    WithdrawalRow.status != "failed",
                )
            )
        found = [n for n in (mine, payouts) if n is not None]
        return max(found) if found else None

    async def failed_since(self, network: str, since_ms: int) -> set[tuple[str, str]]:
        async with self._db.read() as session:
            rows = await session.execute(
                sa.select(CustodyTransferRow.sender, CustodyTransferRow.asset).where(
                    CustodyTransferRow.network == network,
                    CustodyTransferRow.kind == "sweep",
                    CustodyTransferRow.status == "failed",
                    CustodyTransferRow.updated_at_ms >= since_ms,
                )
            )
            return {(str(a), str(b)) for a, b in rows}

    async def candidates(self, network: str, limit: int) -> Sequence[SweepCandidate]:
        waiting = (
            sa.select(ChainDepositRow.user_id, ChainDepositRow.asset)
            .where(
                ChainDepositRow.network == network,
                ChainDepositRow.status.in_(("pending", "orphaned")),
            )
            .subquery()
        )
        query = (
            sa.select(DepositAddressRow.address, DepositAddressRow.path, ChainDepositRow.asset)
            .join(
                DepositAddressRow,
                sa.and_(
                    DepositAddressRow.user_id == ChainDepositRow.user_id,
                    DepositAddressRow.network == ChainDepositRow.network,
                ),
            )
            .outerjoin(
                waiting,
                sa.and_(
                    waiting.c.user_id == ChainDepositRow.user_id,
                    waiting.c.asset == ChainDepositRow.asset,
                ),
            )
            .where(
                ChainDepositRow.network == network,
                ChainDepositRow.status == "credited",
                waiting.c.user_id.is_(None),
            )
            .distinct()
            .order_by(DepositAddressRow.address, ChainDepositRow.asset)
            .limit(limit)
        )
        async with self._db.read() as session:
            rows = await session.execute(query)
            return [SweepCandidate(str(a), str(p), str(s)) for a, p, s in rows]

    async def credited_coins(self, network: str) -> Sequence[DepositCoin]:
        query = (
            sa.select(
                ChainDepositRow.txid,
                ChainDepositRow.idx,
                DepositAddressRow.address,
                DepositAddressRow.path,
            )
            .join(
                DepositAddressRow,
                sa.and_(
                    DepositAddressRow.user_id == ChainDepositRow.user_id,
                    DepositAddressRow.network == ChainDepositRow.network,
                ),
            )
            .where(
                ChainDepositRow.network == network,
                ChainDepositRow.status == "credited",
                ChainDepositRow.idx >= 0,
            )
            .order_by(ChainDepositRow.txid, ChainDepositRow.idx)
        )
        async with self._db.read() as session:
            rows = await session.execute(query)
            return [DepositCoin(str(t), int(i), str(a), str(p)) for t, i, a, p in rows]

    async def _inputs(self, *where: sa.ColumnElement[bool]) -> set[str]:
        async with self._db.read() as session:
            rows = await session.scalars(sa.select(CustodyTransferRow.tx).where(*where))
            return {op for tx in rows for op in spent_outpoints(tx)}

    async def swept_outpoints(self, network: str, failed_since_ms: int) -> set[str]:
        return await self._inputs(
            CustodyTransferRow.network == network,
            CustodyTransferRow.kind == "sweep",
            CustodyTransferRow.tx.is_not(None),
            sa.or_(
                CustodyTransferRow.status != "failed",
                CustodyTransferRow.updated_at_ms >= failed_since_ms,
            ),
        )

    async def reserved_outpoints(self, network: str) -> set[str]:
        return await self._inputs(
            CustodyTransferRow.network == network,
            CustodyTransferRow.status.in_(UNFINISHED),
            CustodyTransferRow.tx.is_not(None),
        )

    async def own_txids(self, network: str, txids: Collection[str]) -> set[str]:
        wanted = sorted(set(txids))
        found: set[str] = set()
        async with self._db.read() as session:
            for start in range(0, len(wanted), 500):
                rows = await session.scalars(
                    sa.select(CustodyTransferRow.txid).where(
                        CustodyTransferRow.network == network,
                        CustodyTransferRow.txid.in_(wanted[start : start + 500]),
                    )
                )
                found.update(str(t) for t in rows if t is not None)
        return found

    async def open_alert(self, network: str, asset: str, kind: str) -> CustodyAlert | None:
        async with self._db.read() as session:
            row = await session.scalar(
                sa.select(CustodyAlertRow)
                .where(
                    CustodyAlertRow.network == network,
                    CustodyAlertRow.asset == asset,
                    CustodyAlertRow.kind == kind,
                    CustodyAlertRow.resolved_at_ms.is_(None),
                )
                .order_by(CustodyAlertRow.id.desc())
                .limit(1)
            )
            return None if row is None else _alert(row)

    async def raise_alert(
        self, network: str, asset: str, kind: str, message: str, at_ms: int
    ) -> CustodyAlert:
        async with self._db.write() as session:
            row = CustodyAlertRow(
                network=network,
                asset=asset,
                kind=kind,
                message=message[:2000],
                created_at_ms=at_ms,
                resolved_at_ms=None,
            )
            session.add(row)
            await session.flush()
            return _alert(row)

    async def resolve_alert(self, alert_id: int, at_ms: int) -> None:
        async with self._db.write() as session:
            await session.execute(
                sa.update(CustodyAlertRow)
                .where(CustodyAlertRow.id == alert_id, CustodyAlertRow.resolved_at_ms.is_(None))
                .values(resolved_at_ms=at_ms)
            )

    async def alerts(self, network: str) -> Sequence[CustodyAlert]:
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(CustodyAlertRow)
                .where(CustodyAlertRow.network == network)
                .order_by(CustodyAlertRow.id)
            )
            return [_alert(r) for r in rows]
