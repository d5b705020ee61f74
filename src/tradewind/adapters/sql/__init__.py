"""SQL adapter: SQLAlchemy 2 async models, repositories and Alembic migrations.

Invariant: the same models and the same migrations serve SQLite (embedded mode,
``sqlite+aiosqlite:///path``) and PostgreSQL (distributed mode,
``postgresql+asyncpg://...``). Services never import this package; the runtime wires
its repositories into the ports of :mod:`tradewind.services.ports`.
"""

from __future__ import annotations

from tradewind.adapters.sql.api_keys import SqlApiKeyRepository
from tradewind.adapters.sql.engine import Database, create_engine, normalise_url
from tradewind.adapters.sql.migrate import upgrade, upgrade_async
from tradewind.adapters.sql.sessions import SqlSessionRepository
from tradewind.adapters.sql.users import SqlUserRepository

__all__ = [
    "Database",
    "SqlApiKeyRepository",
    "SqlSessionRepository",
    "SqlUserRepository",
    "create_engine",
    "normalise_url",
    "upgrade",
    "upgrade_async",
]
