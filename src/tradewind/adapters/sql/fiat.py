"""The fiat rails' tables (``fiat_references``, ``fiat_lines``, ``card_intents``,
``bank_balances``, ``bank_debits``) and the SQL ``FiatStore`` (services/fiat/ports.py).

Invariants:
- one reference per user (primary key) and one user per reference (unique): a racing
  second insert fails on a key and the store returns the row that won;
- a statement line is stored once per ``ref`` (unique): lines of a re-imported file are
  found by ref and left as they are; all new lines of a file go in one transaction;
- status changes are compare-and-set on the expected status (``UPDATE ... WHERE
  status = ...``), so two processes crediting, or two staff deciding, change a row once;
- a statement's balances (one row per account, statement id and currency) and booked
  debits (one per account, entry and end-to-end id) are stored in the transaction of
  its lines; stored again they add nothing, and a statement id stored with other
  balances refuses the whole import (ADR 0036).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database
from tradewind.adapters.sql.types import ID, user_key
from tradewind.services.fiat.ports import (
    BalanceConflict,
    CardIntent,
    CardStatus,
    FiatLine,
    LineStatus,
    StatementBalance,
    StatementDebit,
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


class BankBalanceRow(Base):
    """A statement's opening and closing booked balance in one currency (migration 0019)."""

    __tablename__ = "bank_balances"
    __table_args__ = (sa.Index(None, "account_iban", "currency", "closing_date"),)

    account_iban: Mapped[str] = mapped_column(sa.String(34), primary_key=True)
    statement_id: Mapped[str] = mapped_column(sa.String(35), primary_key=True)
    currency: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    opening: Mapped[str] = mapped_column(sa.String(40))
    opening_date: Mapped[str] = mapped_column(sa.String(10))
    closing: Mapped[str] = mapped_column(sa.String(40))
    closing_date: Mapped[str] = mapped_column(sa.String(10))
    created: Mapped[str | None] = mapped_column(sa.String(32))
    imported_at_ms: Mapped[int] = mapped_column(sa.BigInteger)


