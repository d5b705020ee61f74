"""Declarative base and the one ``MetaData`` every table of the SQL adapter lives in.

Invariant: every constraint and index gets a deterministic name from the naming
convention below, so Alembic's batch mode (SQLite recreates a table to alter it) and
PostgreSQL refer to the same constraint by the same name in every migration.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every mapped row class."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
