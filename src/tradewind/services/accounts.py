"""Accounts: registration and email verification, password login with 2FA and lockouts,
bearer sessions (the device list), password reset and API keys.

Invariants kept here:
- a password is stored only as an argon2id hash; a session token only as its SHA-256;
  an API-key secret only sealed by the server's :class:`~tradewind.services.ports.SecretBox`
  (the server must recompute request HMACs, see docs/adr/0005-api-key-secrets.md);
- login answers the same error after the same work (one argon2 verify) whether or not
  the email exists, so neither the reply nor its timing enumerates users;
- a signed request is accepted at most once: within the receive window, with a valid
  HMAC, from an allowed address, and never with a signature seen before;
- every refusal is a :class:`~tradewind.services.errors.ServiceError` with a stable code.

- failed logins are counted per account (keyed by the email as typed, so unknown
  addresses lock alike) and per address, with growing lockouts checked before any
  argon2 work (:mod:`.login_throttle`); argon2 runs in a thread, off the event loop;
- with 2FA on, login, API-key creation and every security setting need a fresh TOTP
  code or a recovery code (:meth:`AccountsService.require_second_factor`);
- emails (verification, reset, security notices) go through the outbox port, each with
  the user's anti-phishing code (:mod:`.mail`); their tokens are sealed, single-use and
  expire (:mod:`.email_tokens`);
- an unverified account can log in and read but cannot trade or create API keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tradewind.services.api_key_signatures import (
    check_expiry,
    ensure_not_expired,
    load_public_key,
    signature_bytes,
    verify_ed25519,
)
from tradewind.services.audit import AuditEntry, AuditLog
from tradewind.services.email_tokens import (
    CHANGE_EMAIL,
    PASSWORD_RESET,
    VERIFY_EMAIL,
    EmailTokens,
)
from tradewind.services.errors import (
    ApiKeyNotFound,
    EmailTaken,
    InvalidApiKey,
    InvalidCredentials,
    InvalidEmail,
    InvalidIpAllowlist,
    InvalidLabel,
    InvalidPassword,
    InvalidPermissions,
    InvalidRecvWindow,
    InvalidSession,
    InvalidSignature,
    InvalidTimestamp,
    IpNotAllowed,
    PermissionDenied,
    ReplayedSignature,
    TimestampOutOfWindow,
    TooManyApiKeys,
)
from tradewind.services.identity_errors import (
    EmailNotVerified,
    InvalidAntiPhishingCode,
    InvalidToken,
    InvalidTotp,
    SessionNotFound,
    WrongPassword,
)
from tradewind.services.identity_ports import (
    DeviceSessionRecord,
    DeviceSessionRepository,
    IdentityRecord,
    IdentityRepository,
    LoginThrottleRepository,
    TokenRepository,
)
from tradewind.services.login_throttle import (
    ACCOUNT_POLICY,
    ADDRESS_POLICY,
    LoginThrottle,
    account_key,
    address_key,
)
from tradewind.services.mail import Outbox, notice_mail, reset_mail, verification_mail
from tradewind.services.ports import (
    ApiKeyRecord,
    ApiKeyRepository,
    Clock,
    ReplayCache,
    SecretBox,
    UserRepository,
)
from tradewind.services.second_factor import SecondFactor, TotpSetup

PERMISSIONS = frozenset({"read", "trade", "withdraw"})
MAX_EMAIL_LENGTH = 254
MAX_TOKEN_LENGTH = 256
_HEX_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
_LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DUMMY_PASSWORD = "tradewind: no such account"
_ANTI_PHISHING = re.compile(r"[A-Za-z0-9_-]{4,20}")


@dataclass(frozen=True, slots=True)
class AccountsConfig:
    """Policy knobs; the defaults are the documented behaviour."""

    session_ttl_ms: int = 24 * 3600 * 1000
    min_password_length: int = 10
    max_password_length: int = 256
    max_api_keys_per_user: int = 30
    max_ip_allowlist: int = 32
    max_recv_window_ms: int = 60_000
    """Also how long a used signature is remembered, whatever window a request asks for."""
    max_future_skew_ms: int = 1_000
    """How far ahead of the server's clock a request timestamp may be."""
    verify_token_ttl_ms: int = 24 * 3600 * 1000
    reset_token_ttl_ms: int = 30 * 60 * 1000
    last_seen_resolution_ms: int = 60_000
    """A session's "last seen" is written at most this often (not on every request)."""


