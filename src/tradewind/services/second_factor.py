"""TOTP two-factor authentication of an account: setup, enable, check, disable.

Invariants:
- the TOTP secret is stored only sealed by the server's SecretBox, bound to the user id
  (a sealed secret copied to another user's row does not open);
- enabling needs a valid code for the pending secret, so a user cannot lock themselves
  out with a secret their app does not have;
- a code is accepted once (the step is advanced atomically, see :mod:`.totp`), a
  recovery code once (spent by a conditional update);
- wrong codes are counted per user with a growing lockout, so the 10**6 code space
  cannot be searched online.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tradewind.services import totp
from tradewind.services.identity_errors import (
    InvalidTotp,
    TotpAlreadyEnabled,
    TotpNotEnabled,
    TotpRequired,
    TotpSetupMissing,
)
from tradewind.services.identity_ports import IdentityRecord, IdentityRepository
from tradewind.services.login_throttle import SECOND_FACTOR_POLICY, LoginThrottle, second_factor_key
from tradewind.services.ports import Clock, SecretBox


@dataclass(frozen=True, slots=True)
class TotpSetup:
    """What an authenticator app needs; the secret is shown once, here."""

    secret: str
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """How a second factor was satisfied."""

    method: str
    """``none`` (2FA is off), ``totp`` or ``recovery_code``."""
    recovery_codes_left: int | None = None


def _context(user_id: int) -> bytes:
    return f"tradewind/totp-secret/v1:{user_id}".encode()


class SecondFactor:
    def __init__(
        self,
        identity: IdentityRepository,
        box: SecretBox,
        clock: Clock,
        throttle: LoginThrottle,
    ) -> None:
        self._identity = identity
        self._box = box
        self._clock = clock
        self._throttle = throttle

    async def _record(self, user_id: int) -> IdentityRecord:
        record = await self._identity.get_identity(user_id)
        if record is None:  # the session outlived its user: treat as not authenticated
            raise TotpNotEnabled()
        return record

    async def enabled(self, user_id: int) -> bool:
        record = await self._identity.get_identity(user_id)
        return record is not None and record.totp_secret_sealed is not None

    async def setup(self, user_id: int, account_name: str) -> TotpSetup:
        """Start (or restart) setup with a fresh secret; 2FA stays off until enabled."""
        record = await self._record(user_id)
        if record.totp_secret_sealed is not None:
            raise TotpAlreadyEnabled()
        secret = totp.new_secret()
        sealed = self._box.seal(secret.encode("ascii"), _context(user_id))
        await self._identity.set_totp_pending(user_id, sealed)
        uri = totp.provisioning_uri(secret, account_name)
        return TotpSetup(secret, uri, totp.qr_svg(uri))

    async def enable(self, user_id: int, code: object) -> list[str]:
        """Confirm the pending secret with a code; returns the ten recovery codes."""
        record = await self._record(user_id)
        if record.totp_secret_sealed is not None:
            raise TotpAlreadyEnabled()
        pending = record.totp_pending_sealed
        if pending is None:
            raise TotpSetupMissing()
        key = [(second_factor_key(user_id), SECOND_FACTOR_POLICY)]
        now = self._clock.now_ms()
        await self._throttle.check(key, now)
        secret = self._box.open(pending, _context(user_id)).decode("ascii")
        step = totp.match_step(secret, code, now) if isinstance(code, str) else None
        if step is None:
            await self._throttle.fail(key, now)
            raise InvalidTotp()
        codes = totp.new_recovery_codes()
        hashes = hashes_of(codes)
        if not await self._identity.enable_totp(user_id, pending, step, hashes):
            raise TotpSetupMissing()
        await self._throttle.clear(key[0][0])
        return codes

    async def disable(self, user_id: int, code: object) -> None:
        """Turn 2FA off; needs a current code or a recovery code."""
        record = await self._record(user_id)
        if record.totp_secret_sealed is None:
            raise TotpNotEnabled()
        await self.require(user_id, code, record)
        await self._identity.disable_totp(user_id)

    async def require(
        self, user_id: int, code: object, record: IdentityRecord | None = None
    ) -> CodeCheck:
        """Pass if 2FA is off, or ``code`` is a fresh TOTP code or an unused recovery code.

        Raises :class:`TotpRequired` (no code given), :class:`InvalidTotp` (wrong or
        reused) or :class:`~tradewind.services.identity_errors.LoginLocked` (too many
        wrong codes lately).
        """
        if record is None:
            record = await self._identity.get_identity(user_id)
        if record is None or record.totp_secret_sealed is None:
            return CodeCheck("none")
        if code is None or code == "":
            raise TotpRequired()
        key = [(second_factor_key(user_id), SECOND_FACTOR_POLICY)]
        now = self._clock.now_ms()
        await self._throttle.check(key, now)
        check = await self._accept(user_id, record.totp_secret_sealed, code, now)
        if check is None:
            await self._throttle.fail(key, now)
            raise InvalidTotp()
        await self._throttle.clear(key[0][0])
        return check

    async def _accept(
        self, user_id: int, sealed: bytes, code: object, now_ms: int
    ) -> CodeCheck | None:
        if not isinstance(code, str) or len(code) > 64:
            return None
        text = code.strip().replace(" ", "")
        if totp.looks_like_code(text):
            secret = self._box.open(sealed, _context(user_id)).decode("ascii")
            step = totp.match_step(secret, text, now_ms)
            if step is None or not await self._identity.advance_totp_step(user_id, step):
                return None
            return CodeCheck("totp")
        normalised = totp.normalise_recovery_code(text)
        if normalised is None:
            return None
        if not await self._identity.use_recovery_code(
            user_id, totp.recovery_code_hash(normalised), now_ms
        ):
            return None
        left = await self._identity.count_recovery_codes(user_id)
        return CodeCheck("recovery_code", left)


def hashes_of(codes: Sequence[str]) -> list[str]:
    """Stored form of recovery codes as shown to the user (for tests and tools)."""
    out = []
    for code in codes:
        normalised = totp.normalise_recovery_code(code)
        assert normalised is not None
        out.append(totp.recovery_code_hash(normalised))
    return out
