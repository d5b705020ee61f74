"""Typed errors of the application services, each with a stable ``code``.

Invariant: a code, once published, keeps its meaning; gateways map codes to HTTP status
(and FIX rejects) by table and send ``{"code", "message"}``; messages are for people and
never say whether an account exists. Suggested HTTP status per code is in ``status_hint``
so every gateway maps alike, but services never import anything HTTP.
"""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    """Base of every expected failure a client can cause."""

    code: ClassVar[str] = "error"
    status_hint: ClassVar[int] = 400
    default_message: ClassVar[str] = "request refused"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidEmail(ServiceError):
    code = "invalid_email"
    status_hint = 400
    default_message = "email address is not valid"


class InvalidPassword(ServiceError):
    code = "invalid_password"
    status_hint = 400
    default_message = "password does not meet the policy"


class EmailTaken(ServiceError):
    code = "email_taken"
    status_hint = 409
    default_message = "an account with this email already exists"


class InvalidCredentials(ServiceError):
    code = "invalid_credentials"
    status_hint = 401
    default_message = "email or password is wrong"


class InvalidSession(ServiceError):
    code = "invalid_session"
    status_hint = 401
    default_message = "session token is unknown, expired or revoked"


class InvalidApiKey(ServiceError):
    code = "invalid_api_key"
    status_hint = 401
    default_message = "API key is unknown or revoked"


class InvalidSignature(ServiceError):
    code = "invalid_signature"
    status_hint = 401
    default_message = "signature does not match"


class TimestampOutOfWindow(ServiceError):
    code = "timestamp_out_of_window"
    status_hint = 401
    default_message = "timestamp is outside the receive window"


class InvalidRecvWindow(ServiceError):
    code = "invalid_recv_window"
    status_hint = 400
    default_message = "receive window must be between 1 and 60000 ms"


class ReplayedSignature(ServiceError):
    code = "replayed_signature"
    status_hint = 401
    default_message = "this signature was already used"


class IpNotAllowed(ServiceError):
    code = "ip_not_allowed"
    status_hint = 403
    default_message = "request address is not in the API key's allowlist"


class PermissionDenied(ServiceError):
    code = "permission_denied"
    status_hint = 403
    default_message = "the API key lacks the permission for this request"


class InvalidPermissions(ServiceError):
    code = "invalid_permissions"
    status_hint = 400
    default_message = "permissions must be a non-empty subset of read, trade, withdraw"


class InvalidLabel(ServiceError):
    code = "invalid_label"
    status_hint = 400
    default_message = "label must be 1 to 64 printable characters"


class InvalidIpAllowlist(ServiceError):
    code = "invalid_ip_allowlist"
    status_hint = 400
    default_message = "ip_allowlist must be a list of IP addresses or CIDR networks"


class TooManyApiKeys(ServiceError):
    code = "too_many_api_keys"
    status_hint = 409
    default_message = "the account has the maximum number of API keys"


class ApiKeyNotFound(ServiceError):
    code = "api_key_not_found"
    status_hint = 404
    default_message = "no such API key"


class InvalidTimestamp(ServiceError):
    """For gateways: ``TW-TIMESTAMP`` is not a canonical decimal integer of milliseconds."""

    code = "invalid_timestamp"
    status_hint = 400
    default_message = "timestamp must be an integer number of milliseconds"
