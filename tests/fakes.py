"""In-memory fakes of the service ports, for unit tests of the services.

They keep the same contract as the SQL repositories (the contract tests in
tests/integration/test_sql_repositories.py run against them too), so a service test
that passes here means the same against SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from tradewind.services.audit import GENESIS, AuditEntry


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


@dataclass(frozen=True, slots=True)
class FakeUser:
    id: int
    email: str
    password_hash: str
    status: str
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class FakeApiKey:
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
    public_key: bytes | None = None


class MemoryUserRepository:
    def __init__(self) -> None:
        self.rows: dict[int, FakeUser] = {}
        self._ids = itertools.count(1)

    async def add(self, *, email: str, password_hash: str, created_at_ms: int) -> FakeUser | None:
        if any(user.email == email for user in self.rows.values()):
            return None
        user = FakeUser(next(self._ids), email, password_hash, "active", created_at_ms)
        self.rows[user.id] = user
        return user

    async def get(self, user_id: int) -> FakeUser | None:
        return self.rows.get(user_id)

    async def get_by_email(self, email: str) -> FakeUser | None:
        return next((user for user in self.rows.values() if user.email == email), None)

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        if user_id in self.rows:
            self.rows[user_id] = replace(self.rows[user_id], password_hash=password_hash)

    def set_status(self, user_id: int, status: str) -> None:
        self.rows[user_id] = replace(self.rows[user_id], status=status)


@dataclass(frozen=True, slots=True)
class FakeSession:
    id: int
    user_id: int
    token_hash: str
    created_at_ms: int
    expires_at_ms: int
    revoked_at_ms: int | None
    ip: str | None
    user_agent: str | None
    last_seen_at_ms: int


class MemorySessionRepository:
    """Sessions with their device (ip, user agent, last seen): the contract of
    ``DeviceSessionRepository``, a superset of the plain ``SessionRepository``."""

    def __init__(self) -> None:
        self.rows: dict[int, FakeSession] = {}
        self._ids = itertools.count(1)

    async def add(
        self,
        *,
        user_id: int,
        token_hash: str,
        created_at_ms: int,
        expires_at_ms: int,
        ip: str | None,
        user_agent: str | None,
    ) -> FakeSession:
        s = FakeSession(
            next(self._ids),
            user_id,
            token_hash,
            created_at_ms,
            expires_at_ms,
            None,
            ip,
            user_agent,
            created_at_ms,
        )
        self.rows[s.id] = s
        return s

    def _live(self, s: FakeSession, user_id: int, now_ms: int) -> bool:
        return s.user_id == user_id and s.revoked_at_ms is None and s.expires_at_ms > now_ms

    async def get_by_token_hash(self, token_hash: str) -> FakeSession | None:
        return next((s for s in self.rows.values() if s.token_hash == token_hash), None)

    async def get_by_id(self, session_id: int) -> FakeSession | None:
        return self.rows.get(session_id)

    async def revoke(self, token_hash: str, revoked_at_ms: int) -> bool:
        for s in self.rows.values():
            if s.token_hash == token_hash and s.revoked_at_ms is None:
                self.rows[s.id] = replace(s, revoked_at_ms=revoked_at_ms)
                return True
        return False

    async def revoke_all(self, user_id: int, revoked_at_ms: int) -> int:
        live = [s for s in self.rows.values() if self._live(s, user_id, revoked_at_ms)]
        for s in live:
            self.rows[s.id] = replace(s, revoked_at_ms=revoked_at_ms)
        return len(live)

    async def list_active(self, user_id: int, now_ms: int) -> Sequence[FakeSession]:
        live = [s for s in self.rows.values() if self._live(s, user_id, now_ms)]
        return sorted(live, key=lambda s: -s.id)

    async def delete_expired(self, before_ms: int) -> int:
        dead = [
            s.id
            for s in self.rows.values()
            if s.expires_at_ms < before_ms
            or (s.revoked_at_ms is not None and s.revoked_at_ms < before_ms)
        ]
        for session_id in dead:
            del self.rows[session_id]
        return len(dead)

    async def touch(self, session_id: int, now_ms: int) -> None:
        s = self.rows.get(session_id)
        if s is not None and s.last_seen_at_ms < now_ms:
            self.rows[session_id] = replace(s, last_seen_at_ms=now_ms)

    async def revoke_by_id(self, user_id: int, session_id: int, revoked_at_ms: int) -> bool:
        s = self.rows.get(session_id)
        if s is None or not self._live(s, user_id, revoked_at_ms):
            return False
        self.rows[session_id] = replace(s, revoked_at_ms=revoked_at_ms)
        return True

    async def revoke_others(self, user_id: int, keep_session_id: int, revoked_at_ms: int) -> int:
        others = [
            s
            for s in self.rows.values()
            if s.id != keep_session_id and self._live(s, user_id, revoked_at_ms)
        ]
        for s in others:
            self.rows[s.id] = replace(s, revoked_at_ms=revoked_at_ms)
        return len(others)

    async def seen_device(self, user_id: int, ip: str | None, user_agent: str | None) -> bool:
        return any(
            s.user_id == user_id and s.ip == ip and s.user_agent == user_agent
            for s in self.rows.values()
        )

    async def count_all(self, user_id: int) -> int:
        return sum(1 for s in self.rows.values() if s.user_id == user_id)


class MemoryApiKeyRepository:
    def __init__(self) -> None:
        self.rows: dict[str, FakeApiKey] = {}

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
    ) -> FakeApiKey:
        if key_id in self.rows:
            raise ValueError(f"duplicate key id {key_id}")
        key = FakeApiKey(
            key_id,
            user_id,
            label,
            permissions,
            ip_allowlist,
            secret_sealed,
            created_at_ms,
            None,
            expires_at_ms,
            key_type,
            public_key,
        )
        self.rows[key_id] = key
        return key

    async def get(self, key_id: str) -> FakeApiKey | None:
        return self.rows.get(key_id)

    async def list_active(self, user_id: int) -> Sequence[FakeApiKey]:
        return [k for k in self.rows.values() if k.user_id == user_id and k.revoked_at_ms is None]

    async def count_active(self, user_id: int) -> int:
        return len(await self.list_active(user_id))

    async def revoke(self, user_id: int, key_id: str, revoked_at_ms: int) -> bool:
        key = self.rows.get(key_id)
        if key is None or key.user_id != user_id or key.revoked_at_ms is not None:
            return False
        self.rows[key_id] = replace(key, revoked_at_ms=revoked_at_ms)
        return True


class MemoryAuditStore:
    """The audit chain in a list. ``hold()`` makes every append wait until ``release()``,
    to show which callers wait for the audit write and which do not."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []
        self.appends_started = 0
        self._open = asyncio.Event()
        self._open.set()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def append(self, build: Callable[[int, str], AuditEntry]) -> AuditEntry:
        self.appends_started += 1
        await self._open.wait()
        head = self.entries[-1] if self.entries else None
        entry = build(head.seq + 1 if head else 1, head.hash if head else GENESIS)
        self.entries.append(entry)
        return entry

    async def read(self, after_seq: int, limit: int) -> Sequence[AuditEntry]:
        return [e for e in self.entries if e.seq > after_seq][:limit]

    async def list_recent(
        self, *, limit: int, before_seq: int | None = None, subject_id: int | None = None
    ) -> Sequence[AuditEntry]:
        found = [
            e
            for e in reversed(self.entries)
            if (before_seq is None or e.seq < before_seq)
            and (subject_id is None or e.subject_id == subject_id)
        ]
        return found[:limit]