class BankDebitRow(Base):
    """A booked debit with an end-to-end id: a payout the bank made (migration 0019)."""

    __tablename__ = "bank_debits"
    __table_args__ = (
        sa.UniqueConstraint("account_iban", "entry_ref", "end_to_end_id"),
        sa.Index(None, "end_to_end_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    account_iban: Mapped[str] = mapped_column(sa.String(34))
    statement_id: Mapped[str] = mapped_column(sa.String(35))
    entry_ref: Mapped[str] = mapped_column(sa.String(80))
    end_to_end_id: Mapped[str] = mapped_column(sa.String(35))
    amount_text: Mapped[str] = mapped_column(sa.String(40))
    currency: Mapped[str] = mapped_column(sa.String(8))
    booking_date: Mapped[str | None] = mapped_column(sa.String(10))
    imported_at_ms: Mapped[int] = mapped_column(sa.BigInteger)


@dataclass(frozen=True, slots=True)
class StoredBalance:
    """A stored :class:`StatementBalance` and when it was imported."""

    balance: StatementBalance
    imported_at_ms: int


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


def _balance(row: BankBalanceRow) -> StatementBalance:
    return StatementBalance(
        account_iban=row.account_iban,
        statement_id=row.statement_id,
        currency=row.currency,
        opening=row.opening,
        opening_date=row.opening_date,
        closing=row.closing,
        closing_date=row.closing_date,
        created=row.created,
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
            return await self._insert_lines(session, lines)

    async def add_statement(
        self,
        lines: Sequence[FiatLine],
        balances: Sequence[StatementBalance],
        debits: Sequence[StatementDebit],
        at_ms: int,
    ) -> int:
        async with self._db.write() as session:
            for b in balances:
                row = await session.get(
                    BankBalanceRow, (b.account_iban, b.statement_id, b.currency)
                )
                if row is None:
                    session.add(
                        BankBalanceRow(
                            account_iban=b.account_iban,
                            statement_id=b.statement_id,
                            currency=b.currency,
                            opening=b.opening,
                            opening_date=b.opening_date,
                            closing=b.closing,
                            closing_date=b.closing_date,
                            created=b.created,
                            imported_at_ms=at_ms,
                        )
                    )
                elif (row.opening, row.closing, row.closing_date) != (
                    b.opening,
                    b.closing,
                    b.closing_date,
                ):
                    raise BalanceConflict(
                        f"statement {b.statement_id} of {b.account_iban} was imported before "
                        f"with the balances {row.opening} to {row.closing} {b.currency} "
                        f"(closing {row.closing_date}); this file says {b.opening} to "
                        f"{b.closing} (closing {b.closing_date})"
                    )
            await session.flush()
            for d in debits:
                exists = await session.scalar(
                    sa.select(BankDebitRow.id).where(
                        BankDebitRow.account_iban == d.account_iban,
                        BankDebitRow.entry_ref == d.entry_ref,
                        BankDebitRow.end_to_end_id == d.end_to_end_id,
                    )
                )
                if exists is None:
                    session.add(
                        BankDebitRow(
                            account_iban=d.account_iban,
                            statement_id=d.statement_id,
                            entry_ref=d.entry_ref,
                            end_to_end_id=d.end_to_end_id,
                            amount_text=d.amount,
                            currency=d.currency,
                            booking_date=d.booking_date,
                            imported_at_ms=at_ms,
                        )
                    )
            await session.flush()
            return await self._insert_lines(session, lines) if lines else 0

    async def newest_balances(self, ibans: Sequence[str]) -> list[StoredBalance]:
        """Per account and currency, the statement that closes last (by closing date,
        then creation time, then import), and the first import of each (the oldest
        ``imported_at_ms`` of the account and currency): see :meth:`first_balance_ms`."""
        out: list[StoredBalance] = []
        async with self._db.read() as session:
            rows = (
                await session.scalars(
                    sa.select(BankBalanceRow).where(BankBalanceRow.account_iban.in_(list(ibans)))
                )
            ).all()
        newest: dict[tuple[str, str], BankBalanceRow] = {}
        for row in rows:
            key = (row.account_iban, row.currency)
            best = newest.get(key)
            order = (row.closing_date, row.created or "", row.imported_at_ms)
            if best is None or order > (best.closing_date, best.created or "", best.imported_at_ms):
                newest[key] = row
        for row in newest.values():
            out.append(StoredBalance(_balance(row), row.imported_at_ms))
        return sorted(out, key=lambda s: (s.balance.account_iban, s.balance.currency))

    async def first_imports(self, ibans: Sequence[str]) -> dict[tuple[str, str], int]:
        """Per account and currency, when its first statement balance was imported."""
        async with self._db.read() as session:
            rows = await session.execute(
                sa.select(
                    BankBalanceRow.account_iban,
                    BankBalanceRow.currency,
                    sa.func.min(BankBalanceRow.imported_at_ms),
                )
                .where(BankBalanceRow.account_iban.in_(list(ibans)))
                .group_by(BankBalanceRow.account_iban, BankBalanceRow.currency)
            )
            return {(str(iban), str(c)): int(ms) for iban, c, ms in rows}

    async def balances_of(self, iban: str, currency: str) -> list[StoredBalance]:
        """Every stored statement balance of an account in a currency, oldest first."""
        async with self._db.read() as session:
            rows = (
                await session.scalars(
                    sa.select(BankBalanceRow).where(
                        BankBalanceRow.account_iban == iban, BankBalanceRow.currency == currency
                    )
                )
            ).all()
        ordered = sorted(rows, key=lambda r: (r.closing_date, r.created or "", r.imported_at_ms))
        return [StoredBalance(_balance(r), r.imported_at_ms) for r in ordered]

    async def debits(self, ibans: Sequence[str]) -> list[StatementDebit]:
        """The stored booked debits with an end-to-end id of these accounts."""
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(BankDebitRow)
                .where(BankDebitRow.account_iban.in_(list(ibans)))
                .order_by(BankDebitRow.id)
            )
            return [
                StatementDebit(
                    r.end_to_end_id,
                    r.amount_text,
                    r.currency,
                    r.entry_ref,
                    account_iban=r.account_iban,
                    statement_id=r.statement_id,
                    booking_date=r.booking_date,
                )
                for r in rows
            ]

    async def lines_not_settled(self, ibans: Sequence[str], seq: int) -> list[FiatLine]:
        """Lines of these accounts the core may not have credited at ``seq``: every line
        not ``credited``, and credited ones with no or a later recorded seq (the caller
        asks the core which refs it applied)."""
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(FiatLineRow)
                .where(
                    FiatLineRow.account_iban.in_(list(ibans)),
                    sa.or_(
                        FiatLineRow.status != "credited",
                        FiatLineRow.credited_seq.is_(None),
                        FiatLineRow.credited_seq > seq,
                    ),
                )
                .order_by(FiatLineRow.id)
            )
            return [_line(r) for r in rows]

    async def card_intents(self, statuses: Sequence[CardStatus]) -> list[CardIntent]:
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(CardIntentRow)
                .where(CardIntentRow.status.in_(list(statuses)))
                .order_by(CardIntentRow.created_at_ms)
            )
            return [_intent(r) for r in rows]

    async def _insert_lines(self, session: AsyncSession, lines: Sequence[FiatLine]) -> int:
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
