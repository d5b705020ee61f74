"""The emails the exchange sends, and the outbox port they go through.

Invariants:
- every email shows the recipient's anti-phishing code in its first line (or says that
  none is set and where to set one), so a user who set one can tell our emails from a
  phishing copy: docs/security.md tells users to trust only emails that show it;
- emails are plain text: nothing to render, no remote images, no tracking; links are
  not needed because every action takes the token shown in the email;
- services never talk SMTP: they put a :class:`Mail` in the :class:`Outbox` (a table),
  and a deliverer sends it when SMTP is configured (``TRADEWIND_SMTP_URL``). Without
  SMTP the outbox is where mail stays: demo mode shows it at ``/dev/mail``, tests read
  it. A slow or failing mail server therefore never slows or fails a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

SENDER_NAME = "Tradewind"


@dataclass(frozen=True, slots=True)
class Mail:
    """One email to send."""

    to: str
    subject: str
    body: str
    kind: str
    """What it is for: ``verify_email``, ``password_reset``, ``security_notice``..."""
    user_id: int | None = None


class OutboxRecord(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def to(self) -> str: ...

    @property
    def subject(self) -> str: ...

    @property
    def body(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def created_at_ms(self) -> int: ...

    @property
    def sent_at_ms(self) -> int | None: ...


class Outbox(Protocol):
    async def put(self, mail: Mail, created_at_ms: int) -> int:
        """Store a mail to send; returns its id."""
        ...

    async def recent(self, limit: int, to: str | None = None) -> Sequence[OutboxRecord]:
        """The newest mails first (for ``/dev/mail`` and tests), optionally to one address."""
        ...


def _greeting(anti_phishing_code: str | None) -> str:
    if anti_phishing_code:
        return f"Anti-phishing code: {anti_phishing_code}\n\n"
    return (
        "Anti-phishing code: (not set) - set one in your account settings; our emails "
        "will then always show it here.\n\n"
    )


def _compose(
    to: str, subject: str, text: str, kind: str, code: str | None, user_id: int | None
) -> Mail:
    body = (
        _greeting(code)
        + text.strip()
        + "\n\nIf you did not ask for this, secure your account: change your password and "
        "enable two-factor authentication.\n\n- Tradewind\n"
    )
    return Mail(to=to, subject=f"{SENDER_NAME}: {subject}", body=body, kind=kind, user_id=user_id)


def verification_mail(
    to: str, token: str, ttl_minutes: int, code: str | None, user_id: int, *, change: bool
) -> Mail:
    what = "your new email address" if change else "your email address"
    text = (
        f"Confirm {what} with this token (valid for {ttl_minutes} minutes, once):\n\n"
        f"{token}\n\n"
        'Send it as {"token": "..."} to POST /api/v1/auth/verify-email.'
    )
    return _compose(to, "confirm your email address", text, "verify_email", code, user_id)


def reset_mail(to: str, token: str, ttl_minutes: int, code: str | None, user_id: int) -> Mail:
    text = (
        f"Someone asked to reset the password of this account. To choose a new password, "
        f"use this token (valid for {ttl_minutes} minutes, once):\n\n{token}\n\n"
        "Send it with the new password to POST /api/v1/auth/password-reset/confirm. "
        "Resetting the password signs out every session."
    )
    return _compose(to, "reset your password", text, "password_reset", code, user_id)


def notice_mail(to: str, subject: str, text: str, code: str | None, user_id: int) -> Mail:
    return _compose(to, subject, text, "security_notice", code, user_id)


def margin_mail(to: str, subject: str, text: str, code: str | None, user_id: int) -> Mail:
    """A margin call or liquidation notice (services/margin_notices.py)."""
    return _compose(to, subject, text, "margin_notice", code, user_id)
