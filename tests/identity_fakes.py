"""In-memory fakes of the identity ports (:mod:`tradewind.services.identity_ports`,
:class:`tradewind.services.mail.Outbox`), with the same contract as the SQL adapters
(tests/integration/test_identity_sql.py runs the same checks against both). Users and
sessions, shared with the older ports, are in tests/fakes.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from tests.fakes import MemoryUserRepository
from tradewind.services.mail import Mail


@dataclass(frozen=True, slots=True)
class FakeIdentity:
    user_id: int
    email: str
    email_verified_at_ms: int | None = None
    anti_phishing_code: str | None = None
    totp_secret_sealed: bytes | None = None
    totp_pending_sealed: bytes | None = None
    totp_last_step: int | None = None


class MemoryIdentityUsers(MemoryUserRepository):
    """Users with their identity columns (the SQL adapter keeps both in ``users``)."""

    def __init__(self) -> None:
        super().__init__()
        self.extra: dict[int, FakeIdentity] = {}
        self.recovery: dict[int, dict[str, int | None]] = {}

    def _identity(self, user_id: int) -> FakeIdentity | None:
        user = self.rows.get(user_id)
        if user is None:
            return None
        base = self.extra.get(user_id) or FakeIdentity(user_id, user.email)
        return replace(base, email=user.email)

    async def get_identity(self, user_id: int) -> FakeIdentity | None:
        return self._identity(user_id)

    def _put(self, user_id: int, **changes: object) -> None:
        current = self._identity(user_id)
        if current is not None:
            self.extra[user_id] = replace(current, **changes)  # type: ignore[arg-type]

    async def mark_email_verified(self, user_id: int, email: str, at_ms: int) -> bool:
        current = self._identity(user_id)
        if current is None or current.email != email:
            return False
        if current.email_verified_at_ms is None:
            self._put(user_id, email_verified_at_ms=at_ms)
        return True

    async def change_email(self, user_id: int, email: str, at_ms: int) -> bool:
        if any(u.email == email and u.id != user_id for u in self.rows.values()):
            return False
        if user_id not in self.rows:
            return False
        self.rows[user_id] = replace(self.rows[user_id], email=email)
        self._put(user_id, email_verified_at_ms=at_ms)
        return True

    async def set_anti_phishing_code(self, user_id: int, code: str | None) -> None:
        self._put(user_id, anti_phishing_code=code)

    async def set_totp_pending(self, user_id: int, sealed: bytes | None) -> None:
        self._put(user_id, totp_pending_sealed=sealed)

    async def enable_totp(
        self, user_id: int, sealed: bytes, step: int, recovery_hashes: Sequence[str]
    ) -> bool:
        current = self._identity(user_id)
        if (
            current is None
            or current.totp_pending_sealed != sealed
            or current.totp_secret_sealed is not None
        ):
            return False
        self._put(user_id, totp_secret_sealed=sealed, totp_pending_sealed=None, totp_last_step=step)
        self.recovery[user_id] = dict.fromkeys(recovery_hashes)
        return True

    async def disable_totp(self, user_id: int) -> None:
        self._put(user_id, totp_secret_sealed=None, totp_pending_sealed=None, totp_last_step=None)
        self.recovery.pop(user_id, None)

    async def advance_totp_step(self, user_id: int, step: int) -> bool:
        current = self._identity(user_id)
        if current is None or current.totp_secret_sealed is None:
            return False
        if current.totp_last_step is not None and current.totp_last_step >= step:
            return False
        self._put(user_id, totp_last_step=step)
        return True

    async def use_recovery_code(self, user_id: int, code_hash: str, at_ms: int) -> bool:
        codes = self.recovery.get(user_id, {})
        if code_hash not in codes or codes[code_hash] is not None:
            return False
        codes[code_hash] = at_ms
        return True

    async def count_recovery_codes(self, user_id: int) -> int:
        return sum(1 for used in self.recovery.get(user_id, {}).values() if used is None)


@dataclass
class FakeToken:
    user_id: int
    purpose: str
    expires_at_ms: int
    used_at_ms: int | None = None


class MemoryTokenRepository:
    def __init__(self) -> None:
        self.rows: dict[str, FakeToken] = {}

    async def add(
        self, *, jti: str, user_id: int, purpose: str, created_at_ms: int, expires_at_ms: int
    ) -> None:
        self.rows[jti] = FakeToken(user_id, purpose, expires_at_ms)

    async def consume(self, jti: str, purpose: str, user_id: int, now_ms: int) -> bool:
        t = self.rows.get(jti)
        if (
            t is None
            or t.purpose != purpose
            or t.user_id != user_id
            or t.used_at_ms is not None
            or t.expires_at_ms <= now_ms
        ):
            return False
        t.used_at_ms = now_ms
        return True

    async def revoke_all(self, user_id: int, purpose: str, now_ms: int) -> None:
        for t in self.rows.values():
            if t.user_id == user_id and t.purpose == purpose and t.used_at_ms is None:
                t.used_at_ms = now_ms


@dataclass
class FakeThrottle:
    failures: int
    last_failure_ms: int
    locked_until_ms: int = 0


class MemoryLoginThrottleRepository:
    def __init__(self) -> None:
        self.rows: dict[str, FakeThrottle] = {}

    async def get(self, key: str) -> FakeThrottle | None:
        return self.rows.get(key)

    async def add_failure(self, key: str, now_ms: int, forget_before_ms: int) -> int:
        row = self.rows.get(key)
        if row is None:
            self.rows[key] = row = FakeThrottle(0, now_ms)
        row.failures = 1 if row.last_failure_ms < forget_before_ms else row.failures + 1
        row.last_failure_ms = now_ms
        return row.failures

    async def lock(self, key: str, until_ms: int) -> None:
        row = self.rows.get(key)
        if row is not None and row.locked_until_ms < until_ms:
            row.locked_until_ms = until_ms

    async def clear(self, key: str) -> None:
        self.rows.pop(key, None)


@dataclass(frozen=True, slots=True)
class FakeMail:
    id: int
    to: str
    subject: str
    body: str
    kind: str
    created_at_ms: int
    sent_at_ms: int | None = None


@dataclass
class MemoryOutbox:
    mails: list[FakeMail] = field(default_factory=list)

    async def put(self, mail: Mail, created_at_ms: int) -> int:
        record = FakeMail(
            len(self.mails) + 1, mail.to, mail.subject, mail.body, mail.kind, created_at_ms
        )
        self.mails.append(record)
        return record.id

    async def recent(self, limit: int, to: str | None = None) -> Sequence[FakeMail]:
        found = [m for m in reversed(self.mails) if to is None or m.to == to]
        return found[:limit]

    def last(self, to: str, kind: str | None = None) -> FakeMail:
        for mail in reversed(self.mails):
            if mail.to == to and (kind is None or mail.kind == kind):
                return mail
        raise AssertionError(f"no {kind or 'mail'} to {to}")
