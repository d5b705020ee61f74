"""The ``alerts`` table and the SQL ``AlertStore`` (services/alerts.py).

Invariants:
- at most one open alert per dedupe key: ``open_key`` holds the key while the alert is
  open and ``NULL`` once acknowledged, under a unique constraint (NULLs never clash, on
  PostgreSQL and SQLite alike). Raising is one ``INSERT ... ON CONFLICT (open_key) DO
  UPDATE`` that counts a repeat, so two processes raising the same key at once make
  one alert, never an error;
- acknowledging is a conditional ``UPDATE ... WHERE status = 'open'``: once;
- :func:`upsert_alert` works inside a caller's transaction, so the chain watcher's
  store writes its ``chain_alerts`` row and the alert together (adapters/sql/chain_watch.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database, rowcount
from tradewind.adapters.sql.types import ID
from tradewind.services.alerts import Alert, AlertStatus


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (sa.Index(None, "status", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(64))
    severity: Mapped[str] = mapped_column(sa.String(16))
    message: Mapped[str] = mapped_column(sa.String(2000))
    details: Mapped[str] = mapped_column(sa.Text)
    dedupe_key: Mapped[str] = mapped_column(sa.String(200))
    open_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    last_seen_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    count: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(16))
    acknowledged_by: Mapped[int | None] = mapped_column(sa.BigInteger)
    acknowledged_at_ms: Mapped[int | None] = mapped_column(sa.BigInteger)


def _alert(row: AlertRow) -> Alert:
    return Alert(
        id=row.id,
        kind=row.kind,
        severity=row.severity,
        message=row.message,
        details=row.details,
        dedupe_key=row.dedupe_key,
        created_at_ms=row.created_at_ms,
        last_seen_at_ms=row.last_seen_at_ms,
        count=row.count,
        status=row.status,
        acknowledged_by=row.acknowledged_by,
        acknowledged_at_ms=row.acknowledged_at_ms,
    )


async def upsert_alert(
    session: AsyncSession,
    *,
    kind: str,
    severity: str,
    message: str,
    details: str,
    dedupe_key: str,
    at_ms: int,
) -> tuple[int, bool]:
    """Open an alert or count a repeat of the open one with ``dedupe_key``, in the
    caller's transaction; returns ``(id, new)``."""
    values = {
        "kind": kind,
        "severity": severity,
        "message": message[:2000],
        "details": details,
        "dedupe_key": dedupe_key,
        "open_key": dedupe_key,
        "created_at_ms": at_ms,
        "last_seen_at_ms": at_ms,
        "count": 1,
        "status": "open",
    }
    table = AlertRow.__table__
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(AlertRow) if dialect == "postgresql" else sqlite.insert(AlertRow)
    stmt = (
        insert.values(**values)
        .on_conflict_do_update(
            index_elements=[table.c.open_key],
            set_={
                "count": table.c.count + 1,
                "last_seen_at_ms": at_ms,
                "severity": severity,
                "message": message[:2000],
                "details": details,
            },
        )
        .returning(table.c.id, table.c.count)
    )
    alert_id, count = (await session.execute(stmt)).one()
    return int(alert_id), int(count) == 1


class SqlAlertStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def raise_alert(
        self,
        *,
        kind: str,
        severity: str,
        message: str,
        details: str,
        dedupe_key: str,
        at_ms: int,
    ) -> tuple[Alert, bool]:
        async with self._db.write() as session:
            alert_id, new = await upsert_alert(
                session,
                kind=kind,
                severity=severity,
                message=message,
                details=details,
                dedupe_key=dedupe_key,
                at_ms=at_ms,
            )
        found = await self.get(alert_id)
        assert found is not None
        return found, new

    async def get(self, alert_id: int) -> Alert | None:
        async with self._db.read() as session:
            row = await session.get(AlertRow, alert_id)
            return None if row is None else _alert(row)

    async def list(
        self, *, status: AlertStatus | None, limit: int, before_id: int | None
    ) -> Sequence[Alert]:
        query = sa.select(AlertRow).order_by(AlertRow.id.desc()).limit(limit)
        if status is not None:
            query = query.where(AlertRow.status == status)
        if before_id is not None:
            query = query.where(AlertRow.id < before_id)
        async with self._db.read() as session:
            return [_alert(r) for r in await session.scalars(query)]

    async def acknowledge(self, alert_id: int, *, by: int, at_ms: int) -> bool:
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(AlertRow)
                .where(AlertRow.id == alert_id, AlertRow.status == "open")
                .values(
                    status="acknowledged",
                    open_key=None,
                    acknowledged_by=by,
                    acknowledged_at_ms=at_ms,
                )
            )
            return rowcount(result) > 0

    async def count_open(self) -> int:
        async with self._db.read() as session:
            count = await session.scalar(
                sa.select(sa.func.count()).select_from(AlertRow).where(AlertRow.status == "open")
            )
            return int(count or 0)
