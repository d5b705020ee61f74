"""``users`` and ``recovery_codes`` tables; the SQL ``UserRepository`` and
``IdentityRepository``.

Invariants:
- one row per normalised email (unique index), and ids are never reused
  (``AUTOINCREMENT`` on SQLite, a sequence on PostgreSQL) because a user's id is also
  their account number in the core;
- the TOTP secret is stored only sealed (the service seals it); recovery codes only as
  hashes, one row each, so spending one is a single conditional ``UPDATE``;
- every "accept once" write (TOTP step, recovery code, pending secret) is conditional on
  the state the caller saw, so concurrent replicas cannot both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database, rowcount
from tradewind.adapters.sql.types import ID


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(16), server_default="active")
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    email_verified_at_ms: Mapped[int | None] = mapped_column(sa.BigInteger)
    anti_phishing_code: Mapped[str | None] = mapped_column(sa.String(20))
    totp_secret_sealed: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    totp_pending_sealed: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)


class RecoveryCodeRow(Base):
    __tablename__ = "recovery_codes"
    __table_args__ = (sa.UniqueConstraint("user_id", "code_hash"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE")
    )
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    used_at_ms: Mapped[int | None] = mapped_column(sa.BigInteger)


@dataclass(frozen=True, slots=True)
class User:
    """A ``UserRecord``."""

    id: int
    email: str
    password_hash: str
    status: str
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class Identity:
    """An ``IdentityRecord``."""

    user_id: int
    email: str
    email_verified_at_ms: int | None
    anti_phishing_code: str | None
    totp_secret_sealed: bytes | None
    totp_pending_sealed: bytes | None
    totp_last_step: int | None


def _user(row: UserRow) -> User:
    return User(row.id, row.email, row.password_hash, row.status, row.created_at_ms)


def _identity(row: UserRow) -> Identity:
    return Identity(
        row.id,
        row.email,
        row.email_verified_at_ms,
        row.anti_phishing_code,
        row.totp_secret_sealed,
        row.totp_pending_sealed,
        row.totp_last_step,
    )


class SqlUserRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, *, email: str, password_hash: str, created_at_ms: int) -> User | None:
        row = UserRow(
            email=email, password_hash=password_hash, status="active", created_at_ms=created_at_ms
        )
        try:
            async with self._db.write() as session:
                session.add(row)
                await session.flush()
        except IntegrityError:
            return None
        return _user(row)

    async def get(self, user_id: int) -> User | None:
        async with self._db.read() as session:
            row = await session.get(UserRow, user_id)
            return None if row is None else _user(row)

    async def get_by_email(self, email: str) -> User | None:
        async with self._db.read() as session:
            row = await session.scalar(sa.select(UserRow).where(UserRow.email == email))
            return None if row is None else _user(row)

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self._update(user_id, password_hash=password_hash)

    # -- IdentityRepository ------------------------------------------------------------

    async def _update(self, user_id: int, *where: sa.ColumnElement[bool], **values: object) -> int:
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(UserRow).where(UserRow.id == user_id, *where).values(**values)
            )
            return rowcount(result)

    async def get_identity(self, user_id: int) -> Identity | None:
        async with self._db.read() as session:
            row = await session.get(UserRow, user_id)
            return None if row is None else _identity(row)

    async def mark_email_verified(self, user_id: int, email: str, at_ms: int) -> bool:
        changed = await self._update(
            user_id,
            UserRow.email == email,
            email_verified_at_ms=sa.func.coalesce(UserRow.email_verified_at_ms, at_ms),
        )
        return changed > 0

    async def change_email(self, user_id: int, email: str, at_ms: int) -> bool:
        try:
            changed = await self._update(user_id, email=email, email_verified_at_ms=at_ms)
        except IntegrityError:
            return False
        return changed > 0

    async def set_anti_phishing_code(self, user_id: int, code: str | None) -> None:
        await self._update(user_id, anti_phishing_code=code)

    async def set_totp_pending(self, user_id: int, sealed: bytes | None) -> None:
        await self._update(user_id, totp_pending_sealed=sealed)

    async def enable_totp(
        self, user_id: int, sealed: bytes, step: int, recovery_hashes: Sequence[str]
    ) -> bool:
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(UserRow)
                .where(
                    UserRow.id == user_id,
                    UserRow.totp_pending_sealed == sealed,
                    UserRow.totp_secret_sealed.is_(None),
                )
                .values(totp_secret_sealed=sealed, totp_pending_sealed=None, totp_last_step=step)
            )
            if rowcount(result) == 0:
                return False
            await session.execute(
                sa.delete(RecoveryCodeRow).where(RecoveryCodeRow.user_id == user_id)
            )
            session.add_all(
                RecoveryCodeRow(user_id=user_id, code_hash=code_hash)
                for code_hash in recovery_hashes
            )
            return True

    async def disable_totp(self, user_id: int) -> None:
        async with self._db.write() as session:
            await session.execute(
                sa.update(UserRow)
                .where(UserRow.id == user_id)
                .values(totp_secret_sealed=None, totp_pending_sealed=None, totp_last_step=None)
            )
            await session.execute(
                sa.delete(RecoveryCodeRow).where(RecoveryCodeRow.user_id == user_id)
            )

    async def advance_totp_step(self, user_id: int, step: int) -> bool:
        changed = await self._update(
            user_id,
            UserRow.totp_secret_sealed.is_not(None),
            sa.or_(UserRow.totp_last_step.is_(None), UserRow.totp_last_step < step),
            totp_last_step=step,
        )
        return changed > 0

    async def use_recovery_code(self, user_id: int, code_hash: str, at_ms: int) -> bool:
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(RecoveryCodeRow)
                .where(
                    RecoveryCodeRow.user_id == user_id,
                    RecoveryCodeRow.code_hash == code_hash,
                    RecoveryCodeRow.used_at_ms.is_(None),
                )
                .values(used_at_ms=at_ms)
            )
            return rowcount(result) > 0

    async def count_recovery_codes(self, user_id: int) -> int:
        async with self._db.read() as session:
            count = await session.scalar(
                sa.select(sa.func.count())
                .select_from(RecoveryCodeRow)
                .where(RecoveryCodeRow.user_id == user_id, RecoveryCodeRow.used_at_ms.is_(None))
            )
            return int(count or 0)
