"""``api_keys`` table and the SQL ``ApiKeyRepository``.

Invariant: the HMAC secret is stored only sealed (AES-GCM under the master key, bound to
the key id; see docs/adr/0005-api-key-secrets.md); an Ed25519 key stores only its public
key (``key_type = 'ed25519'``, ``secret_sealed`` empty); a revoked key keeps its row (for
audit) with ``revoked_at_ms`` set and is never valid again; an expired one
(``expires_at_ms``) stays too, and the service refuses it; a key's other columns never
change after it is added. A revocation sends ``NOTIFY tradewind_auth 'key:<key_id>'`` in
its transaction on PostgreSQL (adapters/sql/auth_notify.py, ADR 0045).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradewind.adapters.sql.auth_notify import key_payload, notify_auth
from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.engine import Database, rowcount
from tradewind.adapters.sql.types import ID


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    __table_args__ = (sa.Index(None, "user_id", "revoked_at_ms"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("users.id", ondelete="CASCADE")
    )
    label: Mapped[str] = mapped_column(sa.String(64))
    permissions: Mapped[list[str]] = mapped_column(sa.JSON)
    ip_allowlist: Mapped[list[str] | None] = mapped_column(sa.JSON)
    secret_sealed: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at_ms: Mapped[int] = mapped_column(sa.BigInteger)
    revoked_at_ms: Mapped[int | None] = mapped_column(sa.BigInteger)
    expires_at_ms: Mapped[int | None] = mapped_column(sa.BigInteger)
    key_type: Mapped[str] = mapped_column(sa.String(16), server_default="hmac")
    public_key: Mapped[bytes | None] = mapped_column(sa.LargeBinary)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An ``ApiKeyRecord``."""

    key_id: str
    user_id: int
    label: str
    permissions: frozenset[str]
    ip_allowlist: tuple[str, ...] | None
    secret_sealed: bytes
    created_at_ms: int
    revoked_at_ms: int | None
    expires_at_ms: int | None = None
    key_type: str = "hmac"
    """``hmac`` (``secret_sealed`` holds the secret) or ``ed25519`` (``public_key``)."""
    public_key: bytes | None = None


def _api_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        user_id=row.user_id,
        label=row.label,
        permissions=frozenset(row.permissions),
        ip_allowlist=None if row.ip_allowlist is None else tuple(row.ip_allowlist),
        secret_sealed=bytes(row.secret_sealed),
        created_at_ms=row.created_at_ms,
        revoked_at_ms=row.revoked_at_ms,
        expires_at_ms=row.expires_at_ms,
        key_type=row.key_type,
        public_key=None if row.public_key is None else bytes(row.public_key),
    )


class SqlApiKeyRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        *,
        key_id: str,
        user_id: int,
        label: str,
        permissions: frozenset[str],
        ip_allowlist: tuple[str, ...] | None,
        secret_sealed: bytes,
        created_at_ms: int,
        expires_at_ms: int | None = None,
        key_type: str = "hmac",
        public_key: bytes | None = None,
    ) -> ApiKey:
        row = ApiKeyRow(
            key_id=key_id,
            user_id=user_id,
            label=label,
            permissions=sorted(permissions),
            ip_allowlist=None if ip_allowlist is None else list(ip_allowlist),
            secret_sealed=secret_sealed,
            created_at_ms=created_at_ms,
            expires_at_ms=expires_at_ms,
            key_type=key_type,
            public_key=public_key,
        )
        async with self._db.write() as session:
            session.add(row)
            await session.flush()
        return _api_key(row)

    async def get(self, key_id: str) -> ApiKey | None:
        async with self._db.read() as session:
            row = await session.scalar(sa.select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
            return None if row is None else _api_key(row)

    async def list_active(self, user_id: int) -> Sequence[ApiKey]:
        async with self._db.read() as session:
            rows = await session.scalars(
                sa.select(ApiKeyRow)
                .where(ApiKeyRow.user_id == user_id, ApiKeyRow.revoked_at_ms.is_(None))
                .order_by(ApiKeyRow.id)
            )
            return [_api_key(row) for row in rows]

    async def count_active(self, user_id: int) -> int:
        async with self._db.read() as session:
            count = await session.scalar(
                sa.select(sa.func.count())
                .select_from(ApiKeyRow)
                .where(ApiKeyRow.user_id == user_id, ApiKeyRow.revoked_at_ms.is_(None))
            )
            return int(count or 0)

    async def revoke(self, user_id: int, key_id: str, revoked_at_ms: int) -> bool:
        async with self._db.write() as session:
            result = await session.execute(
                sa.update(ApiKeyRow)
                .where(
                    ApiKeyRow.key_id == key_id,
                    ApiKeyRow.user_id == user_id,
                    ApiKeyRow.revoked_at_ms.is_(None),
                )
                .values(revoked_at_ms=revoked_at_ms)
            )
            revoked = rowcount(result) > 0
            if revoked:  # delivered at commit: every replica drops its cached key
                await notify_auth(session, key_payload(key_id))
            return revoked
