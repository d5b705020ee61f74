"""Statements of the projectors' tables as SQL text built once from the mapped tables,
for the writers that bypass SQLAlchemy's per-statement work (ADR 0042 on SQLite,
ADR 0046 on PostgreSQL).

Invariant: a :class:`TableText` binds and reads each column exactly as SQLAlchemy would
on the same dialect: its conversions are the column types' own processors for that
dialect (``MinorUnits``: decimal text on SQLite, ``Decimal`` on asyncpg, both checked
for 38 digits), so the rows equal those the ORM path writes, which tests compare.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from tradewind.adapters.sql.base import Base

Processor = Callable[[Any], Any]


PG_NUMERIC_OID = 1700


def _type_code(dialect: Dialect, column_type: sa.types.TypeEngine[Any]) -> int | None:
    """The type code a cursor would report for the column (asyncpg's numeric result
    processor needs it; the others ignore it)."""
    base = getattr(column_type, "impl_instance", column_type)
    if dialect.name == "postgresql" and isinstance(base, sa.Numeric):
        return PG_NUMERIC_OID
    return None


class TableText:
    """One mapped table's columns as SQL text (``?`` or ``$n`` parameters), and the
    conversions SQLAlchemy would apply to each column on ``dialect``."""

    def __init__(
        self,
        entity: type[Base],
        columns: Sequence[str],
        dialect: Dialect,
        *,
        numbered: bool = False,
    ) -> None:
        table = cast(sa.Table, entity.__table__)
        self.name = table.name
        self.columns = tuple(columns)
        types = [table.c[name].type.dialect_impl(dialect) for name in self.columns]
        self._get = attrgetter(*self.columns)
        self._binds = [
            (i, p) for i, t in enumerate(types) if (p := t.bind_processor(dialect)) is not None
        ]
        self._results = [
            (i, p)
            for i, (name, t) in enumerate(zip(self.columns, types, strict=True))
            if (p := t.result_processor(dialect, _type_code(dialect, table.c[name].type)))
            is not None
        ]
        n = len(self.columns)
        marks = [f"${i}" for i in range(1, n + 1)] if numbered else ["?"] * n
        self.select = f"SELECT {', '.join(self.columns)} FROM {self.name}"
        self.insert = (
            f"INSERT INTO {self.name} ({', '.join(self.columns)}) VALUES ({', '.join(marks)})"
        )

    def upsert(self, key: str) -> str:
        """INSERT, or on a conflict of ``key`` overwrite every other column."""
        sets = ", ".join(f"{c} = excluded.{c}" for c in self.columns if c != key)
        return f"{self.insert} ON CONFLICT ({key}) DO UPDATE SET {sets}"

    def params(self, objects: Iterable[object]) -> list[Sequence[Any]]:
        """Each object's attributes of the same names as the columns, bound."""
        get, binds = self._get, self._binds
        if not binds:
            return [get(o) for o in objects]
        out: list[Sequence[Any]] = []
        for o in objects:
            row = list(get(o))
            for i, proc in binds:
                row[i] = proc(row[i])
            out.append(row)
        return out

    def values(self, row: Sequence[Any]) -> dict[str, Any]:
        """A fetched row as column name -> Python value."""
        if self._results:
            row = list(row)
            for i, proc in self._results:
                row[i] = proc(row[i])
        return dict(zip(self.columns, row, strict=True))
