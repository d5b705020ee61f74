"""``users`` table and the SQL ``UserRepository``.

Invariant: one row per normalised email (unique index), and ids are never reused
(``AUTOINCREMENT`` on SQLite, a sequence on PostgreSQL) because a user's id is also
their account number in the core.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database
from tradewind.adapters.sql.types import ID


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(16), server_default="active")
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)


@dataclass(frozen=True, slots=True)
class User:
    """A ``UserRecord``."""

    id: int
    email: str
    password_hash: str
    status: str
    created_at_ms: int


def _user(row: UserRow) -> User:
    return User(row.id, row.email, row.password_hash, row.status, row.created_at_ms)


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
        async with self._db.write() as session:
            await session.execute(
                sa.update(UserRow).where(UserRow.id == user_id).values(password_hash=password_hash)
            )
