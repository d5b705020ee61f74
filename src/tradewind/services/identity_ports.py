"""Ports of the identity features, beside :mod:`tradewind.services.ports`.

Same rules as there: structural Protocols, integer milliseconds, one transaction per
method. Every "use once" operation (a token, a TOTP step, a recovery code) is a single
conditional write whose result says whether *this* call won, so two replicas racing
with the same code cannot both accept it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tradewind.services.ports import SessionRecord, SessionRepository


class IdentityRecord(Protocol):
    """The identity state of one user (columns of ``users``)."""

    @property
    def user_id(self) -> int: ...

    @property
    def email(self) -> str: ...

    @property
    def email_verified_at_ms(self) -> int | None: ...

    @property
    def anti_phishing_code(self) -> str | None: ...

    @property
    def totp_secret_sealed(self) -> bytes | None:
        """The enabled TOTP secret, sealed by the SecretBox; ``None``: 2FA is off."""
        ...

    @property
    def totp_pending_sealed(self) -> bytes | None:
        """A secret from ``setup`` not yet confirmed by a code."""
        ...

    @property
    def totp_last_step(self) -> int | None:
        """The newest TOTP step accepted (codes of this step or older are refused)."""
        ...


class IdentityRepository(Protocol):
    async def get_identity(self, user_id: int) -> IdentityRecord | None: ...

    async def mark_email_verified(self, user_id: int, email: str, at_ms: int) -> bool:
        """Mark verified if the user's address is still ``email``; ``False`` otherwise."""
        ...

    async def change_email(self, user_id: int, email: str, at_ms: int) -> bool:
        """Set a new (already verified) address; ``False`` if another user has it."""
        ...

    async def set_anti_phishing_code(self, user_id: int, code: str | None) -> None: ...

    async def set_totp_pending(self, user_id: int, sealed: bytes | None) -> None: ...

    async def enable_totp(
        self, user_id: int, sealed: bytes, step: int, recovery_hashes: Sequence[str]
    ) -> bool:
        """Turn 2FA on with ``sealed`` (only if the pending secret is still ``sealed``),
        accept ``step`` and replace the recovery codes; ``False`` if it lost a race."""
        ...

    async def disable_totp(self, user_id: int) -> None:
        """Turn 2FA off and delete the recovery codes."""
        ...

    async def advance_totp_step(self, user_id: int, step: int) -> bool:
        """Record ``step`` as used if it is newer than the last one; ``False`` otherwise."""
        ...

    async def use_recovery_code(self, user_id: int, code_hash: str, at_ms: int) -> bool:
        """Spend an unused recovery code; ``False`` if unknown or already used."""
        ...

    async def count_recovery_codes(self, user_id: int) -> int:
        """Unused recovery codes left."""
        ...


class TokenRepository(Protocol):
    """Single-use email tokens (verification, email change, password reset)."""

    async def add(
        self, *, jti: str, user_id: int, purpose: str, created_at_ms: int, expires_at_ms: int
    ) -> None: ...

    async def consume(self, jti: str, purpose: str, user_id: int, now_ms: int) -> bool:
        """Mark used if it exists, is unused and unexpired; ``True`` only for the first use."""
        ...

    async def revoke_all(self, user_id: int, purpose: str, now_ms: int) -> None:
        """Invalidate every unused token of this purpose (a newer one replaces them)."""
        ...


class ThrottleState(Protocol):
    @property
    def failures(self) -> int: ...

    @property
    def locked_until_ms(self) -> int: ...


class LoginThrottleRepository(Protocol):
    """Failed-login counters keyed by ``email:<hash>`` or ``ip:<address>``."""

    async def get(self, key: str) -> ThrottleState | None: ...

    async def add_failure(self, key: str, now_ms: int, forget_before_ms: int) -> int:
        """Count one more failure (starting again from 1 if the last one was before
        ``forget_before_ms``); returns the new count."""
        ...

    async def lock(self, key: str, until_ms: int) -> None: ...

    async def clear(self, key: str) -> None: ...


class DeviceSessionRecord(SessionRecord, Protocol):
    @property
    def last_seen_at_ms(self) -> int:
        """When the session was last used (updated at most once a minute)."""
        ...


class DeviceSessionRepository(SessionRepository, Protocol):
    """Sessions as the user's device list."""

    async def get_by_token_hash(self, token_hash: str) -> DeviceSessionRecord | None: ...

    async def list_active(self, user_id: int, now_ms: int) -> Sequence[DeviceSessionRecord]: ...

    async def get_by_id(self, session_id: int) -> SessionRecord | None: ...

    async def touch(self, session_id: int, now_ms: int) -> None:
        """Record activity (the "last seen" of the device list)."""
        ...

    async def revoke_by_id(self, user_id: int, session_id: int, revoked_at_ms: int) -> bool:
        """Revoke one of the user's live sessions; ``False`` if not theirs or not live."""
        ...

    async def revoke_others(self, user_id: int, keep_session_id: int, revoked_at_ms: int) -> int:
        """Revoke every live session of the user but one; returns how many."""
        ...

    async def seen_device(self, user_id: int, ip: str | None, user_agent: str | None) -> bool:
        """Whether any earlier session of the user (live or not) had this IP and agent."""
        ...

    async def count_all(self, user_id: int) -> int:
        """Sessions ever opened and still stored (live, expired or revoked)."""
        ...
