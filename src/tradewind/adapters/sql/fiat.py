"""The fiat rails' tables (``fiat_references``, ``fiat_lines``, ``card_intents``) and
the SQL ``FiatStore`` (services/fiat/ports.py).

Invariants:
- one reference per user (primary key) and one user per reference (unique): a racing
  second insert fails on a key and the store returns the row that won;
- a statement line is stored once per ``ref`` (unique): lines of a re-imported file are
  found by ref and left as they are; all new lines of a file go in one transaction;
- status changes are compare-and-set on the expected status (``UPDATE ... WHERE
  status = ...``), so two processes crediting, or two staff deciding, change a row once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database
from tradewind.adapters.sql.types import ID, user_key
from tradewind.services.fiat.ports import (
    CardIntent,
    CardStatus,
    FiatLine,
    LineStatus,
)


class FiatReferenceRow(Base):
    __tablename__ = "fiat_references"

    user_id: Mapped[int] = user_key()
    reference: Mapped[str] = mapped_column(sa.String(34), unique=True)
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)


class FiatLineRow(Base):
    __tablename__ = "fiat_lines"
    __table_args__ = (
        sa.Index(None, "status", "id"),
        sa.Index(None, "user_id", "imported_at_ms"),  # deposit history (migration 0017)
        sa.Index(None, "imported_at_ms"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(sa.String(160), unique=True)
    account_iban: Mapped[str] = mapped_column(sa.String(34))
    entry_ref: Mapped[str] = mapped_column(sa.String(100))
    currency: Mapped[str] = mapped_column(sa.String(8))
    amount_text: Mapped[str] = mapped_column(sa.String(40))
    amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    user_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.String(64))
    remittance: Mapped[str] = mapped_column(sa.String(1000))
    debtor_name: Mapped[str | None] = mapped_column(sa.String(140))
    debtor_iban: Mapped[str | None] = mapped_column(sa.String(34))
    booking_date: Mapped[str | None] = mapped_column(sa.String(10))
    line_no: Mapped[int] = mapped_column(sa.Integer)
    imported_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    credited_seq: Mapped[int | None] = mapped_column(sa.BigInteger)
    resolved_by: Mapped[int | None] = mapped_column(sa.BigInteger)
    resolved_at_ms: Mapped[int | None] = mapped_column(sa.BigInteger)
    note: Mapped[str | None] = mapped_column(sa.String(400))


class CardIntentRow(Base):
    __tablename__ = "card_intents"
    __table_args__ = (sa.Index(None, "user_id"), sa.Index(None, "created_at_ms"))

    id: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(8))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    processor_amount: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(16))
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    credited_seq: Mapped[int | None] = mapped_column(sa.BigInteger)
    note: Mapped[str | None] = mapped_column(sa.String(400))


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    """``IN`` lists of at most ``size`` (SQLite caps bound parameters per statement)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def _line(row: FiatLineRow) -> FiatLine:
    status: LineStatus = row.status  # type: ignore[assignment]
    return FiatLine(
        ref=row.ref,
        account_iban=row.account_iban,
        entry_ref=row.entry_ref,
        currency=row.currency,
        amount_text=row.amount_text,
        amount=row.amount,
        user_id=row.user_id,
        status=status,
        reason=row.reason,
        remittance=row.remittance,
        debtor_name=row.debtor_name,
        debtor_iban=row.debtor_iban,
        booking_date=row.booking_date,
        line_no=row.line_no,
        imported_at_ms=row.imported_at_ms,
        id=row.id,
        credited_seq=row.credited_seq,
        resolved_by=row.resolved_by,
        resolved_at_ms=row.resolved_at_ms,
        note=row.note,
    )


def _intent(row: CardIntentRow) -> CardIntent:
    status: CardStatus = row.status  # type: ignore[assignment]
    return CardIntent(
        id=row.id,
        user_id=row.user_id,
        currency=row.currency,
        amount=row.amount,
        processor_amount=row.processor_amount,
        status=status,
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
        credited_seq=row.credited_seq,
        note=row.note,
    )


class SqlFiatStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- references ----------------------------------------------------------------------

    async def reference_of(self, user_id: int) -> str | None:
        async with self._db.read() as session:
            row = await session.get(FiatReferenceRow, user_id)
            return None if row is None else row.reference

    async def put_reference_if_absent(self, user_id: int, reference: str, at_ms: int) -> str:
        try:
            async with self._db.write() as session:
                existing = await session.get(FiatReferenceRow, user_id)
                if existing is not None:
                    return existing.reference
                session.add(
                    FiatReferenceRow(user_id=user_id, reference=reference, created_at_ms=at_ms)
                )
            return reference
        except IntegrityError:
            won = await self.reference_of(user_id)
            if won is None:  # not a race on the user: the reference is someone else's
                raise ValueError("reference taken") from None
            return won

    async def owners_of(self, references: Sequence[str]) -> dict[str, int]:
        if not references:
            return {}
        out: dict[str, int] = {}
        async with self._db.read() as session:
            for chunk in _chunks(list(references)):
                rows = await session.execute(
                    sa.select(FiatReferenceRow.reference, FiatReferenceRow.user_id).where(
                        FiatReferenceRow.reference.in_(chunk)
                    )
                )
                out.update({ref: user for ref, user in rows})
        return out

    # -- statement lines -----------------------------------------------------------------

    async def add_lines(self, lines: Sequence[FiatLine]) -> int:
        if not lines:
            return 0
        async with self._db.write() as session:
            known: set[str] = set()
            for chunk in _chunks([line.ref for line in lines]):
                found = await session.scalars(
                    sa.select(FiatLineRow.ref).where(FiatLineRow.ref.in_(chunk))
                )
                known.update(found.all())
            new = [line for line in lines if line.ref not in known]
            for line in new:
                session.add(
                    FiatLineRow(
                        ref=line.ref,
                        account_iban=line.account_iban,
                        entry_ref=line.entry_ref,
                        currency=line.currency,
                        amount_text=line.amount_text,
                        amount=line.amount,
                        user_id=line.user_id,
                        status=line.status,
                        reason=line.reason,
                        remittance=line.remittance,
                        debtor_name=line.debtor_name,
                        debtor_iban=line.debtor_iban,
                        booking_date=line.booking_date,
                        line_no=line.line_no,
                        imported_at_ms=line.imported_at_ms,
                    )
                )
            return len(new)

    async def lines(
        self, *, status: LineStatus | None, limit: int, after_id: int = 0
    ) -> Sequence[FiatLine]:
        query = sa.select(FiatLineRow).where(FiatLineRow.id > after_id)
        if status is not None:
            query = query.where(FiatLineRow.status == status)
        async with self._db.read() as session:
            rows = (await session.scalars(query.order_by(FiatLineRow.id).limit(limit))).all()
            return [_line(r) for r in rows]

    async def line(self, line_id: int) -> FiatLine | None:
        async with self._db.read() as session:
            row = await session.get(FiatLineRow, line_id)
            return None if row is None else _line(row)

    async def settle_line(
        self,
        ref: str,
        status: LineStatus,
        *,
        seq: int | None = None,
        reason: str | None = None,
    ) -> bool:
        values: dict[str, object] = {"status": status, "credited_seq": seq}
        if reason is not None:
            values["reason"] = reason[:64]
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(FiatLineRow)
                .where(FiatLineRow.ref == ref, FiatLineRow.status == "matched")
                .values(**values)
            )
            return bool(getattr(result, "rowcount", 0))

    async def resolve_line(
        self,
        line_id: int,
        status: LineStatus,
        *,
        user_id: int | None,
        by: int | None,
        at_ms: int,
        note: str,
    ) -> bool:
        values: dict[str, object] = {
            "status": status,
            "resolved_by": by,
            "resolved_at_ms": at_ms,
            "note": note[:400],
        }
        if user_id is not None:
            values["user_id"] = user_id
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(FiatLineRow)
                .where(FiatLineRow.id == line_id, FiatLineRow.status == "review")
                .values(**values)
            )
            return bool(getattr(result, "rowcount", 0))

    async def move_lines(
        self, line_ids: Sequence[int], expect: LineStatus, status: LineStatus
    ) -> int:
        if not line_ids:
            return 0
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(FiatLineRow)
                .where(FiatLineRow.id.in_(list(line_ids)), FiatLineRow.status == expect)
                .values(status=status)
            )
            return int(getattr(result, "rowcount", 0))

    # -- card intents --------------------------------------------------------------------

    async def add_intent(self, intent: CardIntent) -> None:
        async with self._db.write() as session:
            session.add(
                CardIntentRow(
                    id=intent.id,
                    user_id=intent.user_id,
                    currency=intent.currency,
                    amount=intent.amount,
                    processor_amount=intent.processor_amount,
                    status=intent.status,
                    created_at_ms=intent.created_at_ms,
                    updated_at_ms=intent.updated_at_ms,
                )
            )

    async def intent(self, intent_id: str) -> CardIntent | None:
        async with self._db.read() as session:
            row = await session.get(CardIntentRow, intent_id)
            return None if row is None else _intent(row)

    async def settle_intent(
        self,
        intent_id: str,
        status: CardStatus,
        *,
        at_ms: int,
        seq: int | None = None,
        note: str | None = None,
    ) -> bool:
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(CardIntentRow)
                .where(CardIntentRow.id == intent_id, CardIntentRow.status == "created")
                .values(
                    status=status,
                    updated_at_ms=at_ms,
                    credited_seq=seq,
                    note=None if note is None else note[:400],
                )
            )
            return bool(getattr(result, "rowcount", 0))
