"""The ``funding_switches`` table and the SQL ``FundingSwitchStore``
(services/funding/switches.py, ADR 0032).

Invariant: one row per (network, asset), replaced whole by each switch (both flags, who
and when); no row means the config's flags hold. The history of switches is the audit
log's, not this table's.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database
from tradewind.services.funding.switches import FundingSwitch


class FundingSwitchRow(Base):
    __tablename__ = "funding_switches"

    network: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    asset: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    deposit_enabled: Mapped[bool] = mapped_column(sa.Boolean)
    withdrawal_enabled: Mapped[bool] = mapped_column(sa.Boolean)
    updated_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    updated_by: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)


class SqlFundingSwitchStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> Sequence[FundingSwitch]:
        async with self._db.read() as session:
            rows = (await session.scalars(sa.select(FundingSwitchRow))).all()
            return [
                FundingSwitch(
                    r.network,
                    r.asset,
                    r.deposit_enabled,
                    r.withdrawal_enabled,
                    r.updated_at_ms,
                    r.updated_by,
                )
                for r in rows
            ]

    async def put(self, switch: FundingSwitch) -> None:
        async with self._db.write() as session:
            await session.merge(
                FundingSwitchRow(
                    network=switch.network,
                    asset=switch.asset,
                    deposit_enabled=switch.deposit_enabled,
                    withdrawal_enabled=switch.withdrawal_enabled,
                    updated_at_ms=switch.updated_at_ms,
                    updated_by=switch.updated_by,
                )
            )
