"""The PostgreSQL ``NOTIFY`` that tells every API replica an auth fact changed (ADR 0045).

Invariants:
- every write of an API key's validity (revocation) and of an account's frozen flag
  sends :data:`AUTH_CHANNEL` in the same transaction, so it is delivered exactly when
  that write commits (and not at all if it rolls back); it is sent by the SQL adapter
  itself (``SqlApiKeyRepository.revoke``, ``SqlAdminStore.freeze``/``unfreeze``), so
  no caller (REST route, service, admin CLI) can write without it;
- the payload is ``key:<key_id>`` or ``user:<user_id>``; a listener that cannot read a
  payload forgets everything (runtime/authcache.py);
- on SQLite nothing is sent (embedded mode: one process, exact caches of its own).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

AUTH_CHANNEL = "tradewind_auth"
"""The ``NOTIFY`` channel of API-key and account-freeze changes (channels are per database)."""


def key_payload(key_id: str) -> str:
    return f"key:{key_id}"


def user_payload(user_id: int) -> str:
    return f"user:{user_id}"


async def notify_auth(session: AsyncSession, payload: str) -> None:
    """Queue the notification in ``session``'s transaction (PostgreSQL only)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    await session.execute(sa.select(sa.func.pg_notify(AUTH_CHANNEL, payload)))
