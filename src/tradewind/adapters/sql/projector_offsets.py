"""``projector_offsets``: where each projector stopped, advanced in its own transaction.

Invariants:
- a projector calls :func:`advance_offset` in the *same* transaction as the rows it
  writes for events up to ``seq``, so after any crash the stored offset and the
  projected rows agree, and it resumes with the first event after ``last_seq``;
- offsets only move forward; moving one back is a bug and raises
  :class:`OffsetWentBackwards` (and the transaction is rolled back);
- inside :func:`shared_offsets` (one transaction for several projectors, ADR 0044),
  :func:`get_offset` and :func:`advance_offset` on *that* transaction's session serve
  the named projectors from rows read once at its start (``FOR UPDATE`` on PostgreSQL:
  a second process running the same projectors waits there, then reads what the first
  committed) and write every advanced offset in one statement at its end, before the
  commit. Any other session (a read, another transaction) reads the table as usual.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database, rowcount


class ProjectorOffsetRow(Base):
    __tablename__ = "projector_offsets"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    last_seq: Mapped[int] = mapped_column(sa.BigInteger)
    updated_ts: Mapped[int] = mapped_column(sa.BigInteger)
    """The ``ts`` of the command at ``last_seq`` (not a wall-clock time)."""


class OffsetWentBackwards(Exception):
    """A projector tried to store an offset at or before the stored one."""


_UPSERT_PG = sa.text(
    "WITH stored AS ("
    " INSERT INTO projector_offsets AS o (name, last_seq, updated_ts)"
    " SELECT * FROM unnest(CAST(:names AS varchar[]), CAST(:seqs AS bigint[]),"
    " CAST(:tss AS bigint[]))"
    " ON CONFLICT (name) DO UPDATE"
    " SET last_seq = excluded.last_seq, updated_ts = excluded.updated_ts"
    " WHERE o.last_seq < excluded.last_seq"
    " RETURNING 1"
    ") SELECT count(*) FROM stored"
)
"""Store several offsets, each only if it moves forward; answers how many it stored."""


class SharedOffsets:
    """The offsets of some projectors in one shared transaction (see the module doc):
    read at its start, advanced in memory, written by :meth:`write` at its end."""

    __slots__ = ("_advanced", "_stored", "names", "session")

    def __init__(self, session: AsyncSession, names: Collection[str], stored: dict[str, int]):
        self.session = session
        self.names = frozenset(names)
        self._stored = stored  # name -> last_seq of the rows that exist
        self._advanced: dict[str, tuple[int, int]] = {}  # name -> (seq, ts) to store

    def offset(self, name: str) -> int:
        advanced = self._advanced.get(name)
        if advanced is not None:
            return advanced[0]
        return self._stored.get(name, 0)

    def advance(self, name: str, seq: int, ts: int) -> None:
        current = self.offset(name)
        if seq <= current and (name in self._stored or name in self._advanced):
            raise OffsetWentBackwards(f"projector {name!r} is at {current}, cannot store {seq}")
        self._advanced[name] = (seq, ts)

    async def write(self) -> None:
        """Store every advanced offset with one upsert that only moves rows forward;
        raise :class:`OffsetWentBackwards` if a row refused (the caller rolls back)."""
        if not self._advanced:
            return
        rows = sorted(self._advanced.items())
        if self.session.get_bind().dialect.name == "postgresql":
            # one statement text whatever the number of rows: compiled and prepared once
            written = await self.session.scalar(  # count(*): never None
                _UPSERT_PG,
                {
                    "names": [name for name, _ in rows],
                    "seqs": [seq for _, (seq, _) in rows],
                    "tss": [ts for _, (_, ts) in rows],
                },
            )
        else:
            table = cast(sa.Table, ProjectorOffsetRow.__table__)
            insert = sqlite.insert(table)
            statement = insert.values(
                [{"name": name, "last_seq": seq, "updated_ts": ts} for name, (seq, ts) in rows]
            ).on_conflict_do_update(
                index_elements=[table.c.name],
                set_={
                    "last_seq": insert.excluded.last_seq,
                    "updated_ts": insert.excluded.updated_ts,
                },
                where=table.c.last_seq < insert.excluded.last_seq,
            )
            written = rowcount(await self.session.execute(statement))
        if written != len(self._advanced):
            stored = await _read(self.session, self._advanced, for_update=False)
            behind = {
                name: (stored.get(name), seq)
                for name, (seq, _) in self._advanced.items()
                if name in stored and stored[name] >= seq
            }
            raise OffsetWentBackwards(f"stored offsets ahead of these (stored, new): {behind}")
        self._stored.update({name: seq for name, (seq, _) in self._advanced.items()})
        self._advanced.clear()


_SHARED: ContextVar[SharedOffsets | None] = ContextVar("tradewind_shared_offsets", default=None)


def _shared(session: AsyncSession, name: str) -> SharedOffsets | None:
    shared = _SHARED.get()
    if shared is not None and shared.session is session and name in shared.names:
        return shared
    return None


async def _read(
    session: AsyncSession, names: Collection[str], *, for_update: bool
) -> dict[str, int]:
    row = ProjectorOffsetRow
    query = sa.select(row.name, row.last_seq).where(row.name.in_(sorted(names))).order_by(row.name)
    if for_update:
        query = query.with_for_update()
    return {name: int(seq) for name, seq in await session.execute(query)}


@asynccontextmanager
async def shared_offsets(
    session: AsyncSession, names: Collection[str]
) -> AsyncIterator[SharedOffsets]:
    """Serve the offsets of ``names`` in ``session``'s transaction from one read at the
    start (``FOR UPDATE`` on PostgreSQL, rows locked in name order) and store the
    advanced ones in one statement when the block ends normally (see the module doc).
    The caller commits after it, or rolls back on error."""
    postgres = session.get_bind().dialect.name == "postgresql"
    shared = SharedOffsets(session, names, await _read(session, names, for_update=postgres))
    token = _SHARED.set(shared)
    try:
        yield shared
        await shared.write()
    finally:
        _SHARED.reset(token)


@asynccontextmanager
async def shared_projection_transaction(
    db: Database, names: Collection[str], *, last: str | None = None
) -> AsyncIterator[None]:
    """:meth:`Database.one_transaction` in which projectors ``names`` read and store
    their offsets through :func:`shared_offsets` (ADR 0044). ``last``: an SQL statement
    run after the offsets are written, before the commit (the projector's NOTIFY)."""
    async with db.one_transaction(), db.write() as session:
        async with shared_offsets(session, names):
            yield
        if last is not None:
            await session.execute(sa.text(last))


async def get_offset(session: AsyncSession, name: str, *, for_update: bool = False) -> int:
    """The last applied ``seq`` of projector ``name``; 0 if it never ran. ``for_update``
    locks its row until the transaction ends (PostgreSQL only)."""
    shared = _shared(session, name)
    if shared is not None:
        return shared.offset(name)
    query = sa.select(ProjectorOffsetRow.last_seq).where(ProjectorOffsetRow.name == name)
    if for_update:
        query = query.with_for_update()
    value = await session.scalar(query)
    return 0 if value is None else int(value)


async def advance_offset(session: AsyncSession, name: str, seq: int, ts: int) -> None:
    """Record that projector ``name`` applied every event up to ``seq`` (inclusive)."""
    shared = _shared(session, name)
    if shared is not None:
        shared.advance(name, seq, ts)
        return
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
