"""``margin_wallets`` and ``margin_events``: the margin projector's tables.

Invariants:
- one ``margin_wallets`` row per wallet the core opened (its negative account id ->
  owner, kind, symbol), never changed afterwards;
- one ``margin_events`` row per margin event, unique by ``(seq, event_index)``, inserted
  in seq order (so ``id`` order is event order and a stable cursor), written in the same
  transaction as the projector's offset (``projector_offsets``);
- ``data`` holds the event's own integer fields as JSON (msgspec: ints stay exact);
- ``notified_at_ms`` is set once a notice (margin call, finished liquidation) was put in
  the mail outbox, by a compare-and-set in the same transaction as the outbox row, so a
  notice is mailed exactly once however many mailers run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database, rowcount
from tradewind.adapters.sql.outbox import OutboxRow
from tradewind.adapters.sql.projector_offsets import advance_offset, get_offset
from tradewind.adapters.sql.types import ID, MinorUnits
from tradewind.services.history import Page
from tradewind.services.mail import Mail
from tradewind.services.margin import MarginRecord
from tradewind.services.projectors.margin import MarginEventRecord, WalletRecord

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


class MarginWalletRow(Base):
    __tablename__ = "margin_wallets"
    __table_args__ = (sa.Index(None, "user_id"),)

    wallet_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    kind: Mapped[str] = mapped_column(sa.String(8))
    symbol: Mapped[str | None] = mapped_column(sa.String(65), nullable=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    ts: Mapped[int] = mapped_column(sa.BigInteger)


class MarginEventRow(Base):
    __tablename__ = "margin_events"
    __table_args__ = (
        sa.UniqueConstraint("seq", "event_index"),
        sa.Index(None, "user_id", "kind", "id"),
        sa.Index(None, "notify", "notified_at_ms"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    event_index: Mapped[int] = mapped_column(sa.Integer)
    ts: Mapped[int] = mapped_column(sa.BigInteger)
    wallet_id: Mapped[int] = mapped_column(sa.BigInteger)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    kind: Mapped[str] = mapped_column(sa.String(24))
    asset: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    amount: Mapped[int | None] = mapped_column(MinorUnits, nullable=True)
    data: Mapped[str] = mapped_column(sa.Text)
    notify: Mapped[bool] = mapped_column(sa.Boolean)
    notified_at_ms: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)


class SqlMarginTx:
    def __init__(self, session: AsyncSession, name: str) -> None:
        self._session = session
        self._name = name

    async def offset(self) -> int:
        return await get_offset(self._session, self._name)

    async def add_wallets(self, rows: Sequence[WalletRecord]) -> None:
        await self._session.execute(
            sa.insert(MarginWalletRow),
            [
                {
                    "wallet_id": r.wallet,
                    "user_id": r.user,
                    "kind": r.kind,
                    "symbol": r.symbol,
                    "seq": r.seq,
                    "ts": r.ts,
                }
                for r in rows
            ],
        )

    async def add_events(self, rows: Sequence[MarginEventRecord]) -> None:
        await self._session.execute(
            sa.insert(MarginEventRow),
            [
                {
                    "seq": r.seq,
                    "event_index": r.event_index,
                    "ts": r.ts,
                    "wallet_id": r.wallet,
                    "user_id": r.user,
                    "kind": r.kind,
                    "asset": r.asset,
                    "amount": r.amount,
                    "data": _encode(r.data).decode(),
                    "notify": r.notify,
                    "notified_at_ms": None,
                }
                for r in rows
            ],
        )

    async def advance(self, seq: int, ts: int) -> None:
        await advance_offset(self._session, self._name, seq, ts)


def _record(row: MarginEventRow, wallet: MarginWalletRow | None) -> MarginRecord:
    return MarginRecord(
        id=row.id,
        seq=row.seq,
        ts=row.ts,
        wallet=row.wallet_id,
        kind=row.kind,
        asset=row.asset,
        amount=row.amount,
        data=_decode(row.data),
        wallet_kind=None if wallet is None else wallet.kind,
        symbol=None if wallet is None else wallet.symbol,
    )


class SqlMarginStore:
    """The margin projector's ``MarginWriter`` and the service's ``MarginHistoryStore``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self, name: str) -> AsyncIterator[SqlMarginTx]:
        async with self._db.write() as session:
            yield SqlMarginTx(session, name)

    async def offset(self, name: str) -> int:
        async with self._db.read() as session:
            return await get_offset(session, name)

    async def list_records(
        self,
        user: int,
        kinds: frozenset[str],
        *,
        asset: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Page[MarginRecord]:
        e, w = MarginEventRow, MarginWalletRow
        query = (
            sa.select(e, w)
            .join(w, w.wallet_id == e.wallet_id, isouter=True)
            .where(e.user_id == user, e.kind.in_(sorted(kinds)))
            .order_by(e.id.desc())
            .limit(limit + 1)
        )
        if asset is not None:
            query = query.where(e.asset == asset)
        if before is not None:
            query = query.where(e.id < before)
        async with self._db.read() as session:
            rows = list((await session.execute(query)).tuples())
        items = [_record(ev, wal) for ev, wal in rows[:limit]]
        more = len(rows) > limit
        return Page(items, items[-1].id if more and items else None)

    async def wallets_of(self, user: int) -> list[tuple[int, str, str | None]]:
        w = MarginWalletRow
        async with self._db.read() as session:
            rows = await session.execute(
                sa.select(w.wallet_id, w.kind, w.symbol)
                .where(w.user_id == user)
                .order_by(w.wallet_id.desc())
            )
            return [(int(a), str(b), c) for a, b, c in rows]

    async def wallet_owner(self, wallet: int) -> int | None:
        async with self._db.read() as session:
            value = await session.scalar(
                sa.select(MarginWalletRow.user_id).where(MarginWalletRow.wallet_id == wallet)
            )
            return None if value is None else int(value)

    # -- notices (margin_notices) --------------------------------------------------------

    async def pending_notices(self, limit: int = 100) -> list[MarginRecord]:
        """Notices not mailed yet, oldest first."""
        e, w = MarginEventRow, MarginWalletRow
        async with self._db.read() as session:
            rows = (
                await session.execute(
                    sa.select(e, w)
                    .join(w, w.wallet_id == e.wallet_id, isouter=True)
                    .where(e.notify.is_(True), e.notified_at_ms.is_(None))
                    .order_by(e.id)
                    .limit(limit)
                )
            ).tuples()
            return [_record(ev, wal) for ev, wal in rows]

    async def mail_notice(self, record_id: int, mail: Mail | None, at_ms: int) -> bool:
        """Claim notice ``record_id`` and put ``mail`` (``None``: nobody to mail) in the
        outbox, in one transaction: mailed exactly once. ``False`` if it was claimed
        before."""
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(MarginEventRow)
                .where(MarginEventRow.id == record_id, MarginEventRow.notified_at_ms.is_(None))
                .values(notified_at_ms=at_ms)
            )
            if rowcount(result) != 1:
                return False
            if mail is not None:
                session.add(
                    OutboxRow(
                        user_id=mail.user_id,
                        to=mail.to,
                        subject=mail.subject[:200],
                        body=mail.body,
                        kind=mail.kind,
                        created_at_ms=at_ms,
                        attempts=0,
                        claimed_until_ms=0,
                    )
                )
            return True

    async def user_of(self, record_id: int) -> int | None:
        async with self._db.read() as session:
            value = await session.scalar(
                sa.select(MarginEventRow.user_id).where(MarginEventRow.id == record_id)
            )
            return None if value is None else int(value)
