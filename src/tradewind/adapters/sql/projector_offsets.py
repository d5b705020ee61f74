"""``projector_offsets``: where each projector stopped, advanced in its own transaction.

Invariant: a projector calls :func:`advance_offset` in the *same* transaction as the
rows it writes for events up to ``seq``, so after any crash the stored offset and the
projected rows agree, and it resumes with the first event after ``last_seq``. Offsets
only move forward; moving one back is a bug and raises.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import rowcount


class ProjectorOffsetRow(Base):
    __tablename__ = "projector_offsets"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    last_seq: Mapped[int] = mapped_column(sa.BigInteger)
    updated_ts: Mapped[int] = mapped_column(sa.BigInteger)
    """The ``ts`` of the command at ``last_seq`` (not a wall-clock time)."""


class OffsetWentBackwards(Exception):
    """A projector tried to store an offset at or before the stored one."""


async def get_offset(session: AsyncSession, name: str) -> int:
    """The last applied ``seq`` of projector ``name``; 0 if it never ran."""
    value = await session.scalar(
        sa.select(ProjectorOffsetRow.last_seq).where(ProjectorOffsetRow.name == name)
    )
    return 0 if value is None else int(value)


async def advance_offset(session: AsyncSession, name: str, seq: int, ts: int) -> None:
    """Record that projector ``name`` applied every event up to ``seq`` (inclusive)."""
    result = await session.execute(
        sa.update(ProjectorOffsetRow)
        .where(ProjectorOffsetRow.name == name, ProjectorOffsetRow.last_seq < seq)
        .values(last_seq=seq, updated_ts=ts)
    )
    if rowcount(result) == 1:
        return
    current = await session.scalar(
        sa.select(ProjectorOffsetRow.last_seq).where(ProjectorOffsetRow.name == name)
    )
    if current is not None:
        raise OffsetWentBackwards(f"projector {name!r} is at {current}, cannot store {seq}")
    session.add(ProjectorOffsetRow(name=name, last_seq=seq, updated_ts=ts))
    await session.flush()
