"""``audit_log`` table and the SQL ``AuditStore`` (services/audit.py).

Invariants:
- ``seq`` is the primary key, assigned as head + 1 inside the appending transaction
  (not by the database), and ``prev_hash`` is unique: two writers that read the same
  head cannot both commit. Appenders queue rather than race: on SQLite the write lock
  serialises them, on PostgreSQL a transaction-scoped advisory lock taken before the
  head is read (:data:`APPEND_LOCK_KEY`); a loser of any race left (the key) retries
  with the new head. Optimistic retries alone let one of 40 concurrent appenders lose
  20 times in a row (CI, 2026-11-27);
- the table refuses ``UPDATE`` (a trigger, created by migration 0004 on both
  databases): entries are never edited in place. Removing entries is detected by the
  chain (a gap, or a head that no longer matches the recorded one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database
from tradewind.services.audit import GENESIS, AuditEntry

APPEND_ATTEMPTS = 20
APPEND_LOCK_KEY = 0x7477_6175_6469_74  # "twaudit": pg_advisory_xact_lock's key
_APPEND_LOCK = sa.text("SELECT pg_advisory_xact_lock(:key)")


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (sa.Index(None, "subject_id", "seq"),)

    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    ts_ms: Mapped[int] = mapped_column(sa.BigInteger)
    actor_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    actor_role: Mapped[str] = mapped_column(sa.String(16))
    action: Mapped[str] = mapped_column(sa.String(64))
    subject_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    details: Mapped[str] = mapped_column(sa.Text)
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    prev_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    hash: Mapped[str] = mapped_column(sa.String(64))


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        ts_ms=row.ts_ms,
        actor_id=row.actor_id,
        actor_role=row.actor_role,
        action=row.action,
        subject_id=row.subject_id,
        details=row.details,
        ip=row.ip,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class SqlAuditStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(self, build: Callable[[int, str], AuditEntry]) -> AuditEntry:
        for attempt in range(APPEND_ATTEMPTS):
            try:
                async with self._db.write() as session:
                    if self._db.dialect == "postgresql":
                        await session.execute(_APPEND_LOCK, {"key": APPEND_LOCK_KEY})
                    head = (
                        await session.execute(
                            sa.select(AuditRow.seq, AuditRow.hash)
                            .order_by(AuditRow.seq.desc())
                            .limit(1)
                        )
                    ).first()
                    seq, prev = (0, GENESIS) if head is None else (int(head[0]), str(head[1]))
                    entry = build(seq + 1, prev)
                    session.add(
                        AuditRow(
                            seq=entry.seq,
                            ts_ms=entry.ts_ms,
                            actor_id=entry.actor_id,
                            actor_role=entry.actor_role,
                            action=entry.action,
                            subject_id=entry.subject_id,
                            details=entry.details,
                            ip=entry.ip,
                            prev_hash=entry.prev_hash,
                            hash=entry.hash,
                        )
                    )
                    await session.flush()
                return entry
            except IntegrityError:
                if attempt == APPEND_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def read(self, after_seq: int, limit: int) -> Sequence[AuditEntry]:
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(AuditRow)
                .where(AuditRow.seq > after_seq)
                .order_by(AuditRow.seq)
                .limit(limit)
            )
            return [_entry(row) for row in rows]

    async def list_recent(
        self, *, limit: int, before_seq: int | None = None, subject_id: int | None = None
    ) -> Sequence[AuditEntry]:
        query = sa.select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)
        if before_seq is not None:
            query = query.where(AuditRow.seq < before_seq)
        if subject_id is not None:
            query = query.where(AuditRow.subject_id == subject_id)
        async with self._db.read() as session:
            return [_entry(row) for row in await session.scalars(query)]
