"""Account routes: registration, login, email verification, password reset, 2FA, the
anti-phishing code and the session (device) list.

Invariants:
- every route that changes a security setting is session-only (an API key cannot) and,
  when 2FA is on, needs a fresh code in ``totp`` (the service enforces it);
- answers never reveal whether an email has an account: login failures are one
  ``invalid_credentials``, a password-reset request is always ``202``;
- a lockout is ``429 login_locked`` with ``Retry-After`` (seconds) and the same number
  in ``retry_after`` in the body;
- a user only ever sees or revokes their own sessions (another user's session id is
  ``404``, like an unknown one).

(No ``from __future__ import annotations``: FastAPI reads these signatures at runtime.)
"""

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tradewind.gateways.rest.auth import SessionUser, client_ip
from tradewind.gateways.rest.errors import JSON, error_response
from tradewind.services.accounts import AccountsService
from tradewind.services.identity_errors import LoginLocked

Email = Annotated[str, Field(max_length=1024)]
Password = Annotated[str, Field(max_length=1024)]
Totp = Annotated[
    str | None,
    Field(
        max_length=32,
        description="Current 6-digit code from the authenticator app, or a recovery code; "
        "needed when 2FA is enabled.",
    ),
]
Token = Annotated[str, Field(max_length=1024, description="The token from the email.")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RegisterIn(_In):
    email: Email
    password: Password


class RegisterOut(BaseModel):
    user_id: int
    email_verification: str = Field(description="`sent`: check the inbox for the token.")


class LoginIn(_In):
    email: Email
    password: Password
    totp: Totp = None


class LoginOut(BaseModel):
    token: str
    expires_at: int


class TokenIn(_In):
    token: Token


class VerifiedOut(BaseModel):
    user_id: int
    email_verified: bool


class ResendOut(BaseModel):
    sent: bool = Field(description="false when the address is already verified")


class ResetIn(_In):
    email: Email


class AcceptedOut(BaseModel):
    status: str


class ResetConfirmIn(_In):
    token: Token
    new_password: Password
    totp: Totp = None


class AccountOut(BaseModel):
    user_id: int
    email: str
    email_verified: bool
    totp_enabled: bool
    recovery_codes_left: int
    anti_phishing_code: str | None


class PasswordIn(_In):
    current_password: Password
    new_password: Password
    totp: Totp = None


class PasswordOut(BaseModel):
    revoked_sessions: int = Field(description="Other sessions signed out by the change.")


class EmailChangeIn(_In):
    new_email: Email
    password: Password
    totp: Totp = None


class AntiPhishingIn(_In):
    code: Annotated[
        str | None, Field(max_length=64, description="4-20 of A-Z a-z 0-9 - _; null clears it")
    ]
    totp: Totp = None


class TotpSetupOut(BaseModel):
    secret: str = Field(description="Base32 secret, for manual entry")
    otpauth_uri: str
    qr_svg: str = Field(description="The otpauth URI as an SVG QR code")


class CodeIn(_In):
    code: Annotated[str, Field(max_length=32)]


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] = Field(description="Ten single-use codes, shown only now")


class SessionOut(BaseModel):
    id: int
    ip: str | None
    device: str | None = Field(description="The User-Agent the session logged in with")
    created_at: int
    last_seen_at: int
    expires_at: int
    current: bool


def _locked(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginLocked)
    seconds = exc.retry_after_s
    return error_response(
        429,
        exc.code,
        exc.message,
        headers={"Retry-After": str(seconds)},
        retry_after=seconds,
    )


