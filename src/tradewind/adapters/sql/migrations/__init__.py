"""Alembic migrations of the SQL adapter (one history for SQLite and PostgreSQL).

Run them with :func:`tradewind.adapters.sql.migrate.upgrade`; see docs/persistence.md.
"""
