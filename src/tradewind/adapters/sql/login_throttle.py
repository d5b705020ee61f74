"""``login_throttle`` table: failed-login counters per account key and per address.

In SQL rather than Redis so that embedded mode needs nothing more and every API replica
of a distributed deployment shares the counts (PostgreSQL). Counting is a conditional
``UPDATE`` (``failures + 1``, or 1 when the last failure is old), falling back to an
``INSERT`` for a new key and to the ``UPDATE`` again if another replica inserted first,
so concurrent failures are never lost.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database


class LoginThrottleRow(Base):
    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(sa.Integer)
    last_failure_ms: Mapped[int] = mapped_column(sa.BigInteger)
    locked_until_ms: Mapped[int] = mapped_column(sa.BigInteger)


@dataclass(frozen=True, slots=True)
class Throttle:
    """A ``ThrottleState``."""

    failures: int
    locked_until_ms: int


class SqlLoginThrottleRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: str) -> Throttle | None:
        async with self._db.read() as session:
            row = await session.get(LoginThrottleRow, key)
            return None if row is None else Throttle(row.failures, row.locked_until_ms)

    async def _bump(self, key: str, now_ms: int, forget_before_ms: int) -> int | None:
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(LoginThrottleRow)
                .where(LoginThrottleRow.key == key)
                .values(
                    failures=sa.case(
                        (LoginThrottleRow.last_failure_ms < forget_before_ms, 1),
                        else_=LoginThrottleRow.failures + 1,
                    ),
                    last_failure_ms=now_ms,
                )
                .returning(LoginThrottleRow.failures)
            )
            count = result.scalar_one_or_none()
            return None if count is None else int(count)

    async def add_failure(self, key: str, now_ms: int, forget_before_ms: int) -> int:
        for _ in range(3):
            count = await self._bump(key, now_ms, forget_before_ms)
            if count is not None:
                return count
            try:
                async with self._db.write() as session:
                    session.add(
                        LoginThrottleRow(
                            key=key, failures=1, last_failure_ms=now_ms, locked_until_ms=0
                        )
                    )
                return 1
            except IntegrityError:
                continue  # another replica inserted it: count on top of theirs
        raise RuntimeError(f"could not count a login failure for {key!r}")

    async def lock(self, key: str, until_ms: int) -> None:
        async with self._db.write() as session:
            await session.execute(
                sa.update(LoginThrottleRow)
                .where(LoginThrottleRow.key == key, LoginThrottleRow.locked_until_ms < until_ms)
                .values(locked_until_ms=until_ms)
            )

    async def clear(self, key: str) -> None:
        async with self._db.write() as session:
            await session.execute(sa.delete(LoginThrottleRow).where(LoginThrottleRow.key == key))
