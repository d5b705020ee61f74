"""KYC tables (``kyc_profiles``, ``kyc_documents``, ``kyc_events``) and the SQL
``KycStore`` (services/kyc.py).

Invariants:
- a user without a ``kyc_profiles`` row is level 0, never verified;
- a document is decided once (``UPDATE ... WHERE status = 'pending'``);
- a provider's event id is stored once (primary key ``(provider, event_id)``): a
  replayed callback finds it and changes nothing;
- documents themselves are not in the database, only where the document store put
  them, their size, type and SHA-256.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database, rowcount
from tradewind.adapters.sql.types import ID, user_key
from tradewind.adapters.sql.users import UserRow
from tradewind.services.kyc import KycDocument, KycProfile


class KycProfileRow(Base):
    __tablename__ = "kyc_profiles"

    user_id: Mapped[int] = user_key()
    level: Mapped[int] = mapped_column(sa.SmallInteger)
    source: Mapped[str] = mapped_column(sa.String(64))
    updated_at_ms: Mapped[int] = mapped_column(sa.BigInteger)


class KycDocumentRow(Base):
    __tablename__ = "kyc_documents"
    __table_args__ = (sa.Index(None, "status", "id"), sa.Index(None, "user_id", "id"))

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(sa.String(32))
    content_type: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    location: Mapped[str] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(16))
    uploaded_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    reviewed_by: Mapped[int | None] = mapped_column(sa.BigInteger)
    reviewed_at_ms: Mapped[int | None] = mapped_column(sa.BigInteger)
    note: Mapped[str | None] = mapped_column(sa.String(256))


class KycEventRow(Base):
    __tablename__ = "kyc_events"

    provider: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    received_at_ms: Mapped[int] = mapped_column(sa.BigInteger)


def _document(row: KycDocumentRow) -> KycDocument:
    return KycDocument(
        id=row.id,
        user_id=row.user_id,
        kind=row.kind,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        location=row.location,
        status=row.status,
        uploaded_at_ms=row.uploaded_at_ms,
        reviewed_by=row.reviewed_by,
        reviewed_at_ms=row.reviewed_at_ms,
        note=row.note,
    )


class SqlKycStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def has_user(self, user_id: int) -> bool:
        async with self._db.read() as session:
            return (
                await session.scalar(sa.select(UserRow.id).where(UserRow.id == user_id)) is not None
            )

    async def profile(self, user_id: int) -> KycProfile:
        async with self._db.read() as session:
            row = await session.get(KycProfileRow, user_id)
            if row is None:
                return KycProfile(user_id, 0, None, None)
            return KycProfile(user_id, row.level, row.updated_at_ms, row.source)

    async def set_level(self, user_id: int, level: int, *, source: str, at_ms: int) -> None:
        async with self._db.write() as session:
            row = await session.get(KycProfileRow, user_id)
            if row is None:
                session.add(
                    KycProfileRow(user_id=user_id, level=level, source=source, updated_at_ms=at_ms)
                )
            else:
                row.level, row.source, row.updated_at_ms = level, source, at_ms

    async def add_document(
        self,
        *,
        user_id: int,
        kind: str,
        content_type: str,
        size: int,
        sha256: str,
        location: str,
        at_ms: int,
    ) -> KycDocument:
        row = KycDocumentRow(
            user_id=user_id,
            kind=kind,
            content_type=content_type,
            size=size,
            sha256=sha256,
            location=location,
            status="pending",
            uploaded_at_ms=at_ms,
        )
        async with self._db.write() as session:
            session.add(row)
            await session.flush()
        return _document(row)

    async def get_document(self, document_id: int) -> KycDocument | None:
        async with self._db.read() as session:
            row = await session.get(KycDocumentRow, document_id)
            return None if row is None else _document(row)

    async def list_documents(
        self, *, status: str | None, user_id: int | None, limit: int
    ) -> Sequence[KycDocument]:
        query = sa.select(KycDocumentRow).order_by(KycDocumentRow.id).limit(limit)
        if status is not None:
            query = query.where(KycDocumentRow.status == status)
        if user_id is not None:
            query = query.where(KycDocumentRow.user_id == user_id)
        async with self._db.read() as session:
            return [_document(row) for row in await session.scalars(query)]

    async def decide_document(
        self, document_id: int, *, status: str, by: int | None, at_ms: int, note: str | None
    ) -> bool:
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(KycDocumentRow)
                .where(KycDocumentRow.id == document_id, KycDocumentRow.status == "pending")
                .values(status=status, reviewed_by=by, reviewed_at_ms=at_ms, note=note)
            )
            return rowcount(result) > 0

    async def remember_event(self, provider: str, event_id: str, at_ms: int) -> bool:
        try:
            async with self._db.write() as session:
                if await session.get(KycEventRow, (provider, event_id)) is not None:
                    return False
                session.add(KycEventRow(provider=provider, event_id=event_id, received_at_ms=at_ms))
                await session.flush()
        except IntegrityError:
            return False
        return True
