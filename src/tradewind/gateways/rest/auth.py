"""Authentication dependencies of the REST gateway, usable by any router.

A route says who may call it by the type of one parameter::

    from tradewind.gateways.rest.auth import Reader, SessionUser, Trader

    @router.get("/thing")
    async def thing(principal: Reader) -> Response: ...

- :data:`Reader` / :data:`Trader`: a Bearer session or an API-key signature holding the
  ``read`` / ``trade`` permission;
- a session of an account whose email is not verified yet holds only ``read``; asking
  it for more is ``403 email_not_verified``;
- :data:`SessionUser`: a Bearer session only (account management: API keys, 2FA,
  sessions), because a leaked API key must not be able to mint more credentials;
- :func:`require` builds the same check for any other permission.

Invariants:
- the dependencies find the :class:`AuthSettings` on ``app.state.auth``, put there by
  :func:`install_auth` (``create_app`` does it), so they are module-level and every
  router shares one implementation of the signature check;
- an API-key signature covers exactly the bytes received: the raw path and query as
  sent and the body, never a re-encoded form;
- every refusal is ``401`` (who are you?) or ``403`` (you may not) with a stable code.

(No ``from __future__ import annotations``: FastAPI reads these signatures at runtime.)
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from tradewind.gateways.rest.errors import ApiError
from tradewind.gateways.rest.security import charge_principal
from tradewind.services.accounts import AccountsService
from tradewind.services.identity_errors import EmailNotVerified

SESSION_PERMISSIONS = frozenset({"read", "trade"})
"""What a Bearer session may do (withdrawals will need more than a session)."""
UNVERIFIED_PERMISSIONS = frozenset({"read"})
"""What a session may do before its account's email address is verified."""
DEFAULT_RECV_WINDOW_MS = 5000
_TIMESTAMP = re.compile(r"[0-9]{1,16}")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request speaks for and what it may do."""

    user_id: int
    permissions: frozenset[str]
    via: str
    """``session`` or ``api_key``."""
    key_id: str | None = None
    session_id: int | None = None
    """The session's id when ``via == "session"`` (to mark "this device" in lists)."""
    email_verified: bool = True
    """``False``: a session of an account whose email is not verified yet (read only)."""


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """What the dependencies need; one per app."""

    accounts: AccountsService
    now_ms: Callable[[], int]
    not_before_ms: int = 0
    """Signed requests stamped earlier are refused (see ``RestContext.not_before_ms``)."""


def install_auth(app: FastAPI, settings: AuthSettings) -> None:
    """Make the dependencies of this module work in ``app``."""
    app.state.auth = settings


def _settings(request: Request) -> AuthSettings:
    settings = getattr(request.app.state, "auth", None)
    if not isinstance(settings, AuthSettings):  # a wiring bug, not a client error
        raise RuntimeError("install_auth(app, ...) was not called")
    return settings


bearer = HTTPBearer(auto_error=False, description="Session token from /api/v1/auth/login")
key_header = APIKeyHeader(
    name="TW-KEY",
    auto_error=False,
    description="API key id; also send TW-TIMESTAMP and TW-SIGNATURE",
)


def client_ip(request: Request) -> str | None:
    """The peer address as the server sees it (behind a proxy: the proxy's view)."""
    return request.client.host if request.client else None


async def _verify_api_key(request: Request, settings: AuthSettings, key_id: str) -> Principal:
    headers = request.headers
    timestamp = headers.get("tw-timestamp")
    signature = headers.get("tw-signature")
    if timestamp is None or signature is None:
        raise ApiError(
            401, "missing_signature", "TW-KEY needs TW-TIMESTAMP and TW-SIGNATURE headers"
        )
    if not _TIMESTAMP.fullmatch(timestamp):
        raise ApiError(
            400, "invalid_timestamp", "TW-TIMESTAMP must be milliseconds since the epoch"
        )
    if int(timestamp) < settings.not_before_ms:
        raise ApiError(
            401, "timestamp_out_of_window", "the request was signed before the server started"
        )
    window_text = headers.get("tw-recv-window")
    window = DEFAULT_RECV_WINDOW_MS
    if window_text is not None:
        if not window_text.isdigit() or len(window_text) > 6:
            raise ApiError(400, "invalid_recv_window", "TW-RECV-WINDOW must be an integer")
        window = int(window_text)
    body = await request.body()
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    path = raw_path.split(b"?", 1)[0].decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    target = f"{path}?{query}" if query else path
    principal = await settings.accounts.verify_signature(
        key_id,
        int(timestamp),
        request.method,
        target,
        body,
        signature,
        settings.now_ms(),
        window,
        client_ip=client_ip(request),
    )
    return Principal(principal.user_id, principal.permissions, "api_key", key_id)


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    key_id: Annotated[str | None, Depends(key_header)],
) -> Principal:
    """Resolve the request's credentials: an API-key signature if ``TW-KEY`` is sent,
    else a Bearer session; anything else is ``401``."""
    settings = _settings(request)
    if key_id is not None:
        principal = await _verify_api_key(request, settings, key_id)
        await charge_principal(request, principal.user_id, principal.key_id)
        return principal
    if credentials is not None:
        session = await settings.accounts.authenticate(credentials.credentials)
        await charge_principal(request, session.user_id, None)
        return Principal(
            session.user_id,
            SESSION_PERMISSIONS if session.email_verified else UNVERIFIED_PERMISSIONS,
            "session",
            session_id=session.session_id,
            email_verified=session.email_verified,
        )
    if request.headers.get("authorization"):
        raise ApiError(401, "invalid_authorization", "Authorization must be 'Bearer <token>'")
    raise ApiError(
        401,
        "auth_required",
        "authenticate with a Bearer session token or an API-key signature",
        headers={"WWW-Authenticate": "Bearer"},
    )


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: authenticated, and holding ``permission``."""

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if permission not in principal.permissions:
            if not principal.email_verified:
                raise EmailNotVerified()
            raise ApiError(
                403,
                "permission_denied",
                f"the API key lacks the {permission!r} permission",
            )
        return principal

    return check


async def session_only(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    """A dependency: authenticated by a Bearer session, not an API key."""
    if principal.via != "session":
        raise ApiError(403, "session_required", "API keys are managed with a session token only")
    return principal


Authenticated = Annotated[Principal, Depends(authenticate)]
Reader = Annotated[Principal, Depends(require("read"))]
Trader = Annotated[Principal, Depends(require("trade"))]
SessionUser = Annotated[Principal, Depends(session_only)]
