"""The SQL ``DepositHistoryStore`` (services/funding/deposit_history.py): read-only
queries over ``chain_deposits``, ``fiat_lines`` and ``card_intents``.

Invariants:
- each query orders by (time, key) descending and bounds by the same pair, so pages
  of one source never overlap (the service merges the sources);
- with a user, a query filters by ``user_id`` first (indexes of migration 0017), so a
  user never reads another user's rows;
- statement lines without a user (in the review queue, nobody's reference) are listed
  to staff only (a query without a user).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from tradewind.adapters.sql.chain_watch import ChainBlockRow, ChainDepositRow
from tradewind.adapters.sql.engine import Database
from tradewind.adapters.sql.fiat import CardIntentRow, FiatLineRow
from tradewind.services.funding.deposit_history import (
    BANK_NETWORK,
    CARD_NETWORK,
    Before,
    SourceDeposit,
    SourceQuery,
)


def _chain(row: ChainDepositRow) -> SourceDeposit:
    return SourceDeposit(
        kind="chain",
        key=(row.network, row.txid, row.idx),
        user_id=row.user_id,
        asset=row.asset,
        network=row.network,
        amount=row.amount,
        amount_text=None,
        status=row.status,
        reason=row.note if row.status in ("below_minimum", "refused") else None,
        at_ms=row.seen_at_ms,
        updated_at_ms=row.updated_at_ms,
        txid=row.txid,
        reference=f"{row.network}:{row.txid}:{row.idx}",
        block_number=row.block_number,
        credited_seq=row.credited_seq,
    )


def _bank(row: FiatLineRow) -> SourceDeposit:
    return SourceDeposit(
        kind="bank",
        key=(row.id,),
        user_id=row.user_id,
        asset=row.currency,
        network=BANK_NETWORK,
        amount=row.amount,
        amount_text=row.amount_text,
        status=row.status,
        reason=row.reason,
        at_ms=row.imported_at_ms,
        updated_at_ms=row.resolved_at_ms,
        reference=row.entry_ref,
        credited_seq=row.credited_seq,
        booking_date=row.booking_date,
    )


def _card(row: CardIntentRow) -> SourceDeposit:
    reason = {"failed": "canceled", "mismatch": "amount_mismatch"}.get(row.status)
    return SourceDeposit(
        kind="card",
        key=(row.id,),
        user_id=row.user_id,
        asset=row.currency,
        network=CARD_NETWORK,
        amount=row.amount,
        amount_text=None,
        status=row.status,
        reason=reason,
        at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
        reference=row.id,
        credited_seq=row.credited_seq,
    )


def _bound(query: Any, at: Any, key: Any, before: Before | None) -> Any:
    if before is None:
        return query
    if before.key is None:
        return query.where(at < before.at_ms)
    # ``at <= t`` first: a range on the (user, time) index; the OR only trims the ties
    return query.where(
        at <= before.at_ms,
        sa.or_(
            at < before.at_ms,
            sa.and_(at == before.at_ms, key < sa.tuple_(*[sa.literal(k) for k in before.key])),
        ),
    )


class SqlDepositHistoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def chain_deposits(self, q: SourceQuery) -> Sequence[SourceDeposit]:
        r = ChainDepositRow
        query = sa.select(r)
        if q.user_id is not None:
            query = query.where(r.user_id == q.user_id)
        if q.asset is not None:
            query = query.where(r.asset == q.asset)
        if q.network is not None:
            query = query.where(r.network == q.network)
        if q.statuses is not None:
            query = query.where(r.status.in_(q.statuses))
        query = _bound(query, r.seen_at_ms, sa.tuple_(r.network, r.txid, r.idx), q.before)
        query = query.order_by(
            r.seen_at_ms.desc(), r.network.desc(), r.txid.desc(), r.idx.desc()
        ).limit(q.limit)
        async with self._db.read() as session:
            return [_chain(row) for row in (await session.scalars(query)).all()]

    async def bank_deposits(self, q: SourceQuery) -> Sequence[SourceDeposit]:
        r = FiatLineRow
        query = sa.select(r)
        if q.user_id is not None:
            query = query.where(r.user_id == q.user_id)
        if q.asset is not None:
            query = query.where(r.currency == q.asset)
        if q.statuses is not None:
            query = query.where(r.status.in_(q.statuses))
        query = _bound(query, r.imported_at_ms, sa.tuple_(r.id), q.before)
        query = query.order_by(r.imported_at_ms.desc(), r.id.desc()).limit(q.limit)
        async with self._db.read() as session:
            return [_bank(row) for row in (await session.scalars(query)).all()]

    async def card_deposits(self, q: SourceQuery) -> Sequence[SourceDeposit]:
        r = CardIntentRow
        query = sa.select(r)
        if q.user_id is not None:
            query = query.where(r.user_id == q.user_id)
        if q.asset is not None:
            query = query.where(r.currency == q.asset)
        if q.statuses is not None:
            query = query.where(r.status.in_(q.statuses))
        query = _bound(query, r.created_at_ms, sa.tuple_(r.id), q.before)
        query = query.order_by(r.created_at_ms.desc(), r.id.desc()).limit(q.limit)
        async with self._db.read() as session:
            return [_card(row) for row in (await session.scalars(query)).all()]

    async def chain_deposit(self, network: str, txid: str, index: int) -> SourceDeposit | None:
        async with self._db.read() as session:
            row = await session.get(ChainDepositRow, (network, txid, index))
            return None if row is None else _chain(row)

    async def bank_deposit(self, line_id: int) -> SourceDeposit | None:
        async with self._db.read() as session:
            row = await session.get(FiatLineRow, line_id)
            return None if row is None else _bank(row)

    async def card_deposit(self, payment_id: str) -> SourceDeposit | None:
        async with self._db.read() as session:
            row = await session.get(CardIntentRow, payment_id)
            return None if row is None else _card(row)

    async def tips(self) -> Mapping[str, int]:
        async with self._db.read() as session:
            rows = await session.execute(
                sa.select(ChainBlockRow.network, sa.func.max(ChainBlockRow.number)).group_by(
                    ChainBlockRow.network
                )
            )
            return {network: int(number) for network, number in rows}
