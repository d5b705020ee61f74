"""The ``network_fees`` table (migration 0018) and the SQL ``NetworkFeeStore``
(services/funding/network_fees.py, ADR 0034).

Invariants:
- one row per source transaction, keyed by (source, source_id): a fee is recorded once
  however often the booking step reads it;
- a row becomes ``booked`` (with the core's seq) only after the core applied the
  booking or answered that its ref was applied already.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import sqlalchemy as sa
import sqlalchemy.exc
import sqlalchemy.orm
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database
from tradewind.adapters.sql.sweeps import CustodyTransferRow
from tradewind.adapters.sql.withdrawals import WithdrawalRow
from tradewind.services.funding.network_fees import FeeSource, FeeStatus, NetworkFee, Source


class NetworkFeeRow(Base):
    __tablename__ = "network_fees"
    __table_args__ = (sa.Index(None, "status"),)

    source: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    source_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    network: Mapped[str] = mapped_column(sa.String(16))
    asset: Mapped[str] = mapped_column(sa.String(32))
    txid: Mapped[str] = mapped_column(sa.String(80))
    fee_chain: Mapped[str] = mapped_column(sa.String(80))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(16))
    seq: Mapped[int | None] = mapped_column(sa.BigInteger)
    reason: Mapped[str | None] = mapped_column(sa.String(400))
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(sa.BigInteger)


def _fee(row: NetworkFeeRow) -> NetworkFee:
    source: Source = row.source  # type: ignore[assignment]
    status: FeeStatus = row.status  # type: ignore[assignment]
    return NetworkFee(
        source=source,
        source_id=row.source_id,
        network=row.network,
        asset=row.asset,
        txid=row.txid,
        fee_chain=int(row.fee_chain),
        amount=row.amount,
        status=status,
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
        seq=row.seq,
        reason=row.reason,
    )


FINISHED = ("confirmed", "failed")
"""Source statuses whose transaction will not change any more (a failed one may still
have been mined: a reverted EVM transaction pays its gas)."""


class SqlNetworkFeeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def unrecorded(self, networks: Collection[str], limit: int) -> Sequence[FeeSource]:
        if not networks:
            return []
        out: list[FeeSource] = []
        async with self._db.read() as session:
            for source, table in (("withdrawal", WithdrawalRow), ("custody", CustodyTransferRow)):
                fee = sa.orm.aliased(NetworkFeeRow)
                rows = await session.execute(
                    sa.select(table.id, table.network, table.txid, table.status)
                    .outerjoin(fee, sa.and_(fee.source == source, fee.source_id == table.id))
                    .where(
                        table.network.in_(list(networks)),
                        table.status.in_(FINISHED),
                        table.txid.is_not(None),
                        fee.source_id.is_(None),
                    )
                    .order_by(table.id)
                    .limit(limit)
                )
                out.extend(
                    FeeSource(source, r.id, r.network, r.txid, r.status)  # type: ignore[arg-type]
                    for r in rows
                )
        return out

    async def record(self, fee: NetworkFee) -> bool:
        try:
            async with self._db.write() as session:
                if await session.get(NetworkFeeRow, (fee.source, fee.source_id)) is not None:
                    return False
                session.add(
                    NetworkFeeRow(
                        source=fee.source,
                        source_id=fee.source_id,
                        network=fee.network,
                        asset=fee.asset,
                        txid=fee.txid,
                        fee_chain=str(fee.fee_chain),
                        amount=fee.amount,
                        status=fee.status,
                        seq=fee.seq,
                        reason=fee.reason,
                        created_at_ms=fee.created_at_ms,
                        updated_at_ms=fee.updated_at_ms,
                    )
                )
            return True
        except sa.exc.IntegrityError:  # recorded by another process meanwhile
            return False

    async def pending(self, limit: int) -> Sequence[NetworkFee]:
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(NetworkFeeRow)
                .where(NetworkFeeRow.status == "pending")
                .order_by(NetworkFeeRow.created_at_ms, NetworkFeeRow.source_id)
                .limit(limit)
            )
            return [_fee(r) for r in rows]

    async def booked(self, source: str, source_id: int, seq: int | None, at_ms: int) -> bool:
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(NetworkFeeRow)
                .where(
                    NetworkFeeRow.source == source,
                    NetworkFeeRow.source_id == source_id,
                    NetworkFeeRow.status == "pending",
                )
                .values(status="booked", seq=seq, reason=None, updated_at_ms=at_ms)
            )
            return bool(getattr(result, "rowcount", 0))

    async def note(self, source: str, source_id: int, reason: str, at_ms: int) -> None:
        async with self._db.write() as session:
            await session.execute(
                sa.update(NetworkFeeRow)
                .where(
                    NetworkFeeRow.source == source,
                    NetworkFeeRow.source_id == source_id,
                    NetworkFeeRow.status == "pending",
                )
                .values(reason=reason[:400], updated_at_ms=at_ms)
            )

    async def get(self, source: str, source_id: int) -> NetworkFee | None:
        async with self._db.read() as session:
            row = await session.get(NetworkFeeRow, (source, source_id))
            return None if row is None else _fee(row)

    async def all(self) -> Sequence[NetworkFee]:
        """Every row (tests and the operator's view), by source."""
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(NetworkFeeRow).order_by(NetworkFeeRow.source, NetworkFeeRow.source_id)
            )
            return [_fee(r) for r in rows]
