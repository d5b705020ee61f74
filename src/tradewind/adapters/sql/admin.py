"""Back-office tables (``user_roles``, ``account_freezes``, ``approvals``) and the SQL
``AdminStore`` (services/admin.py).

Invariants:
- a user without a ``user_roles`` row is an ordinary ``user``: granting ``user`` deletes
  the row, so the table lists exactly the staff;
- an approval leaves ``pending`` once, by a conditional ``UPDATE ... WHERE status =
  'pending'`` (two approvers racing: one wins, the other is told it is not pending);
- the ``users`` table is only read here (its owner is the accounts adapter);
- a freeze or unfreeze that changes the flag sends ``NOTIFY tradewind_auth
  'user:<id>'`` in its transaction on PostgreSQL, so every API replica's frozen cache
  drops the account when it commits (adapters/sql/auth_notify.py, ADR 0045).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.auth_notify import notify_auth, user_payload
from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database, rowcount
from tradewind.adapters.sql.types import ID, user_key
from tradewind.adapters.sql.users import UserRow
from tradewind.services.admin import Approval, UserSummary


class UserRoleRow(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = user_key()
    role: Mapped[str] = mapped_column(sa.String(16))
    granted_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    granted_by: Mapped[int | None] = mapped_column(sa.BigInteger)


class AccountFreezeRow(Base):
    __tablename__ = "account_freezes"

    user_id: Mapped[int] = user_key()
    reason: Mapped[str] = mapped_column(sa.String(256))
    frozen_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    frozen_by: Mapped[int | None] = mapped_column(sa.BigInteger)


class ApprovalRow(Base):
    __tablename__ = "approvals"
    __table_args__ = (sa.Index(None, "status", "id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    subject_id: Mapped[int] = mapped_column(sa.BigInteger)
    payload: Mapped[str] = mapped_column(sa.Text)
    requested_by: Mapped[int] = mapped_column(sa.BigInteger)
    requested_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(16))
    decided_by: Mapped[int | None] = mapped_column(sa.BigInteger)
    decided_at_ms: Mapped[int | None] = mapped_column(sa.BigInteger)
    result: Mapped[str | None] = mapped_column(sa.Text)


def _approval(row: ApprovalRow) -> Approval:
    return Approval(
        id=row.id,
        kind=row.kind,
        subject_id=row.subject_id,
        payload=row.payload,
        requested_by=row.requested_by,
        requested_at_ms=row.requested_at_ms,
        status=row.status,
        decided_by=row.decided_by,
        decided_at_ms=row.decided_at_ms,
        result=row.result,
    )


def _summaries_query() -> Any:
    return (
        sa.select(UserRow, UserRoleRow.role, AccountFreezeRow.reason, AccountFreezeRow.user_id)
        .outerjoin(UserRoleRow, UserRoleRow.user_id == UserRow.id)
        .outerjoin(AccountFreezeRow, AccountFreezeRow.user_id == UserRow.id)
    )


def _summary(row: UserRow, role: str | None, reason: str | None, frozen: int | None) -> UserSummary:
    return UserSummary(
        id=row.id,
        email=row.email,
        status=row.status,
        created_at_ms=row.created_at_ms,
        role=role or "user",
        frozen=frozen is not None,
        frozen_reason=reason,
    )


class SqlAdminStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- roles -------------------------------------------------------------------------

    async def role_of(self, user_id: int) -> str:
        async with self._db.read() as session:
            role = await session.scalar(
                sa.select(UserRoleRow.role).where(UserRoleRow.user_id == user_id)
            )
            return role or "user"

    async def set_role(self, user_id: int, role: str, *, by: int | None, at_ms: int) -> None:
        async with self._db.write() as session:
            await session.execute(sa.delete(UserRoleRow).where(UserRoleRow.user_id == user_id))
            if role != "user":
                session.add(
                    UserRoleRow(user_id=user_id, role=role, granted_at_ms=at_ms, granted_by=by)
                )

    async def count_role(self, role: str) -> int:
        async with self._db.read() as session:
            count = await session.scalar(
                sa.select(sa.func.count()).select_from(UserRoleRow).where(UserRoleRow.role == role)
            )
            return int(count or 0)

    # -- users (read only) -----------------------------------------------------------------

    async def get_user(self, user_id: int) -> UserSummary | None:
        async with self._db.read() as session:
            found = (await session.execute(_summaries_query().where(UserRow.id == user_id))).first()
            return None if found is None else _summary(*found)

    async def list_users(
        self, *, limit: int, after_id: int = 0, email_contains: str | None = None
    ) -> Sequence[UserSummary]:
        query = _summaries_query().where(UserRow.id > after_id).order_by(UserRow.id).limit(limit)
        if email_contains:
            escaped = (
                email_contains.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            )
            query = query.where(UserRow.email.like(f"%{escaped}%", escape="\\"))
        async with self._db.read() as session:
            rows = (await session.execute(query)).all()
            return [_summary(*r) for r in rows]

    # -- freezes ---------------------------------------------------------------------------

    async def freeze(self, user_id: int, *, reason: str, by: int | None, at_ms: int) -> bool:
        try:
            async with self._db.write() as session:
                if await session.get(AccountFreezeRow, user_id) is not None:
                    return False
                session.add(
                    AccountFreezeRow(
                        user_id=user_id, reason=reason, frozen_at_ms=at_ms, frozen_by=by
                    )
                )
                await session.flush()
                await notify_auth(session, user_payload(user_id))
        except IntegrityError:
            return False  # a concurrent freeze won
        return True

    async def unfreeze(self, user_id: int) -> bool:
        async with self._db.write() as session:
            result = await session.execute(
                sa.delete(AccountFreezeRow).where(AccountFreezeRow.user_id == user_id)
            )
            removed = rowcount(result) > 0
            if removed:
                await notify_auth(session, user_payload(user_id))
            return removed

    async def is_frozen(self, user_id: int) -> bool:
        async with self._db.read() as session:
            found = await session.scalar(
                sa.select(AccountFreezeRow.user_id).where(AccountFreezeRow.user_id == user_id)
            )
            return found is not None

    async def frozen_users(self, *, after_id: int, limit: int) -> Sequence[int]:
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(AccountFreezeRow.user_id)
                .where(AccountFreezeRow.user_id > after_id)
                .order_by(AccountFreezeRow.user_id)
                .limit(limit)
            )
            return list(rows)

    # -- approvals -------------------------------------------------------------------------

    async def add_approval(
        self, *, kind: str, subject_id: int, payload: str, requested_by: int, at_ms: int
    ) -> Approval:
        row = ApprovalRow(
            kind=kind,
            subject_id=subject_id,
            payload=payload,
            requested_by=requested_by,
            requested_at_ms=at_ms,
            status="pending",
        )
        async with self._db.write() as session:
            session.add(row)
            await session.flush()
        return _approval(row)

    async def get_approval(self, approval_id: int) -> Approval | None:
        async with self._db.read() as session:
            row = await session.get(ApprovalRow, approval_id)
            return None if row is None else _approval(row)

    async def decide_approval(self, approval_id: int, *, status: str, by: int, at_ms: int) -> bool:
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(ApprovalRow)
                .where(ApprovalRow.id == approval_id, ApprovalRow.status == "pending")
                .values(status=status, decided_by=by, decided_at_ms=at_ms)
            )
            return rowcount(result) > 0

    async def finish_approval(self, approval_id: int, *, status: str, result: str) -> None:
        async with self._db.write() as session:
            await session.execute(
                sa.update(ApprovalRow)
                .where(ApprovalRow.id == approval_id)
                .values(status=status, result=result)
            )

    async def list_approvals(self, *, status: str | None, limit: int) -> Sequence[Approval]:
        query = sa.select(ApprovalRow).order_by(ApprovalRow.id.desc()).limit(limit)
        if status is not None:
            query = query.where(ApprovalRow.status == status)
        async with self._db.read() as session:
            return [_approval(row) for row in await session.scalars(query)]
