"""``mail_outbox`` table: every email the exchange sends, in order.

Services only append (``put``). When SMTP is configured a deliverer claims pending rows
(a conditional ``UPDATE`` of ``claimed_until_ms``, so two API replicas never send the
same mail), sends them and marks them sent, clearing the body: a sent email's tokens do
not stay readable in the database. The deliverer also deletes sent rows once they are
older than its retention (``delete_sent``), so the table does not grow for ever. Without
SMTP (embedded, demo) rows stay as they are, readable at ``/dev/mail`` in demo mode and
by tests; unsent rows (pending, or given up after too many attempts) are never deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database, rowcount
from tradewind.adapters.sql.types import ID
from tradewind.services.mail import Mail

SENT_BODY = "(sent; the body is not kept)"


class OutboxRow(Base):
    __tablename__ = "mail_outbox"
    __table_args__ = (sa.Index(None, "sent_at_ms", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    to: Mapped[str] = mapped_column("recipient", sa.String(254), index=True)
    subject: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.String(32))
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    sent_at_ms: Mapped[int | None] = mapped_column(sa.BigInteger)
    attempts: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    claimed_until_ms: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    last_error: Mapped[str | None] = mapped_column(sa.String(200))


@dataclass(frozen=True, slots=True)
class OutboxMail:
    """An ``OutboxRecord``."""

    id: int
    to: str
    subject: str
    body: str
    kind: str
    created_at_ms: int
    sent_at_ms: int | None
    attempts: int


def _mail(row: OutboxRow) -> OutboxMail:
    return OutboxMail(
        row.id,
        row.to,
        row.subject,
        row.body,
        row.kind,
        row.created_at_ms,
        row.sent_at_ms,
        row.attempts,
    )


class SqlOutbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, mail: Mail, created_at_ms: int) -> int:
        row = OutboxRow(
            user_id=mail.user_id,
            to=mail.to,
            subject=mail.subject[:200],
            body=mail.body,
            kind=mail.kind,
            created_at_ms=created_at_ms,
            attempts=0,
            claimed_until_ms=0,
        )
        async with self._db.write() as session:
            session.add(row)
            await session.flush()
            return row.id

    async def recent(self, limit: int, to: str | None = None) -> Sequence[OutboxMail]:
        query = sa.select(OutboxRow).order_by(OutboxRow.id.desc()).limit(limit)
        if to is not None:
            query = query.where(OutboxRow.to == to)
        async with self._db.read() as session:
            return [_mail(row) for row in await session.scalars(query)]

    # -- delivery ---------------------------------------------------------------------

    async def claim(self, now_ms: int, lease_ms: int, limit: int) -> list[OutboxMail]:
        """Pending mails no one else is sending, claimed for ``lease_ms``, oldest first."""
        async with self._db.read() as session:
            ids = list(
                await session.scalars(
                    sa.select(OutboxRow.id)
                    .where(OutboxRow.sent_at_ms.is_(None), OutboxRow.claimed_until_ms <= now_ms)
                    .order_by(OutboxRow.id)
                    .limit(limit)
                )
            )
        claimed: list[OutboxMail] = []
        for mail_id in ids:
            async with self._db.write() as session:
                result = await session.execute(
                    sa.update(OutboxRow)
                    .where(
                        OutboxRow.id == mail_id,
                        OutboxRow.sent_at_ms.is_(None),
                        OutboxRow.claimed_until_ms <= now_ms,
                    )
                    .values(claimed_until_ms=now_ms + lease_ms, attempts=OutboxRow.attempts + 1)
                )
                if rowcount(result) == 0:
                    continue
                row = await session.get(OutboxRow, mail_id)
                if row is not None:
                    claimed.append(_mail(row))
        return claimed

    async def mark_sent(self, mail_id: int, now_ms: int) -> None:
        async with self._db.write() as session:
            await session.execute(
                sa.update(OutboxRow)
                .where(OutboxRow.id == mail_id)
                .values(sent_at_ms=now_ms, body=SENT_BODY, last_error=None)
            )

    async def mark_failed(self, mail_id: int, error: str, retry_at_ms: int) -> None:
        async with self._db.write() as session:
            await session.execute(
                sa.update(OutboxRow)
                .where(OutboxRow.id == mail_id)
                .values(last_error=error[:200], claimed_until_ms=retry_at_ms)
            )

    async def delete_sent(self, before_ms: int, limit: int = 1000) -> int:
        """Delete up to ``limit`` mails sent before ``before_ms``, oldest first; returns
        how many (call again while it returns ``limit``). Bounded so that one sweep
        never holds a long write lock (SQLite locks the whole file)."""
        async with self._db.write() as session:
            ids = (
                sa.select(OutboxRow.id)
                .where(OutboxRow.sent_at_ms.is_not(None), OutboxRow.sent_at_ms < before_ms)
                .order_by(OutboxRow.id)
                .limit(limit)
                .scalar_subquery()
            )
            result = await session.execute(sa.delete(OutboxRow).where(OutboxRow.id.in_(ids)))
            return rowcount(result)
