"""KYC levels with limits, a provider webhook and a manual review queue (issue 5 item 9).

Levels: 0 (registered: trading only, no withdrawals, no fiat), 1 (identity checked:
withdrawals up to a daily amount per asset), 2 (address checked too: higher limits and
fiat rails). A user's level rises by a provider's signed callback (SumSub/Jumio style)
or by a compliance officer approving a document from the built-in review queue.

Invariants:
- a provider callback counts only if its HMAC-SHA256 over the exact body matches the
  provider's secret (constant-time compare) and its event id was not seen before, so a
  forged or replayed callback changes nothing;
- a document is accepted only if it is at most ``max_document_bytes`` and its first
  bytes are those of the declared type (JPEG, PNG or PDF): the declared
  ``Content-Type`` alone proves nothing; it is stored by the :class:`DocumentStore`
  under a random name outside any served directory, never under the client's name;
- only compliance (or admin) reads the queue and decides; a document is decided once;
  every change of level and every decision goes to the audit log;
- limits are integers: whole units of each asset per day, compared in minor units.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tradewind.services.admin import Actor, RoleRequired
from tradewind.services.audit import AuditLog
from tradewind.services.errors import ServiceError
from tradewind.services.ports import Clock

LEVELS = (0, 1, 2)
DOCUMENT_KINDS = ("passport", "id_card", "driving_licence", "proof_of_address", "selfie")
MAGIC: Mapping[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/pdf": (b"%PDF-",),
}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}
REVIEWERS = frozenset({"compliance", "admin"})


@dataclass(frozen=True, slots=True)
class LevelLimits:
    withdraw_per_day_units: Mapping[str, int] = field(default_factory=dict)
    """Whole units of each asset a user may withdraw per day; an asset not listed: 0."""
    fiat: bool = False


DEFAULT_LIMITS: Mapping[int, LevelLimits] = {
    0: LevelLimits({}, fiat=False),
    1: LevelLimits({"BTC": 2, "ETH": 30, "USDT": 50_000}, fiat=False),
    2: LevelLimits(
        # fiat withdrawals by bank transfer (docs/fiat.md) count in their currency
        {"BTC": 100, "ETH": 1_500, "USDT": 2_000_000, "EUR": 100_000, "USD": 100_000},
        fiat=True,
    ),
}


class KycLimitExceeded(ServiceError):
    code = "kyc_limit_exceeded"
    status_hint = 403
    default_message = "this exceeds the daily withdrawal limit of your verification level"


class FiatNotAllowed(ServiceError):
    code = "kyc_level_required"
    status_hint = 403
    default_message = "fiat deposits and withdrawals need verification level 2"


class InvalidDocument(ServiceError):
    code = "invalid_document"
    status_hint = 400
    default_message = "the document must be a JPEG, PNG or PDF file"


class DocumentTooLarge(ServiceError):
    code = "document_too_large"
    status_hint = 413
    default_message = "the document is too large"


class DocumentNotFound(ServiceError):
    code = "unknown_document"
    status_hint = 404
    default_message = "no such document"


class DocumentNotPending(ServiceError):
    code = "document_not_pending"
    status_hint = 409
    default_message = "the document was already reviewed"


class InvalidLevel(ServiceError):
    code = "invalid_level"
    status_hint = 400
    default_message = "level must be 0, 1 or 2"


class InvalidWebhook(ServiceError):
    code = "invalid_webhook_signature"
    status_hint = 401
    default_message = "the callback's signature does not match"


class InvalidWebhookBody(ServiceError):
    code = "invalid_webhook_body"
    status_hint = 400
    default_message = "the callback body is not a KYC result"


@dataclass(frozen=True, slots=True)
class KycProfile:
    user_id: int
    level: int
    updated_at_ms: int | None
    source: str | None
    """``provider:<name>``, ``review:<document id>`` or ``None`` (never verified)."""


@dataclass(frozen=True, slots=True)
class KycDocument:
    id: int
    user_id: int
    kind: str
    content_type: str
    size: int
    sha256: str
    location: str
    """Where the :class:`DocumentStore` put it (opaque to everyone else)."""
    status: str
    """``pending``, ``approved`` or ``rejected``."""
    uploaded_at_ms: int
    reviewed_by: int | None
    reviewed_at_ms: int | None
    note: str | None


class KycStore(Protocol):
    async def has_user(self, user_id: int) -> bool: ...

    async def profile(self, user_id: int) -> KycProfile:
        """Level 0 and no source for a user never verified."""
        ...

    async def set_level(self, user_id: int, level: int, *, source: str, at_ms: int) -> None: ...

    async def add_document(
        self,
        *,
        user_id: int,
        kind: str,
        content_type: str,
        size: int,
        sha256: str,
        location: str,
        at_ms: int,
    ) -> KycDocument: ...

    async def get_document(self, document_id: int) -> KycDocument | None: ...

    async def list_documents(
        self, *, status: str | None, user_id: int | None, limit: int
    ) -> Sequence[KycDocument]:
        """Oldest first (a queue)."""
        ...

    async def decide_document(
        self, document_id: int, *, status: str, by: int | None, at_ms: int, note: str | None
    ) -> bool:
        """Compare-and-set from ``pending``."""
        ...

    async def remember_event(self, provider: str, event_id: str, at_ms: int) -> bool:
        """``False`` if this provider's event id was recorded before."""
        ...


