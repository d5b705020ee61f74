"""The withdrawal tables (``withdrawals``, ``withdrawal_events``,
``withdrawal_approvals``, ``withdrawal_addresses``; migration 0008) and the SQL
``WithdrawalStore`` (services/funding/withdrawal_ports.py).

Invariants:
- a status change is one ``UPDATE ... WHERE id = ? AND status IN (...)`` plus its
  timeline row, in one transaction: of two racing writers (two approvers, a cancel and
  an approval, two processors, the signer and a replayed request) exactly one changes
  the row, the other sees ``False`` and changes nothing;
- ``(user_id, idempotency_key)`` is unique: two requests with one key make one row;
- an approver approves a withdrawal once (primary key ``(withdrawal_id, approver_id)``),
  so "two approvers" means two different people;
- ids are never reused (``AUTOINCREMENT`` on SQLite, a sequence on PostgreSQL): the id
  is also the core's withdrawal id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database
from tradewind.adapters.sql.types import ID
from tradewind.services.funding.withdrawal_ports import (
    NOT_COUNTED,
    IdempotencyConflict,
    WhitelistedAddress,
    Withdrawal,
    WithdrawalEvent,
    WithdrawalStatus,
)

_SETTABLE = frozenset(
    {"final_status", "reason", "tx", "raw_tx", "txid", "block_number", "sender", "nonce"}
)


class WithdrawalRow(Base):
    __tablename__ = "withdrawals"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "idempotency_key"),
        sa.Index(None, "status"),
        sa.Index(None, "user_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    asset: Mapped[str] = mapped_column(sa.String(32))
    network: Mapped[str] = mapped_column(sa.String(16))
    address: Mapped[str] = mapped_column(sa.String(100))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    fee: Mapped[int] = mapped_column(sa.BigInteger)
    memo: Mapped[str | None] = mapped_column(sa.String(128))
    status: Mapped[str] = mapped_column(sa.String(20))
    required_approvals: Mapped[int] = mapped_column(sa.Integer)
    final_status: Mapped[str | None] = mapped_column(sa.String(20))
    reason: Mapped[str | None] = mapped_column(sa.String(400))
    tx: Mapped[str | None] = mapped_column(sa.Text)
    raw_tx: Mapped[str | None] = mapped_column(sa.Text)
    txid: Mapped[str | None] = mapped_column(sa.String(80))
    block_number: Mapped[int | None] = mapped_column(sa.BigInteger)
    sender: Mapped[str | None] = mapped_column(sa.String(100))
    nonce: Mapped[int | None] = mapped_column(sa.BigInteger)
    idempotency_key: Mapped[str] = mapped_column(sa.String(64))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(sa.BigInteger)


class WithdrawalEventRow(Base):
    __tablename__ = "withdrawal_events"
    __table_args__ = (sa.Index(None, "withdrawal_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    withdrawal_id: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(20))
    at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    actor_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    note: Mapped[str | None] = mapped_column(sa.String(400))


class WithdrawalApprovalRow(Base):
    __tablename__ = "withdrawal_approvals"

    withdrawal_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    approver_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    at_ms: Mapped[int] = mapped_column(sa.BigInteger)


class WithdrawalAddressRow(Base):
    __tablename__ = "withdrawal_addresses"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "network", "address"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    network: Mapped[str] = mapped_column(sa.String(16))
    address: Mapped[str] = mapped_column(sa.String(100))
    label: Mapped[str] = mapped_column(sa.String(64))
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    usable_from_ms: Mapped[int] = mapped_column(sa.BigInteger)


def _withdrawal(row: WithdrawalRow) -> Withdrawal:
    status: WithdrawalStatus = row.status  # type: ignore[assignment]
    return Withdrawal(
        id=row.id,
        user_id=row.user_id,
        asset=row.asset,
        network=row.network,
        address=row.address,
        amount=row.amount,
        fee=row.fee,
        memo=row.memo,
        status=status,
        required_approvals=row.required_approvals,
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
        idempotency_key=row.idempotency_key,
        request_hash=row.request_hash,
        final_status=row.final_status,
        reason=row.reason,
        tx=row.tx,
        raw_tx=row.raw_tx,
        txid=row.txid,
        block_number=row.block_number,
    )


def _address(row: WithdrawalAddressRow) -> WhitelistedAddress:
    return WhitelistedAddress(
        row.id,
        row.user_id,
        row.network,
        row.address,
        row.label,
        row.created_at_ms,
        row.usable_from_ms,
    )


class SqlWithdrawalStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        user_id: int,
        asset: str,
        network: str,
        address: str,
        amount: int,
        fee: int,
        memo: str | None,
        required_approvals: int,
        idempotency_key: str,
        request_hash: str,
        at_ms: int,
    ) -> Withdrawal:
        row = WithdrawalRow(
            user_id=user_id,
            asset=asset,
            network=network,
            address=address,
            amount=amount,
            fee=fee,
            memo=memo,
            status="holding",
            required_approvals=required_approvals,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            created_at_ms=at_ms,
            updated_at_ms=at_ms,
        )
        try:
            async with self._db.write() as session:
                session.add(row)
                await session.flush()
                session.add(
                    WithdrawalEventRow(
                        withdrawal_id=row.id,
                        status="holding",
                        at_ms=at_ms,
                        actor_id=user_id,
                        note="requested",
                    )
                )
                return _withdrawal(row)
        except IntegrityError:
            raise IdempotencyConflict(idempotency_key) from None

    async def get(self, withdrawal_id: int) -> Withdrawal | None:
        async with self._db.read() as session:
            row = await session.get(WithdrawalRow, withdrawal_id)
            return None if row is None else _withdrawal(row)

    async def by_key(self, user_id: int, idempotency_key: str) -> Withdrawal | None:
        async with self._db.read() as session:
            row = await session.scalar(
                sa.select(WithdrawalRow).where(
                    WithdrawalRow.user_id == user_id,
                    WithdrawalRow.idempotency_key == idempotency_key,
                )
            )
            return None if row is None else _withdrawal(row)

    async def list_for_user(
        self, user_id: int, *, limit: int, before_id: int | None
    ) -> Sequence[Withdrawal]:
        query = sa.select(WithdrawalRow).where(WithdrawalRow.user_id == user_id)
        if before_id is not None:
            query = query.where(WithdrawalRow.id < before_id)
        async with self._db.read() as session:
            rows = await session.scalars(query.order_by(WithdrawalRow.id.desc()).limit(limit))
            return [_withdrawal(r) for r in rows]

    async def list_by_status(
        self, statuses: Sequence[str], *, limit: int, network: str | None = None
    ) -> Sequence[Withdrawal]:
        query = sa.select(WithdrawalRow).where(WithdrawalRow.status.in_(list(statuses)))
        if network is not None:
            query = query.where(WithdrawalRow.network == network)
        async with self._db.read() as session:
            rows = await session.scalars(query.order_by(WithdrawalRow.id).limit(limit))
            return [_withdrawal(r) for r in rows]

    async def amount_since(self, user_id: int, asset: str, since_ms: int) -> int:
        async with self._db.read() as session:
            amounts = await session.scalars(
                sa.select(WithdrawalRow.amount).where(
                    WithdrawalRow.user_id == user_id,
                    WithdrawalRow.asset == asset,
                    WithdrawalRow.created_at_ms >= since_ms,
                    WithdrawalRow.status.not_in(sorted(NOT_COUNTED)),
                )
            )
            return sum(amounts)

    async def transition(
        self,
        withdrawal_id: int,
        from_statuses: Sequence[str],
        to_status: str,
        *,
        at_ms: int,
        actor_id: int | None = None,
        note: str | None = None,
        fields: Mapping[str, object] | None = None,
    ) -> bool:
        values: dict[str, object] = {"status": to_status, "updated_at_ms": at_ms}
        for key, value in (fields or {}).items():
            if key not in _SETTABLE:
                raise ValueError(f"{key!r} is not a settable withdrawal field")
            values[key] = value
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(WithdrawalRow)
                .where(
                    WithdrawalRow.id == withdrawal_id,
                    WithdrawalRow.status.in_(list(from_statuses)),
                )
                .values(**values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return False
            session.add(
                WithdrawalEventRow(
                    withdrawal_id=withdrawal_id,
                    status=to_status,
                    at_ms=at_ms,
                    actor_id=actor_id,
                    note=None if note is None else note[:400],
                )
            )
            return True

    async def timeline(self, withdrawal_id: int) -> Sequence[WithdrawalEvent]:
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(WithdrawalEventRow)
                .where(WithdrawalEventRow.withdrawal_id == withdrawal_id)
                .order_by(WithdrawalEventRow.id)
            )
            return [
                WithdrawalEvent(r.withdrawal_id, r.status, r.at_ms, r.actor_id, r.note)
                for r in rows
            ]

    async def add_approval(self, withdrawal_id: int, approver_id: int, at_ms: int) -> int | None:
        try:
            async with self._db.write() as session:
                session.add(
                    WithdrawalApprovalRow(
                        withdrawal_id=withdrawal_id, approver_id=approver_id, at_ms=at_ms
                    )
                )
        except IntegrityError:
            return None
        return len(await self.approvers(withdrawal_id))

    async def approvers(self, withdrawal_id: int) -> Sequence[int]:
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(WithdrawalApprovalRow.approver_id)
                .where(WithdrawalApprovalRow.withdrawal_id == withdrawal_id)
                .order_by(WithdrawalApprovalRow.at_ms)
            )
            return list(rows)

    async def highest_nonce(self, network: str, sender: str) -> int | None:
        # custody transfers (sweeps' gas top-ups, moves to cold; adapters/sql/sweeps.py)
        # are sent from the same hot wallet: their nonces count too (ADR 0028)
        from tradewind.adapters.sql.sweeps import SqlSweepStore

        return await SqlSweepStore(self._db).highest_nonce(network, sender)

    # -- the address book ------------------------------------------------------------

    async def add_address(
        self,
        *,
        user_id: int,
        network: str,
        address: str,
        label: str,
        at_ms: int,
        usable_from_ms: int,
    ) -> WhitelistedAddress | None:
        row = WithdrawalAddressRow(
            user_id=user_id,
            network=network,
            address=address,
            label=label,
            created_at_ms=at_ms,
            usable_from_ms=usable_from_ms,
        )
        try:
            async with self._db.write() as session:
                session.add(row)
                await session.flush()
                return _address(row)
        except IntegrityError:
            return None

    async def addresses(self, user_id: int) -> Sequence[WhitelistedAddress]:
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(WithdrawalAddressRow)
                .where(WithdrawalAddressRow.user_id == user_id)
                .order_by(WithdrawalAddressRow.id)
            )
            return [_address(r) for r in rows]

    async def find_address(
        self, user_id: int, network: str, address: str
    ) -> WhitelistedAddress | None:
        async with self._db.read() as session:
            row = await session.scalar(
                sa.select(WithdrawalAddressRow).where(
                    WithdrawalAddressRow.user_id == user_id,
                    WithdrawalAddressRow.network == network,
                    WithdrawalAddressRow.address == address,
                )
            )
            return None if row is None else _address(row)

    async def remove_address(self, user_id: int, address_id: int) -> bool:
        async with self._db.write() as session:
            result = await session.execute(
                sa.delete(WithdrawalAddressRow).where(
                    WithdrawalAddressRow.id == address_id,
                    WithdrawalAddressRow.user_id == user_id,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]
