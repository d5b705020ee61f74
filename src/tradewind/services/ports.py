"""Ports: the small interfaces the application services depend on.

Invariant: services import only this module's Protocols, never an adapter. The
Protocols are structural, so an adapter (SQL, Redis, in-memory, a test fake) satisfies
them without importing them, and the dependency points from adapters to nothing:
runtime wiring is where a concrete adapter meets the port it fills.

Records returned by repositories are read-only views (Protocols of properties), so any
frozen dataclass with the right fields is one. Times are integer milliseconds since the
Unix epoch, like the core's ``ts``. Repository methods are each one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...


class UserRecord(Protocol):
    @property
    def id(self) -> int:
        """Also the user's account number in the core (account 0 is the fee account)."""
        ...

    @property
    def email(self) -> str: ...

    @property
    def password_hash(self) -> str: ...

    @property
    def status(self) -> str:
        """``active`` or ``disabled``."""
        ...

    @property
    def created_at_ms(self) -> int: ...


class SessionRecord(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def user_id(self) -> int: ...

    @property
    def token_hash(self) -> str:
        """Hex SHA-256 of the bearer token; the token itself is never stored."""
        ...

    @property
    def created_at_ms(self) -> int: ...

    @property
    def expires_at_ms(self) -> int: ...

    @property
    def revoked_at_ms(self) -> int | None: ...

    @property
    def ip(self) -> str | None: ...

    @property
    def user_agent(self) -> str | None: ...


class ApiKeyRecord(Protocol):
    @property
    def key_id(self) -> str:
        """The public identifier sent as ``TW-KEY``."""
        ...

    @property
    def user_id(self) -> int: ...

    @property
    def label(self) -> str: ...

    @property
    def permissions(self) -> frozenset[str]: ...

    @property
    def ip_allowlist(self) -> tuple[str, ...] | None:
        """Networks in CIDR form; ``None`` means any address."""
        ...

    @property
    def secret_sealed(self) -> bytes:
        """The HMAC secret encrypted by a :class:`SecretBox`."""
        ...

    @property
    def created_at_ms(self) -> int: ...

    @property
    def revoked_at_ms(self) -> int | None: ...

    @property
    def expires_at_ms(self) -> int | None:
        """After this time the key is refused; ``None``: it does not expire."""
        ...

    @property
    def key_type(self) -> str:
        """``hmac`` (the secret is in ``secret_sealed``) or ``ed25519`` (``public_key``)."""
        ...

    @property
    def public_key(self) -> bytes | None:
        """The raw 32-byte Ed25519 public key of an ``ed25519`` key."""
        ...


class UserRepository(Protocol):
    async def add(self, *, email: str, password_hash: str, created_at_ms: int) -> UserRecord | None:
        """Store a new active user; ``None`` if the (normalised) email is already taken."""
        ...

    async def get(self, user_id: int) -> UserRecord | None: ...

    async def get_by_email(self, email: str) -> UserRecord | None: ...

    async def set_password_hash(self, user_id: int, password_hash: str) -> None: ...


class SessionRepository(Protocol):
    async def add(
        self,
        *,
        user_id: int,
        token_hash: str,
        created_at_ms: int,
        expires_at_ms: int,
        ip: str | None,
        user_agent: str | None,
    ) -> SessionRecord: ...

    async def get_by_token_hash(self, token_hash: str) -> SessionRecord | None:
        """The session, whether expired or revoked; the service decides validity."""
        ...

    async def revoke(self, token_hash: str, revoked_at_ms: int) -> bool:
        """Revoke one session; ``False`` if unknown or already revoked."""
        ...

    async def revoke_all(self, user_id: int, revoked_at_ms: int) -> int:
        """Revoke every live session of a user; returns how many were revoked."""
        ...

    async def list_active(self, user_id: int, now_ms: int) -> Sequence[SessionRecord]:
        """Unrevoked, unexpired sessions, newest first (for the user's device list)."""
        ...

    async def delete_expired(self, before_ms: int) -> int:
        """Housekeeping: remove sessions that expired or were revoked before ``before_ms``."""
        ...


class ApiKeyRepository(Protocol):
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
    ) -> ApiKeyRecord: ...

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        """The key, revoked or not; the service decides validity."""
        ...

    async def list_active(self, user_id: int) -> Sequence[ApiKeyRecord]:
        """Unrevoked keys of a user, oldest first."""
        ...

    async def count_active(self, user_id: int) -> int: ...

    async def revoke(self, user_id: int, key_id: str, revoked_at_ms: int) -> bool:
        """Revoke a key the user owns; ``False`` if not found, not theirs or already revoked."""
        ...


class ReplayCache(Protocol):
    async def remember(self, key: str, now_ms: int, ttl_ms: int) -> bool:
        """Atomically record ``key`` for ``ttl_ms``; ``True`` if it was not already there.

        Backends with a clock of their own (Redis ``SET NX PX``) may ignore ``now_ms``.
        """
        ...


class WriteMarks(Protocol):
    """The seq of each user's last acknowledged command (for read-your-writes).

    In-process in embedded mode; shared by every API replica in distributed mode (Redis),
    so a read on one replica waits for a write acknowledged by another."""

    async def note(self, user: int, seq: int) -> None:
        """Record that ``user``'s command ``seq`` was acknowledged (marks never go back)."""
        ...

    async def last(self, user: int) -> int:
        """The highest seq noted for ``user`` (0 if none, or if it has expired)."""
        ...


class SecretBox(Protocol):
    """Authenticated encryption of small secrets under the server's master key."""

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """Encrypt; ``context`` is authenticated, not stored, and needed to open."""
        ...

    def open(self, sealed: bytes, context: bytes) -> bytes:
        """Decrypt; raises if the data, the context or the key does not match."""
        ...
