"""Refusals of the identity features (email tokens, 2FA, lockouts, sessions).

Kept apart from :mod:`tradewind.services.errors` only so the identity work does not
edit a file others extend at the same time; the classes are ordinary
:class:`~tradewind.services.errors.ServiceError` s, mapped to HTTP by the same handler.
Messages never say whether an email address has an account.
"""

from __future__ import annotations

from tradewind.services.errors import ServiceError


class EmailNotVerified(ServiceError):
    code = "email_not_verified"
    status_hint = 403
    default_message = (
        "verify your email address first: send the token from the email we sent to "
        "POST /api/v1/auth/verify-email, or ask for a new one "
        "(POST /api/v1/auth/resend-verification)"
    )


class InvalidToken(ServiceError):
    code = "invalid_token"
    status_hint = 400
    default_message = "the token is invalid, expired or already used"


class TotpRequired(ServiceError):
    code = "totp_required"
    status_hint = 401
    default_message = (
        "two-factor authentication is enabled: send the current 6-digit code from your "
        "authenticator app (or a recovery code) in 'totp'"
    )


class InvalidTotp(ServiceError):
    code = "invalid_totp"
    status_hint = 401
    default_message = "the two-factor code is wrong, expired or already used"


class TotpAlreadyEnabled(ServiceError):
    code = "totp_already_enabled"
    status_hint = 409
    default_message = "two-factor authentication is already enabled; disable it first"


class TotpNotEnabled(ServiceError):
    code = "totp_not_enabled"
    status_hint = 409
    default_message = "two-factor authentication is not enabled"


class TotpSetupMissing(ServiceError):
    code = "totp_setup_missing"
    status_hint = 409
    default_message = "start with POST /api/v1/account/2fa/setup, then enable with a code"


class LoginLocked(ServiceError):
    """Too many failed logins for this account or from this address."""

    code = "login_locked"
    status_hint = 429

    def __init__(self, retry_after_ms: int = 1000) -> None:
        self.retry_after_s = max(1, -(-retry_after_ms // 1000))
        super().__init__(f"too many failed logins; try again in {self.retry_after_s} seconds")


class InvalidAntiPhishingCode(ServiceError):
    code = "invalid_anti_phishing_code"
    status_hint = 400
    default_message = "the anti-phishing code must be 4 to 20 letters, digits, '-' or '_'"


class SessionNotFound(ServiceError):
    code = "session_not_found"
    status_hint = 404
    default_message = "no such session"


class WrongPassword(ServiceError):
    """The current password given to confirm a security change is wrong."""

    code = "wrong_password"
    status_hint = 403
    default_message = "the current password is wrong"
