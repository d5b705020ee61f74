"""What every projector shares: the idempotency rule, errors, and the symbol table.

The rule (DESIGN §3): a projector applies the events of command ``seq`` exactly once.
It stores the last applied seq (its offset) in the same transaction as the rows those
events produced. Fed a run of batches, it skips every batch with ``seq <= offset``
(already applied: a no-op) and requires the rest to continue the offset without a hole
(``offset + 1, offset + 2, ...``); a hole raises :class:`SeqGap` before anything is
written, and the caller must replay the missing commands (from the journal, see
:meth:`~tradewind.services.projectors.runner.ProjectorRunner.catch_up`).

Projectors may cache state derived from their tables (symbols, open holds) between
transactions. A cache is tagged with the offset it reflects and used only when the
offset read at the start of the next transaction is the same, and it is dropped while a
transaction runs, so a rolled-back transaction or another process advancing the same
projector never leaves a stale cache behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tradewind.core.events import SymbolAdded
from tradewind.services.projectors.ports import Batch, SymbolInfo, SymbolsTx


class ProjectionError(Exception):
    """The events do not fit the projection (e.g. an order nobody accepted, a hold going
    negative): the projector stops rather than write a wrong ledger."""


class SeqGap(ProjectionError):
    """A batch does not follow the projector's offset: commands are missing."""

    def __init__(self, name: str, offset: int, seq: int) -> None:
        self.name = name
        self.offset = offset
        self.seq = seq
        super().__init__(
            f"projector {name!r} is at seq {offset} and was given seq {seq}: "
            f"replay seqs {offset + 1}..{seq - 1} from the journal first"
        )


class Projector(Protocol):
    """A consumer of core events that keeps its own offset."""

    @property
    def name(self) -> str:
        """The key of its offset (unique per projector and database)."""
        ...

    async def offset(self) -> int:
        """The last applied seq (0 if it never ran)."""
        ...

    async def apply(self, batches: Sequence[Batch]) -> int:
        """Apply, in one transaction, the batches after the offset; returns the new offset.

        ``batches`` are in seq order. Those with ``seq <= offset`` are skipped; the rest
        must be ``offset + 1, offset + 2, ...`` or :class:`SeqGap` is raised and nothing
        is written."""
        ...


def pending(name: str, offset: int, batches: Sequence[Batch]) -> Sequence[Batch]:
    """The batches of ``batches`` after ``offset``, checked to continue it without a hole."""
    start = 0
    n = len(batches)
    while start < n and batches[start].seq <= offset:
        start += 1
    expected = offset + 1
    for batch in batches[start:]:
        if batch.seq != expected:
            raise SeqGap(name, expected - 1, batch.seq)
        expected += 1
    return batches[start:]


class SymbolTable:
    """Symbols learnt from ``SymbolAdded``: ``symbol -> (base, quote)``.

    Within a transaction, :meth:`learn` records a new symbol; :meth:`flush` writes what
    was learnt (insert-if-absent, so projectors sharing the table never conflict).
    """

    __slots__ = ("_new", "markets")

    def __init__(self, known: Sequence[SymbolInfo]) -> None:
        self.markets: dict[str, tuple[str, str]] = {s.symbol: (s.base, s.quote) for s in known}
        self._new: list[SymbolInfo] = []

    def learn(self, e: SymbolAdded) -> None:
        if e.symbol not in self.markets:
            self.markets[e.symbol] = (e.base, e.quote)
            self._new.append(SymbolInfo(e.symbol, e.base, e.quote, e.tick_size, e.lot_size))

    def assets(self, symbol: str) -> tuple[str, str]:
        """``(base, quote)`` of ``symbol``."""
        try:
            return self.markets[symbol]
        except KeyError:
            raise ProjectionError(f"event for symbol {symbol!r} before its SymbolAdded") from None

    async def flush(self, tx: SymbolsTx) -> None:
        if self._new:
            await tx.add_symbols(self._new)
            self._new = []
