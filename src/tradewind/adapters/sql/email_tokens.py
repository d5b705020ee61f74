"""``email_tokens`` table: the single-use half of the emailed tokens.

The token itself (sealed claims) is never stored, only its random ``jti``; using a
token is one conditional ``UPDATE`` (unused, unexpired, right purpose and user), so a
token is accepted once even when two replicas receive it at the same moment.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database, rowcount


class EmailTokenRow(Base):
    __tablename__ = "email_tokens"

    jti: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(sa.String(16))
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    used_at_ms: Mapped[int | None] = mapped_column(sa.BigInteger)


class SqlTokenRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self, *, jti: str, user_id: int, purpose: str, created_at_ms: int, expires_at_ms: int
    ) -> None:
        async with self._db.write() as session:
            session.add(
                EmailTokenRow(
                    jti=jti,
                    user_id=user_id,
                    purpose=purpose,
                    created_at_ms=created_at_ms,
                    expires_at_ms=expires_at_ms,
                )
            )

    async def consume(self, jti: str, purpose: str, user_id: int, now_ms: int) -> bool:
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(EmailTokenRow)
                .where(
                    EmailTokenRow.jti == jti,
                    EmailTokenRow.purpose == purpose,
                    EmailTokenRow.user_id == user_id,
                    EmailTokenRow.used_at_ms.is_(None),
                    EmailTokenRow.expires_at_ms > now_ms,
                )
                .values(used_at_ms=now_ms)
            )
            return rowcount(result) > 0

    async def revoke_all(self, user_id: int, purpose: str, now_ms: int) -> None:
        async with self._db.write() as session:
            await session.execute(
                sa.update(EmailTokenRow)
                .where(
                    EmailTokenRow.user_id == user_id,
                    EmailTokenRow.purpose == purpose,
                    EmailTokenRow.used_at_ms.is_(None),
                )
                .values(used_at_ms=now_ms)
            )
