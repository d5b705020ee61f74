"""Signed, single-use, expiring tokens sent by email (verification, email change, reset).

A token is ``base64url(seal(purpose | user | jti | expiry | email))`` under the
server's :class:`~tradewind.services.ports.SecretBox` (AES-GCM: authenticated, so it is
signed, and opaque, so it leaks no address). Why both a seal and a table row:
- the seal makes a forged or edited token fail before any database work, and binds the
  token to its purpose, user, expiry and address (a reset token cannot verify an email;
  a verification token for an old address cannot verify a new one);
- the row (``jti``) makes it single-use across every API replica: :meth:`consume` is one
  conditional update, and issuing a new token of a purpose revokes the older ones.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from tradewind.services.identity_errors import InvalidToken
from tradewind.services.identity_ports import TokenRepository
from tradewind.services.ports import Clock, SecretBox

VERIFY_EMAIL = "verify_email"
CHANGE_EMAIL = "change_email"
PASSWORD_RESET = "password_reset"
PURPOSES = frozenset({VERIFY_EMAIL, CHANGE_EMAIL, PASSWORD_RESET})
MAX_TOKEN_CHARS = 1024
_CONTEXT = b"tradewind/email-token/v1"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    purpose: str
    user_id: int
    jti: str
    expires_at_ms: int
    email: str


class EmailTokens:
    def __init__(self, repo: TokenRepository, box: SecretBox, clock: Clock) -> None:
        self._repo = repo
        self._box = box
        self._clock = clock

    async def issue(self, purpose: str, user_id: int, email: str, ttl_ms: int) -> str:
        """A new token; older unused tokens of the same purpose stop working."""
        assert purpose in PURPOSES
        now = self._clock.now_ms()
        jti = secrets.token_hex(16)
        await self._repo.revoke_all(user_id, purpose, now)
        await self._repo.add(
            jti=jti,
            user_id=user_id,
            purpose=purpose,
            created_at_ms=now,
            expires_at_ms=now + ttl_ms,
        )
        plain = f"{purpose}|{user_id}|{jti}|{now + ttl_ms}|{email}".encode()
        sealed = self._box.seal(plain, _CONTEXT)
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def open(self, token: object, purposes: frozenset[str]) -> TokenClaims:
        """Check seal, purpose and expiry without spending the token."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise InvalidToken()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            plain = self._box.open(raw, _CONTEXT).decode()
            purpose, user, jti, expires, email = plain.split("|", 4)
            claims = TokenClaims(purpose, int(user), jti, int(expires), email)
        except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise InvalidToken() from exc
        except Exception as exc:  # the box's own "does not open" error
            raise InvalidToken() from exc
        if claims.purpose not in purposes or self._clock.now_ms() >= claims.expires_at_ms:
            raise InvalidToken()
        return claims

    async def consume(self, claims: TokenClaims) -> None:
        """Spend the token; :class:`InvalidToken` if it was used, revoked or expired."""
        now = self._clock.now_ms()
        if not await self._repo.consume(claims.jti, claims.purpose, claims.user_id, now):
            raise InvalidToken()
