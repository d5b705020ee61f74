"""Column types shared by the tables: exact money and portable surrogate keys.

Invariant: an amount in minor units goes in and comes out as the same Python ``int``,
for any value with ``abs(value) < 10**38``, on SQLite and on PostgreSQL. ``float`` is
never involved.

Why not ``BigInteger``: it stops at ``2**63 - 1`` (about 9.2e18): an 18-decimal token
(ETH, most ERC-20s) overflows it at 9.22 whole units, and 10**30 does not fit.
Why not plain ``Numeric(38, 0)`` everywhere: PostgreSQL's ``NUMERIC`` is exact, but
SQLite has no decimal type. A ``NUMERIC`` column there converts any value that does not
fit in 64 bits to an 8-byte float, and SQLAlchemy's pysqlite/aiosqlite ``Numeric`` binds
through ``float`` as well, so 10**30 + 1 would come back as 10**30. So amounts are
``NUMERIC(38, 0)`` on PostgreSQL (exact and summable in SQL) and ``VARCHAR(40)`` holding
the decimal digits on SQLite (exact; sum them in Python, never with SQLite's ``SUM``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import MappedColumn, mapped_column
from sqlalchemy.types import TypeEngine

MAX_DIGITS = 38
"""Amounts are bounded by ``abs(amount) < 10**MAX_DIGITS``."""

_LIMIT = 10**MAX_DIGITS

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""Surrogate primary key: BIGSERIAL on PostgreSQL, the rowid alias on SQLite (only an
``INTEGER PRIMARY KEY`` column auto-increments there)."""


def user_key() -> MappedColumn[int]:
    """A primary-key column that is a user's id (``users.id``): one row per user, deleted
    with the user. The tables of roles, freezes, KYC profiles and deposit addresses key
    on it."""
    return mapped_column(
        sa.BigInteger,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    )


MINOR_UNITS_DDL: TypeEngine[Any] = sa.Numeric(MAX_DIGITS, 0).with_variant(sa.String(40), "sqlite")
"""The DDL type of an amount column, also used by the migrations."""


class MinorUnits(sa.TypeDecorator[int]):
    """An integer amount in minor units, exact up to 38 digits on both databases."""

    impl = sa.Numeric(MAX_DIGITS, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(40))
        return dialect.type_descriptor(sa.Numeric(MAX_DIGITS, 0, asdecimal=True))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"amounts are int minor units, got {type(value).__name__}")
        if not -_LIMIT < value < _LIMIT:
            raise ValueError(f"amount {value} has more than {MAX_DIGITS} digits")
        if dialect.name == "sqlite":
            return str(value)
        return Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            return int(value)
        number = Decimal(value)
        if number != number.to_integral_value():
            raise ValueError(f"stored amount {value!r} is not an integer")
        return int(number)

    @property
    def python_type(self) -> type[int]:
        return int