@dataclass(frozen=True, slots=True)
class SessionPrincipal:
    """Who a bearer token speaks for."""

    user_id: int
    session_id: int
    expires_at_ms: int
    email_verified: bool = True


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """The account as its owner sees it (``GET /api/v1/account``)."""

    user_id: int
    email: str
    email_verified: bool
    totp_enabled: bool
    recovery_codes_left: int
    anti_phishing_code: str | None


@dataclass(frozen=True, slots=True)
class ApiKeyPrincipal:
    """Who a signed request speaks for, and what it may do."""

    user_id: int
    key_id: str
    permissions: frozenset[str]

    def require(self, permission: str) -> None:
        """Raise ``permission_denied`` unless the key holds ``permission``."""
        if permission not in self.permissions:
            raise PermissionDenied(f"the API key lacks the {permission!r} permission")


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key as listed to its owner: everything but the secret."""

    key_id: str
    label: str
    permissions: frozenset[str]
    ip_allowlist: tuple[str, ...] | None
    created_at_ms: int
    key_type: str = "hmac"
    expires_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A freshly created key; ``secret`` exists only in this object and the reply
    (``None`` for an Ed25519 key: the client holds its private key)."""

    info: ApiKeyInfo
    secret: str | None

    @property
    def key_id(self) -> str:
        return self.info.key_id


def normalise_email(email: object) -> str:
    """Return the canonical form of an address (trimmed, lower case, IDNA domain).

    Deliberately stricter than RFC 5322: no quoted local parts, no IP-literal domains,
    ASCII local part, so one mailbox has one spelling and cannot register twice.
    """
    if not isinstance(email, str):
        raise InvalidEmail()
    text = unicodedata.normalize("NFC", email.strip())
    if len(text) > MAX_EMAIL_LENGTH * 4 or text.count("@") != 1:
        raise InvalidEmail()
    local, domain = text.split("@")
    local = local.lower()
    if not 1 <= len(local) <= 64 or not _LOCAL_PART.fullmatch(local):
        raise InvalidEmail()
    domain = domain.lower().rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidEmail() from exc
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise InvalidEmail()
    if labels[-1].isdigit():
        raise InvalidEmail()
    normalised = f"{local}@{domain}"
    if len(normalised) > MAX_EMAIL_LENGTH:
        raise InvalidEmail()
    return normalised


def token_hash(token: str) -> str:
    """Hex SHA-256 of a bearer token: what the session store keys on."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def signature_payload(
    timestamp_ms: int, method: str, path_with_query: str, body: bytes | str
) -> bytes:
    """The bytes a client signs: ``timestamp + METHOD + path_with_query + body`` (DESIGN §6)."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return f"{timestamp_ms}{method.upper()}{path_with_query}".encode() + raw


def sign_request(
    secret: str, timestamp_ms: int, method: str, path_with_query: str, body: bytes | str
) -> str:
    """Client side of §6 (for tests, bots and SDKs): hex HMAC-SHA256 keyed by the secret."""
    payload = signature_payload(timestamp_ms, method, path_with_query, body)
    return hmac.new(secret.encode("ascii"), payload, hashlib.sha256).hexdigest()


def _api_key_context(key_id: str) -> bytes:
    # Binds a sealed secret to its key id: a ciphertext copied to another row won't open.
    return b"tradewind/api-key-secret/v1:" + key_id.encode("ascii")


USER_VISIBLE_AUDIT = ("security.", "withdrawal.")
"""Audit actions a user sees in their own security activity."""


def _security_action(what: str) -> str:
    """``"sign-in failed"`` -> ``"security.sign_in_failed"``."""
    return "security." + re.sub(r"[^a-z0-9]+", "_", what.lower()).strip("_")


