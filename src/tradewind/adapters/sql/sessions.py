"""``sessions`` table and the SQL ``SessionRepository``.

Invariants: only the SHA-256 of a bearer token is stored (unique), so a leaked table
cannot be replayed as logins; a session row is deleted with its user; a user can only
ever revoke their own sessions (every write by id also matches the user id).

Rows double as the user's device list (IP, user agent, last seen) and as the memory of
known devices for new-sign-in notices, until housekeeping deletes old ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database, rowcount
from tradewind.adapters.sql.types import ID


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    revoked_at_ms: Mapped[int | None] = mapped_column(sa.BigInteger)
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    user_agent: Mapped[str | None] = mapped_column(sa.String(512))
    last_seen_at_ms: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A ``SessionRecord``."""

    id: int
    user_id: int
    token_hash: str
    created_at_ms: int
    expires_at_ms: int
    revoked_at_ms: int | None
    ip: str | None
    user_agent: str | None
    last_seen_at_ms: int


def _session(row: SessionRow) -> StoredSession:
    return StoredSession(
        row.id,
        row.user_id,
        row.token_hash,
        row.created_at_ms,
        row.expires_at_ms,
        row.revoked_at_ms,
        row.ip,
        row.user_agent,
        row.last_seen_at_ms,
    )


class SqlSessionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        *,
        user_id: int,
        token_hash: str,
        created_at_ms: int,
        expires_at_ms: int,
        ip: str | None,
        user_agent: str | None,
    ) -> StoredSession:
        row = SessionRow(
            user_id=user_id,
            token_hash=token_hash,
            created_at_ms=created_at_ms,
            expires_at_ms=expires_at_ms,
            ip=ip,
            user_agent=user_agent,
            last_seen_at_ms=created_at_ms,
        )
        async with self._db.write() as session:
            session.add(row)
            await session.flush()
        return _session(row)

    async def get_by_token_hash(self, token_hash: str) -> StoredSession | None:
        async with self._db.read() as session:
            row = await session.scalar(
                sa.select(SessionRow).where(SessionRow.token_hash == token_hash)
            )
            return None if row is None else _session(row)

    async def revoke(self, token_hash: str, revoked_at_ms: int) -> bool:
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(SessionRow)
                .where(SessionRow.token_hash == token_hash, SessionRow.revoked_at_ms.is_(None))
                .values(revoked_at_ms=revoked_at_ms)
            )
            return rowcount(result) > 0

    async def revoke_all(self, user_id: int, revoked_at_ms: int) -> int:
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(SessionRow)
                .where(
                    SessionRow.user_id == user_id,
                    SessionRow.revoked_at_ms.is_(None),
                    SessionRow.expires_at_ms > revoked_at_ms,
                )
                .values(revoked_at_ms=revoked_at_ms)
            )
            return rowcount(result)

    async def list_active(self, user_id: int, now_ms: int) -> Sequence[StoredSession]:
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(SessionRow)
                .where(
                    SessionRow.user_id == user_id,
                    SessionRow.revoked_at_ms.is_(None),
                    SessionRow.expires_at_ms > now_ms,
                )
                .order_by(SessionRow.id.desc())
            )
            return [_session(row) for row in rows]

    async def delete_expired(self, before_ms: int) -> int:
        async with self._db.write() as session:
            result = await session.execute(
                sa.delete(SessionRow).where(
                    sa.or_(
                        SessionRow.expires_at_ms < before_ms,
                        SessionRow.revoked_at_ms < before_ms,
                    )
                )
            )
            return rowcount(result)

    async def get_by_id(self, session_id: int) -> StoredSession | None:
        async with self._db.read() as session:
            row = await session.get(SessionRow, session_id)
            return None if row is None else _session(row)

    async def touch(self, session_id: int, now_ms: int) -> None:
        async with self._db.write() as session:
            await session.execute(
                sa.update(SessionRow)
                .where(SessionRow.id == session_id, SessionRow.last_seen_at_ms < now_ms)
                .values(last_seen_at_ms=now_ms)
            )

    def _live(self, user_id: int, now_ms: int) -> list[sa.ColumnElement[bool]]:
        return [
            SessionRow.user_id == user_id,
            SessionRow.revoked_at_ms.is_(None),
            SessionRow.expires_at_ms > now_ms,
        ]

    async def revoke_by_id(self, user_id: int, session_id: int, revoked_at_ms: int) -> bool:
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(SessionRow)
                .where(SessionRow.id == session_id, *self._live(user_id, revoked_at_ms))
                .values(revoked_at_ms=revoked_at_ms)
            )
            return rowcount(result) > 0

    async def revoke_others(self, user_id: int, keep_session_id: int, revoked_at_ms: int) -> int:
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(SessionRow)
                .where(SessionRow.id != keep_session_id, *self._live(user_id, revoked_at_ms))
                .values(revoked_at_ms=revoked_at_ms)
            )
            return rowcount(result)

    async def seen_device(self, user_id: int, ip: str | None, user_agent: str | None) -> bool:
        async with self._db.read() as session:
            found = await session.scalar(
                sa.select(SessionRow.id)
                .where(
                    SessionRow.user_id == user_id,
                    SessionRow.ip.is_(None) if ip is None else SessionRow.ip == ip,
                    SessionRow.user_agent.is_(None)
                    if user_agent is None
                    else SessionRow.user_agent == user_agent,
                )
                .limit(1)
            )
            return found is not None

    async def count_all(self, user_id: int) -> int:
        async with self._db.read() as session:
            count = await session.scalar(
                sa.select(sa.func.count())
                .select_from(SessionRow)
                .where(SessionRow.user_id == user_id)
            )
            return int(count or 0)