class DocumentStore(Protocol):
    def save(self, user_id: int, data: bytes, extension: str) -> str:
        """Store privately under a random name; returns its location."""
        ...


def sniff(content_type: str, data: bytes) -> bool:
    return any(data.startswith(magic) for magic in MAGIC.get(content_type, ()))


def sign_webhook(secret: bytes, body: bytes) -> str:
    """Provider side (tests, the demo): hex HMAC-SHA256 of the exact body."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


class KycService:
    def __init__(
        self,
        *,
        store: KycStore,
        documents: DocumentStore,
        audit: AuditLog,
        clock: Clock,
        limits: Mapping[int, LevelLimits] | None = None,
        webhook_secrets: Mapping[str, bytes] | None = None,
        max_document_bytes: int = 5 * 1024 * 1024,
    ) -> None:
        self._store = store
        self._documents = documents
        self._audit = audit
        self._clock = clock
        self._limits = limits or DEFAULT_LIMITS
        self._secrets = dict(webhook_secrets or {})
        self.max_document_bytes = max_document_bytes

    def providers(self) -> frozenset[str]:
        return frozenset(self._secrets)

    async def profile(self, user_id: int) -> KycProfile:
        return await self._store.profile(user_id)

    def limits_of(self, level: int) -> LevelLimits:
        return self._limits.get(level, LevelLimits())

    # -- limits (for the funding workflow) ----------------------------------------------

    async def check_withdrawal(
        self, user_id: int, asset: str, decimals: int, amount: int, withdrawn_today: int
    ) -> None:
        """Refuse a withdrawal of ``amount`` (minor units) that would take the user's
        withdrawals of ``asset`` in the last day (``withdrawn_today``) over their limit."""
        level = (await self._store.profile(user_id)).level
        units = self.limits_of(level).withdraw_per_day_units.get(asset, 0)
        if amount + withdrawn_today > units * 10**decimals:
            raise KycLimitExceeded(
                f"level {level} allows {units} {asset} of withdrawals per day"
                if units
                else f"level {level} allows no {asset} withdrawals; complete verification"
            )

    async def check_fiat(self, user_id: int) -> None:
        if not self.limits_of((await self._store.profile(user_id)).level).fiat:
            raise FiatNotAllowed()

    # -- documents and the review queue --------------------------------------------------

    async def upload_document(
        self, user_id: int, kind: str, content_type: str, data: bytes, ip: str | None = None
    ) -> KycDocument:
        if kind not in DOCUMENT_KINDS:
            raise InvalidDocument(f"kind must be one of {', '.join(DOCUMENT_KINDS)}")
        if len(data) > self.max_document_bytes:
            raise DocumentTooLarge(f"the document is larger than {self.max_document_bytes} bytes")
        media = content_type.split(";", 1)[0].strip().lower()
        if media not in MAGIC or not sniff(media, data):
            raise InvalidDocument()
        location = self._documents.save(user_id, data, EXTENSIONS[media])
        document = await self._store.add_document(
            user_id=user_id,
            kind=kind,
            content_type=media,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            location=location,
            at_ms=self._clock.now_ms(),
        )
        await self._audit.record(
            "kyc.document_uploaded",
            actor_id=user_id,
            actor_role="user",
            subject_id=user_id,
            details={"document": document.id, "kind": kind, "size": len(data)},
            ip=ip,
        )
        return document

    async def my_documents(self, user_id: int) -> Sequence[KycDocument]:
        return await self._store.list_documents(status=None, user_id=user_id, limit=100)

    async def _require_reviewer(self, actor: Actor, action: str, subject: int | None) -> None:
        if actor.role not in REVIEWERS:
            await self._audit.record(
                "admin.denied",
                actor_id=actor.user_id,
                actor_role=actor.role,
                subject_id=subject,
                details={"attempted": action},
                ip=actor.ip,
            )
            raise RoleRequired(f"{action} needs the role compliance or admin")

    async def queue(self, actor: Actor, *, limit: int = 100) -> Sequence[KycDocument]:
        await self._require_reviewer(actor, "kyc.queue", None)
        return await self._store.list_documents(status="pending", user_id=None, limit=limit)

    async def review(
        self, actor: Actor, document_id: int, *, approve: bool, level: int | None, note: str
    ) -> KycDocument:
        """Approve (raising the user's level to ``level``) or reject a pending document."""
        document = await self._store.get_document(document_id)
        await self._require_reviewer(
            actor, "kyc.review", document.user_id if document is not None else None
        )
        if document is None:
            raise DocumentNotFound()
        if approve and level not in (1, 2):
            raise InvalidLevel("an approval sets level 1 or 2")
        now = self._clock.now_ms()
        status = "approved" if approve else "rejected"
        if not await self._store.decide_document(
            document_id, status=status, by=actor.user_id, at_ms=now, note=note[:256] or None
        ):
            raise DocumentNotPending()
        details: dict[str, str | int | bool | None] = {"document": document_id, "note": note}
        if approve and level is not None:
            current = (await self._store.profile(document.user_id)).level
            if level > current:
                await self._store.set_level(
                    document.user_id, level, source=f"review:{document_id}", at_ms=now
                )
            details.update(level=level, previous=current)
        await self._audit.record(
            f"kyc.document_{status}",
            actor_id=actor.user_id,
            actor_role=actor.role,
            subject_id=document.user_id,
            details=details,
            ip=actor.ip,
        )
        after = await self._store.get_document(document_id)
        assert after is not None
        return after

    # -- provider callbacks ----------------------------------------------------------------

    async def provider_callback(self, provider: str, body: bytes, signature: str | None) -> str:
        """Apply a provider's signed result; returns ``applied`` or ``duplicate``.

        Body: ``{"event_id": str, "user_id": int, "result": "approved"|"rejected",
        "level": 1|2}``; ``signature``: hex HMAC-SHA256 of the body with the provider's
        secret."""
        secret = self._secrets.get(provider)
        if secret is None:
            raise InvalidWebhook("unknown provider")
        expected = sign_webhook(secret, body)
        if signature is None or not hmac.compare_digest(expected, signature.strip().lower()):
            raise InvalidWebhook()
        try:
            event = json.loads(body)
        except ValueError:
            raise InvalidWebhookBody() from None
        if not isinstance(event, dict):
            raise InvalidWebhookBody()
        event_id, user_id = event.get("event_id"), event.get("user_id")
        result, level = event.get("result"), event.get("level")
        if (
            not isinstance(event_id, str)
            or not 0 < len(event_id) <= 128
            or isinstance(user_id, bool)
            or not isinstance(user_id, int)
            or result not in ("approved", "rejected")
            or (result == "approved" and level not in (1, 2))
        ):
            raise InvalidWebhookBody()
        if not await self._store.has_user(user_id):
            raise InvalidWebhookBody("the callback names no user of this exchange")
        now = self._clock.now_ms()
        if not await self._store.remember_event(provider, event_id, now):
            return "duplicate"
        previous = (await self._store.profile(user_id)).level
        if result == "approved" and isinstance(level, int) and level > previous:
            await self._store.set_level(user_id, level, source=f"provider:{provider}", at_ms=now)
        await self._audit.record(
            f"kyc.provider_{result}",
            actor_role="provider",
            subject_id=user_id,
            details={"provider": provider, "event": event_id, "level": level, "previous": previous},
        )
        return "applied"
