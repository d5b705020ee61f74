"""The ``deposit_addresses`` table and the SQL ``DepositAddressStore``
(services/funding/ports.py).

Invariants:
- one row per (user, network) (primary key): the first address stored is the user's
  address on that network for good; a racing second insert fails on the key and the
  store returns the row that won;
- an address belongs to one user per network (unique ``(network, address)``), so a
  watcher maps a deposit to exactly one account.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database
from tradewind.adapters.sql.types import user_key
from tradewind.services.funding.ports import StoredDepositAddress


class DepositAddressRow(Base):
    __tablename__ = "deposit_addresses"
    __table_args__ = (sa.UniqueConstraint("network", "address"),)

    user_id: Mapped[int] = user_key()
    network: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    address: Mapped[str] = mapped_column(sa.String(100))
    path: Mapped[str] = mapped_column(sa.String(32))
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)


_IN_CHUNK = 500
"""Addresses per ``IN (...)`` query (SQLite and asyncpg cap bound parameters)."""


def _record(row: DepositAddressRow) -> StoredDepositAddress:
    return StoredDepositAddress(row.user_id, row.network, row.address, row.path, row.created_at_ms)


class SqlDepositAddressStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, user_id: int, network: str) -> StoredDepositAddress | None:
        async with self._db.read() as session:
            row = await session.get(DepositAddressRow, (user_id, network))
            return None if row is None else _record(row)

    async def put_if_absent(self, record: StoredDepositAddress) -> StoredDepositAddress:
        try:
            async with self._db.write() as session:
                existing = await session.get(DepositAddressRow, (record.user_id, record.network))
                if existing is not None:
                    return _record(existing)
                session.add(
                    DepositAddressRow(
                        user_id=record.user_id,
                        network=record.network,
                        address=record.address,
                        path=record.path,
                        created_at_ms=record.created_at_ms,
                    )
                )
            return record
        except IntegrityError:
            won = await self.get(record.user_id, record.network)
            if won is None:  # not a race on the key: the address is someone else's
                raise
            return won

    async def owner_of(self, network: str, address: str) -> int | None:
        async with self._db.read() as session:
            return await session.scalar(
                sa.select(DepositAddressRow.user_id).where(
                    DepositAddressRow.network == network, DepositAddressRow.address == address
                )
            )

    async def owners_of(self, network: str, addresses: Collection[str]) -> dict[str, int]:
        wanted = sorted(set(addresses))
        owners: dict[str, int] = {}
        async with self._db.read() as session:
            for i in range(0, len(wanted), _IN_CHUNK):
                rows = await session.execute(
                    sa.select(DepositAddressRow.address, DepositAddressRow.user_id).where(
                        DepositAddressRow.network == network,
                        DepositAddressRow.address.in_(wanted[i : i + _IN_CHUNK]),
                    )
                )
                owners.update({address: user for address, user in rows})
        return owners