_DUMMY_HASHES: dict[tuple[object, ...], str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    """The hash an unknown email's login is checked against (so it costs what a known
    one does), made once per process and hasher parameters: a hash takes ~0.2-0.4 s
    here, and every exchange built in a process (tests build hundreds) paid it."""
    key = (
        hasher.time_cost,
        hasher.memory_cost,
        hasher.parallelism,
        hasher.hash_len,
        hasher.salt_len,
        hasher.type,
    )
    if key not in _DUMMY_HASHES:
        _DUMMY_HASHES[key] = hasher.hash(_DUMMY_PASSWORD)
    return _DUMMY_HASHES[key]


class AccountsService:
    """Identity and credentials; depends only on the ports it is given."""

    def __init__(
        self,
        *,
        users: UserRepository,
        sessions: DeviceSessionRepository,
        api_keys: ApiKeyRepository,
        replay_cache: ReplayCache,
        secret_box: SecretBox,
        clock: Clock,
        identity: IdentityRepository,
        tokens: TokenRepository,
        throttle: LoginThrottleRepository,
        outbox: Outbox,
        hasher: PasswordHasher | None = None,
        config: AccountsConfig | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._audit = audit
        self._users = users
        self._sessions = sessions
        self._api_keys = api_keys
        self._replay = replay_cache
        self._box = secret_box
        self._clock = clock
        self._identity = identity
        self._outbox = outbox
        # argon2-cffi's default is argon2id with RFC 9106's low-memory profile.
        self._hasher = hasher or PasswordHasher()
        self._config = config or AccountsConfig()
        self._dummy_hash = _dummy_hash(self._hasher)
        self._throttle = LoginThrottle(throttle)
        self._tokens = EmailTokens(tokens, secret_box, clock)
        self._second = SecondFactor(identity, secret_box, clock, self._throttle)

    # -- passwords and sessions -------------------------------------------------------

    def _check_password(self, password: object) -> str:
        if not isinstance(password, str) or len(password) > self._config.max_password_length * 4:
            raise InvalidPassword()
        normalised = unicodedata.normalize("NFKC", password)
        lo, hi = self._config.min_password_length, self._config.max_password_length
        if not lo <= len(normalised) <= hi:
            raise InvalidPassword(f"password must be {lo} to {hi} characters long")
        return normalised

    async def register(self, email: str, password: str) -> int:
        """Create a user and email them a verification token; returns the user id (also
        its core account number).

        Until the address is verified the account can log in and read but cannot trade
        or create API keys (docs/security.md).
        """
        address = normalise_email(email)
        secret = self._check_password(password)
        if await self._users.get_by_email(address) is not None:
            raise EmailTaken()
        hashed = await asyncio.to_thread(self._hasher.hash, secret)
        user = await self._users.add(
            email=address, password_hash=hashed, created_at_ms=self._clock.now_ms()
        )
        if user is None:  # lost a race with a concurrent registration
            raise EmailTaken()
        await self._send_verification(user.id, address, None, change=False)
        return user.id

    async def login(
        self,
        email: str,
        password: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
        totp: str | None = None,
    ) -> str:
        """Check the password (and the second factor, if enabled) and open a session;
        returns the bearer token (shown once).

        Refuses with ``login_locked`` (and the time to wait) while the account or the
        address is locked after too many failures, before any password hashing.
        """
        now = self._clock.now_ms()
        typed = email if isinstance(email, str) else ""
        keys = [(account_key(typed[: MAX_EMAIL_LENGTH * 4]), ACCOUNT_POLICY)]
        if ip:
            keys.append((address_key(ip), ADDRESS_POLICY))
        await self._throttle.check(keys, now)
        try:
            address = normalise_email(email)
        except InvalidEmail:
            address = None
        # Only the upper bound: a shorter password set under an older policy still logs in.
        if (
            not isinstance(password, str)
            or len(password) > self._config.max_password_length * 4
            or address is None
        ):
            await self._throttle.fail(keys, now)
            raise InvalidCredentials()
        secret = unicodedata.normalize("NFKC", password)
        user = await self._users.get_by_email(address)
        if user is None or user.status != "active":
            await asyncio.to_thread(self._verify, self._dummy_hash, secret)
            await self._throttle.fail(keys, now)
            raise InvalidCredentials()
        if not await asyncio.to_thread(self._verify, user.password_hash, secret):
            await self._throttle.fail(keys, now)
            self._security_event_soon(user.id, "sign-in failed", ip, reason="password")
            raise InvalidCredentials()
        try:
            check = await self._second.require(user.id, totp)
        except InvalidTotp:
            await self._throttle.fail(keys, now)
            self._security_event_soon(user.id, "sign-in failed", ip, reason="second factor")
            raise
        await self._throttle.clear(keys[0][0])
        if self._hasher.check_needs_rehash(user.password_hash):
            rehashed = await asyncio.to_thread(self._hasher.hash, secret)
            await self._users.set_password_hash(user.id, rehashed)

        clean_ip = ip[:45] if ip else None
        agent = user_agent[:512] if user_agent else None
        known = await self._sessions.seen_device(user.id, clean_ip, agent)
        first = await self._sessions.count_all(user.id) == 0
        token = secrets.token_urlsafe(32)
        await self._sessions.add(
            user_id=user.id,
            token_hash=token_hash(token),
            created_at_ms=now,
            expires_at_ms=now + self._config.session_ttl_ms,
            ip=clean_ip,
            user_agent=agent,
        )
        await self._security_event(user.id, "signed in", clean_ip, method=check.method)
        if not known and not first:
            await self._notify(
                user.id,
                "new sign-in",
                f"Your account was signed in to from a new device or address:\n\n"
                f"  address: {clean_ip or 'unknown'}\n  device: {agent or 'unknown'}\n\n"
                "If this was not you, change your password now: that signs out every "
                "other session.",
            )
        if check.method == "recovery_code":
            await self._notify(
                user.id,
                "recovery code used",
                f"A recovery code was used to sign in. {check.recovery_codes_left} are left.",
            )
        return token

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    async def authenticate(self, token: str) -> SessionPrincipal:
        """Resolve a bearer token to its live session, or raise ``invalid_session``."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
            raise InvalidSession()
        record = await self._sessions.get_by_token_hash(token_hash(token))
        if record is None or record.revoked_at_ms is not None:
            raise InvalidSession()
        now = self._clock.now_ms()
        if now >= record.expires_at_ms:
            raise InvalidSession()
        identity = await self._identity.get_identity(record.user_id)
        if identity is None:
            raise InvalidSession()
        if now - record.last_seen_at_ms >= self._config.last_seen_resolution_ms:
            await self._sessions.touch(record.id, now)
        return SessionPrincipal(
            record.user_id,
            record.id,
            record.expires_at_ms,
            email_verified=identity.email_verified_at_ms is not None,
        )

    async def logout(self, token: str) -> None:
        """Revoke the session of ``token``; idempotent, silent for unknown tokens."""
        if isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_LENGTH:
            await self._sessions.revoke(token_hash(token), self._clock.now_ms())

    async def logout_everywhere(self, user_id: int) -> int:
        """Revoke every session of a user (password change, account compromise)."""
        return await self._sessions.revoke_all(user_id, self._clock.now_ms())

    async def list_sessions(self, user_id: int) -> Sequence[DeviceSessionRecord]:
        """The user's live sessions, newest first, with device, address and last use."""
        return await self._sessions.list_active(user_id, self._clock.now_ms())

    async def revoke_session(self, user_id: int, session_id: int) -> None:
        """Sign one of the user's own sessions out; another user's id is ``not found``."""
        if not await self._sessions.revoke_by_id(user_id, session_id, self._clock.now_ms()):
            raise SessionNotFound()

    # -- second factor ----------------------------------------------------------------

    async def require_second_factor(self, user_id: int, code: str | None) -> None:
        """Gate a sensitive action on the user's second factor.

        Call this before doing anything for: API-key creation, changing any security
        setting (password, email, anti-phishing code, 2FA itself), withdrawals, and any
        other action that must survive a stolen session. It returns at once if the user
        has no 2FA; otherwise ``code`` must be a current TOTP code (each accepted once)
        or an unused recovery code. Raises ``totp_required`` (401, no code),
        ``invalid_totp`` (401) or ``login_locked`` (429, too many wrong codes).
        """
        await self._second.require(user_id, code)

    async def totp_setup(self, user_id: int) -> TotpSetup:
        """Start 2FA setup: a new secret, its ``otpauth://`` URI and QR code (SVG)."""
        identity = await self._identity_of(user_id)
        return await self._second.setup(user_id, identity.email)

    async def totp_enable(self, user_id: int, code: object) -> list[str]:
        """Enable 2FA with a code from the app; returns ten single-use recovery codes."""
        codes = await self._second.enable(user_id, code)
        await self._notify(
            user_id,
            "two-factor authentication enabled",
            "Two-factor authentication is now required to sign in, to create API keys and "
            "to change security settings.",
        )
        return codes

    async def totp_disable(self, user_id: int, code: object) -> None:
        await self._second.disable(user_id, code)
        await self._notify(
            user_id,
            "two-factor authentication disabled",
            "Two-factor authentication was turned off for your account.",
        )

    # -- account settings -------------------------------------------------------------

    async def _identity_of(self, user_id: int) -> IdentityRecord:
        identity = await self._identity.get_identity(user_id)
        if identity is None:
            raise InvalidSession()
        return identity

    async def account(self, user_id: int) -> AccountInfo:
        identity = await self._identity_of(user_id)
        enabled = identity.totp_secret_sealed is not None
        return AccountInfo(
            user_id=user_id,
            email=identity.email,
            email_verified=identity.email_verified_at_ms is not None,
            totp_enabled=enabled,
            recovery_codes_left=(
                await self._identity.count_recovery_codes(user_id) if enabled else 0
            ),
            anti_phishing_code=identity.anti_phishing_code,
        )

    async def _confirm_password(self, user_id: int, password: object) -> None:
        user = await self._users.get(user_id)
        if user is None:
            raise InvalidSession()
        ok = isinstance(password, str) and len(password) <= self._config.max_password_length * 4
        secret = unicodedata.normalize("NFKC", password) if isinstance(password, str) else ""
        if not ok or not await asyncio.to_thread(self._verify, user.password_hash, secret):
            raise WrongPassword()

    async def change_password(
        self,
        user_id: int,
        session_id: int,
        current_password: str,
        new_password: str,
        totp: str | None = None,
    ) -> int:
        """Change the password; every other session is signed out (returns how many)."""
        secret = self._check_password(new_password)
        await self._confirm_password(user_id, current_password)
        await self._second.require(user_id, totp)
        hashed = await asyncio.to_thread(self._hasher.hash, secret)
        await self._users.set_password_hash(user_id, hashed)
        revoked = await self._sessions.revoke_others(user_id, session_id, self._clock.now_ms())
        await self._notify(
            user_id,
            "password changed",
            "Your password was changed and every other session was signed out.",
        )
        return revoked

    async def set_anti_phishing_code(
        self, user_id: int, code: str | None, totp: str | None = None
    ) -> None:
        """Set (or with ``None`` clear) the code every email from us will show."""
        if code is not None and (not isinstance(code, str) or not _ANTI_PHISHING.fullmatch(code)):
            raise InvalidAntiPhishingCode()
        await self._second.require(user_id, totp)
        await self._identity.set_anti_phishing_code(user_id, code)
        await self._notify(
            user_id,
            "anti-phishing code changed",
            "Your anti-phishing code was changed; from now on our emails show the code "
            "at the top of this email.",
        )

    async def request_email_change(
        self, user_id: int, new_email: str, password: str, totp: str | None = None
    ) -> None:
        """Send a token to the new address; the change happens when it is verified."""
        address = normalise_email(new_email)
        await self._confirm_password(user_id, password)
        await self._second.require(user_id, totp)
        identity = await self._identity_of(user_id)
        if address == identity.email or await self._users.get_by_email(address) is not None:
            raise EmailTaken()
        await self._send_verification(user_id, address, identity.anti_phishing_code, change=True)
        await self._notify(
            user_id,
            "email change requested",
            f"Someone asked to change this account's email address to {address}. It changes "
            "only when the new address is confirmed.",
        )

    # -- email tokens -----------------------------------------------------------------

    async def _send_verification(
        self, user_id: int, address: str, anti_phishing: str | None, *, change: bool
    ) -> None:
        ttl = self._config.verify_token_ttl_ms
        purpose = CHANGE_EMAIL if change else VERIFY_EMAIL
        token = await self._tokens.issue(purpose, user_id, address, ttl)
        mail = verification_mail(
            address, token, ttl // 60_000, anti_phishing, user_id, change=change
        )
        await self._outbox.put(mail, self._clock.now_ms())

    async def resend_verification(self, user_id: int) -> bool:
        """Send a new verification token (older ones stop working); ``False`` if the
        address is already verified (nothing is sent)."""
        identity = await self._identity_of(user_id)
        if identity.email_verified_at_ms is not None:
            return False
        await self._send_verification(
            user_id, identity.email, identity.anti_phishing_code, change=False
        )
        return True

    async def verify_email(self, token: str) -> int:
        """Redeem a verification or email-change token; returns the user id."""
        claims = self._tokens.open(token, frozenset({VERIFY_EMAIL, CHANGE_EMAIL}))
        await self._tokens.consume(claims)
        now = self._clock.now_ms()
        if claims.purpose == VERIFY_EMAIL:
            if not await self._identity.mark_email_verified(claims.user_id, claims.email, now):
                raise InvalidToken()
            return claims.user_id
        old = await self._identity_of(claims.user_id)
        if not await self._identity.change_email(claims.user_id, claims.email, now):
            raise EmailTaken()
        await self._outbox.put(
            notice_mail(
                old.email,
                "email address changed",
                f"This account's email address is now {claims.email}; we no longer write "
                "to this address.",
                old.anti_phishing_code,
                claims.user_id,
            ),
            now,
        )
        return claims.user_id

    async def request_password_reset(self, email: str) -> None:
        """Email a reset token if the address has an active account; silent otherwise
        (the caller answers the same in both cases)."""
        try:
            address = normalise_email(email)
        except InvalidEmail:
            return
        user = await self._users.get_by_email(address)
        if user is None or user.status != "active":
            return
        identity = await self._identity_of(user.id)
        ttl = self._config.reset_token_ttl_ms
        token = await self._tokens.issue(PASSWORD_RESET, user.id, address, ttl)
        await self._outbox.put(
            reset_mail(address, token, ttl // 60_000, identity.anti_phishing_code, user.id),
            self._clock.now_ms(),
        )

    async def confirm_password_reset(
        self, token: str, new_password: str, totp: str | None = None
    ) -> None:
        """Set a new password with a reset token (and the second factor, if enabled);
        signs out every session."""
        claims = self._tokens.open(token, frozenset({PASSWORD_RESET}))
        secret = self._check_password(new_password)
        await self._second.require(claims.user_id, totp)
        await self._tokens.consume(claims)
        hashed = await asyncio.to_thread(self._hasher.hash, secret)
        await self._users.set_password_hash(claims.user_id, hashed)
        await self._sessions.revoke_all(claims.user_id, self._clock.now_ms())
        await self._throttle.clear(account_key(claims.email))
        await self._notify(
            claims.user_id,
            "password reset",
            "Your password was reset with an emailed token and every session was signed out.",
        )

    async def _notify(self, user_id: int, subject: str, text: str) -> None:
        identity = await self._identity.get_identity(user_id)
        if identity is None:
            return
        await self._outbox.put(
            notice_mail(identity.email, subject, text, identity.anti_phishing_code, user_id),
            self._clock.now_ms(),
        )
        await self._security_event(user_id, subject)

    async def _security_event(
        self, user_id: int, what: str, ip: str | None = None, **details: str | int | None
    ) -> None:
        """Into the audit log (services/audit.py), if one was given: every security
        notice, sign-ins, failed sign-ins of existing accounts, key revocations. Never a
        secret: ids, outcomes and addresses only."""
        if self._audit is None:
            return
        await self._audit.record(
            _security_action(what),
            actor_id=user_id,
            actor_role="user",
            subject_id=user_id,
            details=details,
            ip=ip,
        )

    def _security_event_soon(
        self, user_id: int, what: str, ip: str | None = None, **details: str | int | None
    ) -> None:
        """:meth:`_security_event` off the request path, for failed sign-ins: the entry
        exists only for existing accounts (never an attacker-chosen email), so writing
        it before answering would make a wrong password for a real account slower than
        an unknown email, an oracle for which emails have accounts."""
        if self._audit is None:
            return
        self._audit.record_soon(
            _security_action(what),
            actor_id=user_id,
            actor_role="user",
            subject_id=user_id,
            details=details,
            ip=ip,
        )

    async def security_events(
        self, user_id: int, *, limit: int, before_seq: int | None = None
    ) -> tuple[list[AuditEntry], int | None]:
        """The user's own security activity, newest first: sign-ins, the notices emailed
        (new device, 2FA, password, email, API keys) and withdrawal steps, from the audit
        log. Returns the page and the cursor of the next (``None`` at the end). Staff
        actions about the user are not shown here (they are in the back office)."""
        if self._audit is None:
            return [], None
        found: list[AuditEntry] = []
        cursor = before_seq
        while len(found) < limit:
            chunk = await self._audit.recent(
                limit=max(limit * 2, 50), before_seq=cursor, subject_id=user_id
            )
            if not chunk:
                return found, None
            for entry in chunk:
                if entry.action.startswith(USER_VISIBLE_AUDIT):
                    found.append(entry)
                    if len(found) == limit:
                        return found, entry.seq
            cursor = chunk[-1].seq
        return found, None

    # -- API keys -------------------------------------------------------------------

    def _check_label(self, label: object) -> str:
        if not isinstance(label, str):
            raise InvalidLabel()
        text = label.strip()
        if not 1 <= len(text) <= 64 or not text.isprintable():
            raise InvalidLabel()
        return text

    def _check_permissions(self, permissions: object) -> frozenset[str]:
        if isinstance(permissions, str | bytes) or not isinstance(permissions, Iterable):
            raise InvalidPermissions()
        items = list(permissions)
        if not all(isinstance(item, str) for item in items):
            raise InvalidPermissions()
        chosen = frozenset(items)
        if not chosen or not chosen <= PERMISSIONS:
            raise InvalidPermissions()
        return chosen

    def _check_allowlist(self, allowlist: object) -> tuple[str, ...] | None:
        if allowlist is None:
            return None
        if isinstance(allowlist, str | bytes) or not isinstance(allowlist, Iterable):
            raise InvalidIpAllowlist()
        networks: list[str] = []
        for entry in allowlist:
            if not isinstance(entry, str):
                raise InvalidIpAllowlist()
            try:
                network = str(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise InvalidIpAllowlist(f"not an IP address or network: {entry!r}") from exc
            if network not in networks:
                networks.append(network)
        if len(networks) > self._config.max_ip_allowlist:
            raise InvalidIpAllowlist(
                f"at most {self._config.max_ip_allowlist} entries in ip_allowlist"
            )
        return tuple(networks) or None

    async def create_api_key(
        self,
        user_id: int,
        label: str,
        permissions: Iterable[str],
        ip_allowlist: Iterable[str] | None = None,
        *,
        totp: str | None = None,
        public_key: str | None = None,
        expires_at_ms: int | None = None,
    ) -> NewApiKey:
        """Create a key; the returned secret is never retrievable again.

        An empty ``ip_allowlist`` means the same as none: any address. Needs a verified
        email address and, when 2FA is on, a code in ``totp``; the owner is notified.
        With ``public_key`` (Ed25519, PEM/base64/hex) the key signs with the client's
        private key and no secret exists; ``expires_at_ms`` ends its validity.
        """
        clean_label = self._check_label(label)
        raw_public = None if public_key is None else load_public_key(public_key)
        expiry = check_expiry(expires_at_ms, self._clock.now_ms())
        chosen = self._check_permissions(permissions)
        networks = self._check_allowlist(ip_allowlist)
        identity = await self._identity_of(user_id)
        if identity.email_verified_at_ms is None:
            raise EmailNotVerified()
        await self._second.require(user_id, totp, identity)
        if await self._api_keys.count_active(user_id) >= self._config.max_api_keys_per_user:
            raise TooManyApiKeys()
        key_id = secrets.token_hex(16)
        secret = None if raw_public is not None else secrets.token_hex(32)
        record = await self._api_keys.add(
            key_id=key_id,
            user_id=user_id,
            label=clean_label,
            permissions=chosen,
            ip_allowlist=networks,
            secret_sealed=b""
            if secret is None
            else self._box.seal(secret.encode("ascii"), _api_key_context(key_id)),
            created_at_ms=self._clock.now_ms(),
            expires_at_ms=expiry,
            key_type="hmac" if raw_public is None else "ed25519",
            public_key=raw_public,
        )
        await self._notify(
            user_id,
            "API key created",
            f"An API key was created: {clean_label!r} with {', '.join(sorted(chosen))} "
            "permissions. If this was not you, revoke it and change your password.",
        )
        return NewApiKey(_info(record), secret)

    async def list_api_keys(self, user_id: int) -> list[ApiKeyInfo]:
        return [_info(record) for record in await self._api_keys.list_active(user_id)]

    async def revoke_api_key(self, user_id: int, key_id: str) -> None:
        if not await self._api_keys.revoke(user_id, key_id, self._clock.now_ms()):
            raise ApiKeyNotFound()
        await self._security_event(user_id, "API key revoked", key=key_id)

    async def verify_signature(
        self,
        key_id: str,
        timestamp_ms: int,
        method: str,
        path_with_query: str,
        body: bytes | str,
        signature_hex: str,
        now_ms: int,
        recv_window_ms: int = 5000,
        *,
        client_ip: str | None = None,
    ) -> ApiKeyPrincipal:
        """Check a request signed per DESIGN §6 and return who it speaks for.

        ``path_with_query`` and ``body`` must be exactly what came over the wire. The
        window is ``now - recv_window <= timestamp <= now + max_future_skew``. A key
        with an allowlist needs ``client_ip``. The signature is remembered for the
        longest window any request may ask for, so a replay cannot escape by asking for a
        wider one.
        """
        config = self._config
        if not 0 < recv_window_ms <= config.max_recv_window_ms:
            raise InvalidRecvWindow()
        if not isinstance(key_id, str) or not 0 < len(key_id) <= 64:
            raise InvalidApiKey()
        if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int):
            raise InvalidTimestamp()
        key = await self._api_keys.get(key_id)
        if key is None or key.revoked_at_ms is not None:
            raise InvalidApiKey()
        if (
            now_ms - timestamp_ms > recv_window_ms
            or timestamp_ms - now_ms > config.max_future_skew_ms
        ):
            raise TimestampOutOfWindow()
        ensure_not_expired(key.expires_at_ms, now_ms)
        payload = signature_payload(timestamp_ms, method, path_with_query, body)
        if key.key_type == "ed25519":
            # the server holds only the public key (services/api_key_signatures.py)
            if key.public_key is None or not verify_ed25519(key.public_key, payload, signature_hex):
                raise InvalidSignature()
            # one replay-cache entry per signature, whether sent as hex or base64
            raw_signature = signature_bytes(signature_hex)
            assert raw_signature is not None
            replay_key = raw_signature.hex()
        else:
            if not isinstance(signature_hex, str) or not _HEX_SIGNATURE.fullmatch(signature_hex):
                raise InvalidSignature()
            secret = self._box.open(key.secret_sealed, _api_key_context(key.key_id))
            expected = hmac.new(secret, payload, hashlib.sha256).digest()
            if not hmac.compare_digest(expected, bytes.fromhex(signature_hex)):
                raise InvalidSignature()
            replay_key = signature_hex.lower()
        if key.ip_allowlist is not None and not _ip_allowed(client_ip, key.ip_allowlist):
            raise IpNotAllowed()
        ttl_ms = max(1, timestamp_ms + config.max_recv_window_ms - now_ms + 1)
        if not await self._replay.remember(f"sig:{key.key_id}:{replay_key}", now_ms, ttl_ms):
            raise ReplayedSignature()
        return ApiKeyPrincipal(key.user_id, key.key_id, key.permissions)


def _info(record: ApiKeyRecord) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=record.key_id,
        label=record.label,
        permissions=record.permissions,
        ip_allowlist=record.ip_allowlist,
        created_at_ms=record.created_at_ms,
        key_type=record.key_type,
        expires_at_ms=record.expires_at_ms,
    )


def _ip_allowed(client_ip: str | None, allowlist: Sequence[str]) -> bool:
    if client_ip is None:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(network) for network in allowlist)