def install_account_routes(app: FastAPI, accounts: AccountsService) -> None:
    """Add the account routes to ``app`` (``create_app`` does)."""
    app.add_exception_handler(LoginLocked, _locked)
    auth = APIRouter(prefix="/api/v1/auth", tags=["account"])
    account = APIRouter(prefix="/api/v1", tags=["account"])

    @auth.post("/register", status_code=201, response_model=RegisterOut)
    async def register(body: RegisterIn) -> Response:
        """Create an account and email a verification token. Until it is verified the
        account can log in and read, but not trade or create API keys."""
        user_id = await accounts.register(body.email, body.password)
        return JSON({"user_id": user_id, "email_verification": "sent"}, status_code=201)

    @auth.post("/login", response_model=LoginOut)
    async def login(body: LoginIn, request: Request) -> Response:
        token = await accounts.login(
            body.email,
            body.password,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            totp=body.totp,
        )
        session = await accounts.authenticate(token)
        return JSON({"token": token, "expires_at": session.expires_at_ms})

    @auth.post("/logout", status_code=204)
    async def logout(request: Request, principal: SessionUser) -> Response:
        header = request.headers.get("authorization", "")
        await accounts.logout(header.partition(" ")[2].strip())
        return Response(status_code=204)

    @auth.post("/verify-email", response_model=VerifiedOut)
    async def verify_email(body: TokenIn) -> Response:
        """Redeem the token of a verification or email-change email (once)."""
        user_id = await accounts.verify_email(body.token)
        return JSON({"user_id": user_id, "email_verified": True})

    @auth.post("/resend-verification", status_code=202, response_model=ResendOut)
    async def resend_verification(principal: SessionUser) -> Response:
        sent = await accounts.resend_verification(principal.user_id)
        return JSON({"sent": sent}, status_code=202)

    @auth.post("/password-reset", status_code=202, response_model=AcceptedOut)
    async def password_reset(body: ResetIn) -> Response:
        """Email a reset token if the address has an account; the answer is the same
        either way."""
        await accounts.request_password_reset(body.email)
        return JSON({"status": "if the address has an account, a token was sent"}, 202)

    @auth.post("/password-reset/confirm", status_code=204)
    async def password_reset_confirm(body: ResetConfirmIn) -> Response:
        """Set a new password with the emailed token; signs out every session."""
        await accounts.confirm_password_reset(body.token, body.new_password, body.totp)
        return Response(status_code=204)

    @account.get("/account", response_model=AccountOut)
    async def get_account(principal: SessionUser) -> Response:
        info = await accounts.account(principal.user_id)
        return JSON(
            {
                "user_id": info.user_id,
                "email": info.email,
                "email_verified": info.email_verified,
                "totp_enabled": info.totp_enabled,
                "recovery_codes_left": info.recovery_codes_left,
                "anti_phishing_code": info.anti_phishing_code,
            }
        )

    @account.post("/account/password", response_model=PasswordOut)
    async def change_password(body: PasswordIn, principal: SessionUser) -> Response:
        """Change the password; every other session is signed out."""
        assert principal.session_id is not None
        revoked = await accounts.change_password(
            principal.user_id,
            principal.session_id,
            body.current_password,
            body.new_password,
            body.totp,
        )
        return JSON({"revoked_sessions": revoked})

    @account.post("/account/email", status_code=202, response_model=AcceptedOut)
    async def change_email(body: EmailChangeIn, principal: SessionUser) -> Response:
        """Email a token to the new address; the address changes when it is verified."""
        await accounts.request_email_change(
            principal.user_id, body.new_email, body.password, body.totp
        )
        return JSON({"status": "a token was sent to the new address"}, 202)

    @account.put("/account/anti-phishing-code", status_code=204)
    async def set_anti_phishing_code(body: AntiPhishingIn, principal: SessionUser) -> Response:
        """Every email from the exchange shows this code; trust none that does not."""
        await accounts.set_anti_phishing_code(principal.user_id, body.code, body.totp)
        return Response(status_code=204)

    @account.post("/account/2fa/setup", response_model=TotpSetupOut)
    async def totp_setup(principal: SessionUser) -> Response:
        """A new TOTP secret for the authenticator app; 2FA is on only after enable."""
        setup = await accounts.totp_setup(principal.user_id)
        return JSON(
            {"secret": setup.secret, "otpauth_uri": setup.otpauth_uri, "qr_svg": setup.qr_svg}
        )

    @account.post("/account/2fa/enable", response_model=RecoveryCodesOut)
    async def totp_enable(body: CodeIn, principal: SessionUser) -> Response:
        codes = await accounts.totp_enable(principal.user_id, body.code)
        return JSON({"recovery_codes": codes})

    @account.post("/account/2fa/disable", status_code=204)
    async def totp_disable(body: CodeIn, principal: SessionUser) -> Response:
        await accounts.totp_disable(principal.user_id, body.code)
        return Response(status_code=204)

    @account.get("/sessions", response_model=list[SessionOut])
    async def list_sessions(principal: SessionUser) -> Response:
        out: list[dict[str, Any]] = [
            {
                "id": s.id,
                "ip": s.ip,
                "device": s.user_agent,
                "created_at": s.created_at_ms,
                "last_seen_at": s.last_seen_at_ms,
                "expires_at": s.expires_at_ms,
                "current": s.id == principal.session_id,
            }
            for s in await accounts.list_sessions(principal.user_id)
        ]
        return JSON(out)

    @account.delete("/sessions/{session_id}", status_code=204)
    async def revoke_session(
        session_id: Annotated[int, Path(ge=1, le=2**63 - 1)], principal: SessionUser
    ) -> Response:
        await accounts.revoke_session(principal.user_id, session_id)
        return Response(status_code=204)

    app.include_router(auth)
    app.include_router(account)
